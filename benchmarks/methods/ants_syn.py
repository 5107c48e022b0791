"""ANTs SyN (antspyx): ``ants.registration(fixed, moving, "SyNOnly")`` on the moving image
pre-aligned by the common affine (inside the fixed mask when there is one), with the
mode's ``settings["ants"]`` (full: ``reg_iterations`` 100x70x50x20 at shrink 8x4x2x1, as
antsRegistrationSyN.sh; quick: the antspyx default 40x20x0). The forward transforms are
composed by ``ants.apply_transforms(..., compose=)`` into one displacement field on the
fixed grid: for images it maps moving → fixed, i.e. as a field its vectors go from fixed
point x to moving point x + u(x) (mm, LPS) — the common convention (checked on a known
translation in tests/test_benchmarks.py).
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.fields import field_array
from benchmarks.methods import MethodResult
from benchmarks.methods._peer_io import temp_folder, total_field, write_inputs
from benchmarks.pairs import PairData


def register(fixed_path, moving_path, mask_path, folder: Path, transform: str = "SyNOnly",
             **kwargs):
    """One ANTs run; returns the composed forward field (grid.shape + (D,), mm)."""
    import ants
    import SimpleITK as sitk

    fixed = ants.image_read(str(fixed_path))
    moving = ants.image_read(str(moving_path))
    mask = ants.image_read(str(mask_path)) if mask_path is not None else None
    reg = ants.registration(fixed, moving, type_of_transform=transform, mask=mask,
                            outprefix=str(folder / "ants_"), verbose=False, **kwargs)
    composed = ants.apply_transforms(fixed, moving, reg["fwdtransforms"],
                                     compose=str(folder / "composed_"))
    return field_array(sitk.ReadImage(composed))


def run_ants(pair: PairData, settings: dict) -> MethodResult:
    opts = settings.get("ants", {})
    with temp_folder() as tmp:
        paths = write_inputs(pair, Path(tmp))
        t0 = time.perf_counter()
        field = total_field(pair, register(paths["fixed"], paths["moving"], paths["mask"],
                                           Path(tmp), **opts))
        seconds = time.perf_counter() - t0
    return MethodResult(field, seconds, 0.0, {"transform": "SyNOnly", **opts})
