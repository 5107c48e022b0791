"""``cidir apply``: a moving-space image or label map warped onto the fixed grid or another
reference grid, or points mapped, at α — the options of antsApplyTransforms.

- Output grid: the fixed grid, or that of ``reference`` (size, spacing, origin, direction).
- φ is evaluated at the world positions (mm, LPS) of the output's voxels. Inside the fixed
  image's domain it is the trained transform; outside it, where the network was never
  trained, φ(x) = A·x + t, the initial affine alone (x itself without ``--init``): the
  deformation u is taken as 0 there, as antsApplyTransforms reads a displacement field
  outside its grid (:func:`cidir.fields.map_in_domain`).
- The moving image is read at φ(x) with ``interpolation`` (linear for images, nearest for
  label maps, the only choice there; bspline: cubic B-spline, SimpleITK) and
  ``default_value`` where φ(x) falls outside it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from cidir.errors import InputError
from cidir.fields import INTERPOLATIONS, ConditionedTransform, warp_image, warp_labels
from cidir.geometry import Grid, Image
from cidir.io.images import read_image, read_label_map, write_image
from cidir.io.landmarks import read_points, write_points
from cidir.io.outputs import check_image_output, check_points_output
from cidir.runs.at_alpha import alpha_for, provenance
from cidir.runs.folder import RunFolder
from cidir.runs.inverse import apply_inverse_points, moving_grid
from cidir.runtime import resolve_device
from cidir.selection.alpha_space import Alpha

__all__ = ["apply_run"]

log = logging.getLogger(__name__)
MAX_LABEL = np.iinfo(np.int32).max


def apply_run(run_dir: str | Path, out: str | Path, *, alpha: Alpha | None = None,
              image: str | None = None, labels: str | None = None, points: str | None = None,
              inverse: bool = False, reference: str | None = None,
              interpolation: str | None = None, default_value: float | None = None,
              device: str = "cpu") -> Path:
    """Warp a moving-space image (``interpolation``, default linear) or label map (nearest)
    onto the fixed grid or ``reference``'s grid, with ``default_value`` (default 0) outside
    the moving image; or map fixed-space points to moving space (``inverse``: moving-space
    points to fixed space by φ⁻¹). Writes ``out``; see the module docstring for φ outside
    the fixed image's domain."""
    run = RunFolder(run_dir)
    run.require_trained()
    if sum(x is not None for x in (image, labels, points)) != 1:
        raise InputError("apply: give exactly one of --image, --labels, --points")
    if inverse and points is None:
        raise InputError("--inverse goes with --points (moving points → fixed space)")
    a = alpha_for(run, alpha)
    if points is not None:
        given = [name for name, v in (("--reference", reference),
                                      ("--interpolation", interpolation),
                                      ("--default-value", default_value)) if v is not None]
        if given:
            raise InputError(f"{', '.join(given)}: go with --image or --labels (points are "
                             "mapped, not resampled)")
        return _apply_points(run, a, points, out, inverse, device)
    return _apply_image(run, a, out, image, labels, reference, interpolation, default_value,
                        device)


def _apply_points(run: RunFolder, alpha: Alpha, points: str, out: str | Path, inverse: bool,
                  device: str) -> Path:
    target = check_points_output(out)
    transform = run.load_transform(resolve_device(device))
    if inverse:
        apply_inverse_points(run, transform, alpha, points, target)
    else:
        pts = read_points(points, transform.grid, "--points")  # fixed space
        # the mapped points lie in moving space: voxel formats index the moving grid
        write_points(target, transform.map_points(pts, alpha), grid=moving_grid(run))
    return target


def _apply_image(run: RunFolder, alpha: Alpha, out: str | Path, image: str | None,
                 labels: str | None, reference: str | None, interpolation: str | None,
                 default_value: float | None, device: str) -> Path:
    """Everything checked (options, output, inputs) before the model is loaded."""
    is_labels = labels is not None
    method = check_interpolation(interpolation, is_labels)
    default = check_default_value(default_value, is_labels)
    ndim = run.ndim()
    target = check_image_output(out, "--out", ndim, "label" if is_labels else "float")
    grid = reference_grid(reference, ndim) if reference is not None else None
    moving = (read_label_map(labels, "--labels") if is_labels
              else read_image(str(image), "--image", allow_constant=True))
    what = "--labels" if is_labels else "--image"
    if moving.ndim != ndim:
        raise InputError(f"{what} {moving.source}: expected a {ndim}D image like the run's, "
                         f"found {moving.ndim}D")
    transform = run.load_transform(resolve_device(device))
    if grid is not None:
        _note_outside_domain(grid, transform, str(reference))
    meta = provenance(run, alpha)
    if is_labels:
        warped = warp_labels(transform, moving, alpha, grid, default_value=int(default))
        write_image(warped, target, dtype=np.int32, metadata=meta)
    else:
        warped = warp_image(transform, moving, alpha, grid, interpolation=method,
                            default_value=default)
        write_image(warped, target, metadata=meta)
    return target


def check_interpolation(interpolation: str | None, labels: bool) -> str:
    """The interpolation to use (default: linear for images, nearest for label maps);
    InputError for an unknown one, or one other than nearest for a label map."""
    if interpolation is None:
        return "nearest" if labels else "linear"
    if interpolation not in INTERPOLATIONS:
        raise InputError(f"--interpolation: expected one of {', '.join(INTERPOLATIONS)}, "
                         f"found {interpolation!r}")
    if labels and interpolation != "nearest":
        raise InputError(f"--interpolation {interpolation}: expected nearest with --labels "
                         f"(a {interpolation} blend of two labels is not a label); leave "
                         "--interpolation out or give nearest")
    return interpolation


def check_default_value(value: float | None, labels: bool) -> float:
    """The value outside the moving image (default 0); InputError unless finite, and for a
    label map an integer in [0, 2^31)."""
    if value is None:
        return 0.0
    if not np.isfinite(value):
        raise InputError(f"--default-value: expected a finite number, found {value}")
    if labels and not (float(value).is_integer() and 0 <= value <= MAX_LABEL):
        raise InputError(f"--default-value: expected a label with --labels (an integer "
                         f"from 0 to {MAX_LABEL}), found {value:g}")
    return float(value)


def reference_grid(reference: str, ndim: int) -> Grid:
    """The grid of the ``--reference`` image (its voxels are only read to check it)."""
    ref: Image = read_image(reference, "--reference", allow_constant=True)
    if ref.ndim != ndim:
        raise InputError(f"--reference {reference}: expected a {ndim}D image like the run's, "
                         f"found {ref.ndim}D (size {ref.grid.size})")
    return ref.grid


def _note_outside_domain(grid: Grid, transform: ConditionedTransform, reference: str) -> None:
    """A logged note when part of the output grid lies outside the fixed image's domain
    (the grid's corner voxels all inside ⇒ all its voxels inside: both are convex)."""
    if bool(np.all(transform.grid.contains_world(grid.corners_world()))):
        return
    outside = "the initial affine alone" if transform.has_init else "the identity"
    log.warning("--reference %s: part of its grid [%s] lies outside the fixed image's domain "
                "[%s]; the network was not trained there, so φ is %s there (as "
                "antsApplyTransforms applies a displacement field outside its grid)",
                reference, grid.describe(direction=True),
                transform.grid.describe(direction=True), outside)
