"""SimpleITK fast symmetric-forces demons, multi-resolution (shrink factors, e.g. 4, 2, 1),
on the moving image pre-aligned by the common affine and histogram-matched to the fixed
image. The demons output is a displacement field on the fixed grid, fixed → moving (mm):
the common convention. Gaussian smoothing of the field: ``sd_voxels`` × the mean spacing
(mm). One setting (no weight grid).
"""

from __future__ import annotations

import time

import numpy as np
import SimpleITK as sitk

from benchmarks.fields import field_array
from benchmarks.methods import MethodResult
from benchmarks.methods._peer_io import prealigned_moving, total_field
from benchmarks.pairs import PairData


def _shrink(image: sitk.Image, factor: int) -> sitk.Image:
    if factor == 1:
        return image
    spacing = np.asarray(image.GetSpacing())
    smoothed = sitk.SmoothingRecursiveGaussian(image, [float(s) * factor / 2 for s in spacing])
    size = [max(2, int(round(s / factor))) for s in image.GetSize()]
    new_spacing = [(sz - 1) * sp / (nsz - 1) for sz, sp, nsz in
                   zip(image.GetSize(), spacing, size, strict=True)]
    return sitk.Resample(smoothed, size, sitk.Transform(), sitk.sitkLinear, image.GetOrigin(),
                         new_spacing, image.GetDirection(), 0.0, image.GetPixelID())


def register(fixed: sitk.Image, moving: sitk.Image, shrink=(4, 2, 1), iterations: int = 50,
             sd_voxels: float = 1.5, threads: int = 2) -> np.ndarray:
    """Demons field (grid.shape + (D,), mm, fixed → moving) on the fixed grid."""
    moving = sitk.HistogramMatching(moving, fixed, 256, 7, True)
    sd = sd_voxels * float(np.mean(fixed.GetSpacing()))
    field = None
    for factor in shrink:
        f, m = _shrink(fixed, factor), _shrink(moving, factor)
        demons = sitk.FastSymmetricForcesDemonsRegistrationFilter()
        demons.SetNumberOfIterations(iterations)
        demons.SetStandardDeviations(sd)
        demons.SetNumberOfThreads(threads)
        if field is None:
            field = demons.Execute(f, m)
        else:
            init = sitk.Resample(field, f, sitk.Transform(), sitk.sitkLinear, 0.0,
                                 sitk.sitkVectorFloat64)
            field = demons.Execute(f, m, init)
    if tuple(field.GetSize()) != tuple(fixed.GetSize()):  # coarsest-only schedules
        field = sitk.Resample(field, fixed, sitk.Transform(), sitk.sitkLinear, 0.0,
                              sitk.sitkVectorFloat64)
    return field_array(field)


def run_demons(pair: PairData, settings: dict) -> MethodResult:
    opts = settings.get("sitk", {})
    fixed = sitk.Cast(pair.fixed.to_sitk(), sitk.sitkFloat32)
    moving = sitk.Cast(prealigned_moving(pair).to_sitk(), sitk.sitkFloat32)
    t0 = time.perf_counter()
    field = total_field(pair, register(fixed, moving, **opts))
    return MethodResult(field, time.perf_counter() - t0, 0.0,
                        {"filter": "FastSymmetricForcesDemons", **opts})
