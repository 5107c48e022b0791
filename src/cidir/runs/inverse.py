"""The inverse transform on files: ``cidir export --inverse-field`` (φ⁻¹ − id on the moving
grid, moving → fixed, with ``RUN/inverse.json``: the fixed-point residual and the
inverse-consistency error) and ``cidir apply --points … --inverse`` (moving → fixed points).
The numbers come from :mod:`cidir.fields.inverse`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cidir.errors import InputError
from cidir.evaluation.metrics import distance_summary
from cidir.fields import ConditionedTransform
from cidir.fields.inverse import (
    inverse_consistency,
    inverse_displacement_field,
    inverse_map_points,
)
from cidir.geometry import Grid
from cidir.io.field_export import write_displacement_field
from cidir.io.images import read_image
from cidir.io.landmarks import read_points, write_points
from cidir.runs.folder import RunFolder
from cidir.selection.alpha_space import Alpha

CONSISTENCY_POINTS = 100_000  # fixed voxels (of the mask) checked, drawn with seed 0


def moving_grid(run: RunFolder) -> Grid:
    """The moving image's grid: recorded in metrics.json by the fit, else (older runs) read
    from the moving image named in inputs.json."""
    recorded = run.metrics().get("moving_grid")
    if recorded:
        return Grid.from_dict(recorded)
    path = run.input_path("moving")
    if path is None:
        raise InputError(f"run {run.path}: inputs.json does not name the moving image")
    return read_image(path, "moving image (from inputs.json)").grid


def _consistency_points(run: RunFolder, grid: Grid) -> tuple[np.ndarray, str]:
    """Fixed voxels where ‖φ⁻¹(φ(x)) − x‖ is measured: the fixed mask's (else the grid's),
    at most CONSISTENCY_POINTS of them."""
    mask = run.fixed_mask(grid)
    if mask is not None:
        inside, region = np.flatnonzero(mask.array), "fixed mask"
    else:
        inside, region = np.arange(grid.num_voxels), "fixed grid"
    if len(inside) > CONSISTENCY_POINTS:
        inside = np.sort(np.random.default_rng(0).choice(inside, CONSISTENCY_POINTS, False))
    return grid.world_points(inside), region


def export_inverse(run: RunFolder, transform: ConditionedTransform, alpha: Alpha,
                   path: str, fmt: str, metadata: dict[str, str]) -> list[Path]:
    """Write φ⁻¹(y) − y on the moving grid (``fmt`` itk or ants) and RUN/inverse.json."""
    grid = moving_grid(run)
    field, residual = inverse_displacement_field(transform, alpha, grid)
    written = write_displacement_field(field, grid, path, fmt, metadata=metadata)
    points, region = _consistency_points(run, transform.grid)
    summary: dict[str, Any] = {
        "alpha": alpha, "inverse_field": str(path),
        "fixed_point_residual_mm": distance_summary(residual),
        "inverse_consistency": inverse_consistency(transform, alpha, points),
        "inverse_consistency_region": region}
    run.write_json(run.path / "inverse.json", summary)
    return [*written, run.path / "inverse.json"]


def apply_inverse_points(run: RunFolder, transform: ConditionedTransform, alpha: Alpha,
                         points: str, out: Path) -> None:
    """Moving points (world mm, or voxel indices of the moving grid) → fixed points."""
    grid = moving_grid(run)
    fixed, _ = inverse_map_points(transform, alpha, read_points(points, grid, "--points"))
    write_points(out, fixed, grid=transform.grid)
