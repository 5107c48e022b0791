"""φ⁻¹ by fixed-point iteration on the network: against SimpleITK's InvertDisplacementField
(the oracle), round trips with an initial affine, and the commands (export --inverse-field,
apply --points --inverse)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from cidir.fields import displacement_field
from cidir.fields.inverse import (
    inverse_consistency,
    inverse_displacement_field,
    inverse_map_points,
)
from cidir.io.landmarks import read_points
from runs_helpers import expect_error, fit_args, main, write_pair
from test_dense import ALPHA, FIXED, SCALING, _transform

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_inverse_field_matches_simpleitk():
    """Without an initial affine φ⁻¹ − id lives on the same grid as the forward field, where
    SimpleITK inverts the sampled field: both agree inside (2 voxels from the border)."""
    transform = _transform()
    forward = displacement_field(transform, ALPHA)
    assert np.abs(forward).max() > 0.5  # a deformation worth inverting
    oracle = sitk.InvertDisplacementField(
        FIXED.to_sitk(forward.astype(np.float64), vector=True), maximumNumberOfIterations=100,
        maxErrorToleranceThreshold=1e-4, meanErrorToleranceThreshold=1e-5,
        enforceBoundaryCondition=False)
    expected = sitk.GetArrayFromImage(oracle)
    ours, residual = inverse_displacement_field(transform, ALPHA, FIXED)
    inner = (slice(2, -2),) * 3
    error = np.linalg.norm(ours[inner] - expected[inner], axis=-1)
    assert error.mean() < 0.01 and error.max() < 0.02, (error.mean(), error.max())
    assert residual.max() < 1e-3


def test_round_trips_with_an_initial_affine():
    transform = _transform(SCALING)
    rng = np.random.default_rng(1)
    fixed_points = FIXED.voxel_to_world(rng.uniform(0, np.array(FIXED.size) - 1, (500, 3)))
    moving_points = transform.map_points(fixed_points, ALPHA)
    back, residual = inverse_map_points(transform, ALPHA, moving_points)
    assert np.abs(back - fixed_points).max() < 1e-3 and residual.max() < 1e-3
    stats = inverse_consistency(transform, ALPHA, fixed_points)
    assert stats["p95_mm"] < 1e-3 and stats["points"] == 500


def test_commands_export_and_apply_the_inverse(capfd, tmp_path):
    files = write_pair(tmp_path / "pair")
    run = tmp_path / "run"
    assert main(fit_args(files, run, "--init", "moments", "--fixed-mask", str(files["mask"]))) == 0
    inverse = tmp_path / "inverse.nii.gz"
    assert main(["export", str(run), "--alpha", "0.4", "--inverse-field", str(inverse),
                 "--json"]) == 0
    out = json.loads(capfd.readouterr().out)
    summary = json.loads((run / "inverse.json").read_text())
    assert out["inverse"]["inverse_consistency"] == summary["inverse_consistency"]
    assert summary["inverse_consistency_region"] == "fixed mask"
    assert summary["inverse_consistency"]["p95_mm"] < 1e-2
    moving = sitk.ReadImage(str(files["moving"]))
    assert sitk.ReadImage(str(inverse)).GetSize() == moving.GetSize()  # the moving grid
    mapped, back = tmp_path / "mapped.csv", tmp_path / "back.csv"
    assert main(["apply", str(run), "--alpha", "0.4", "--points", str(files["fixed_points"]),
                 "--out", str(mapped), "--quiet"]) == 0
    assert main(["apply", str(run), "--alpha", "0.4", "--points", str(mapped), "--inverse",
                 "--out", str(back), "--quiet"]) == 0
    original = read_points(files["fixed_points"], None, "fixed points")
    np.testing.assert_allclose(read_points(back, None, "back"), original, atol=1e-2)
    # the inverse field says the same as the inverse points: y + field(y) at a moving point
    tx = sitk.DisplacementFieldTransform(sitk.ReadImage(str(inverse), sitk.sitkVectorFloat64))
    y = read_points(mapped, None, "mapped")[0]
    np.testing.assert_allclose(tx.TransformPoint(tuple(y)), original[0], atol=0.05)


def test_inverse_options_are_checked(capfd, tmp_path):
    files = write_pair(tmp_path / "pair")
    run = tmp_path / "run"
    assert main(fit_args(files, run)) == 0
    expect_error(capfd, ["apply", str(run), "--alpha", "0.4", "--image", str(files["moving"]),
                         "--inverse", "--out", str(tmp_path / "w.nii.gz")], "--inverse")
    expect_error(capfd, ["export", str(run), "--alpha", "0.4", "--inverse-field",
                         str(tmp_path / "i.txt"), "--format", "elastix"], "--inverse-field")
    assert not (tmp_path / "w.nii.gz").exists() and not (run / "inverse.json").exists()
