"""``cidir export --warp-only W --affine A``: φ's two parts apart, as ANTs users chain them
(``antsApplyTransforms -t W -t A``). Oracle: SimpleITK's CompositeTransform of the two
files (the affine added first, so the warp is applied to points first) equals the whole
field that ``--field`` writes, at points and in resampling."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from cidir.alignment.initial import write_transform
from runs_helpers import expect_error, fit_args, main, write_pair

# a rotation of 6° about an oblique axis, a mild anisotropic scaling and a shift (mm)
ANGLE = np.deg2rad(6.0)
AXIS = np.array([1.0, 2.0, 2.0]) / 3.0
K = np.array([[0, -AXIS[2], AXIS[1]], [AXIS[2], 0, -AXIS[0]], [-AXIS[1], AXIS[0], 0]])
ROTATION = np.eye(3) + np.sin(ANGLE) * K + (1 - np.cos(ANGLE)) * K @ K
AFFINE = np.eye(4)
AFFINE[:3, :3] = ROTATION @ np.diag([1.04, 0.97, 1.02])
AFFINE[:3, 3] = [2.5, -1.5, 3.0]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("parts")
    files = write_pair(root / "pair")
    write_transform(AFFINE, root / "init.tfm")
    run = root / "run"
    assert main(fit_args(files, run, "--init", str(root / "init.tfm"))) == 0
    out = {name: root / name for name in ("field.nii.gz", "warp.nii.gz", "affine.mat")}
    assert main(["export", str(run), "--alpha", "0.3", "--field", str(out["field.nii.gz"]),
                 "--warp-only", str(out["warp.nii.gz"]), "--affine", str(out["affine.mat"]),
                 "--quiet"]) == 0
    return files, run, out


def _field_transform(path) -> sitk.DisplacementFieldTransform:
    return sitk.DisplacementFieldTransform(sitk.ReadImage(str(path), sitk.sitkVectorFloat64))


def test_affine_then_warp_reproduce_the_whole_field(exported):
    files, _, out = exported
    affine = sitk.ReadTransform(str(out["affine.mat"]))
    linear = np.array(affine.GetParameters()[:9]).reshape(3, 3)
    np.testing.assert_allclose(linear, AFFINE[:3, :3], atol=1e-6)
    warp = sitk.ReadImage(str(out["warp.nii.gz"]), sitk.sitkVectorFloat64)
    assert np.abs(sitk.GetArrayFromImage(warp)).max() > 0.01  # a real deformable part
    chain = sitk.CompositeTransform(3)
    chain.AddTransform(affine)
    chain.AddTransform(sitk.DisplacementFieldTransform(warp))  # applied to points first
    whole = _field_transform(out["field.nii.gz"])
    fixed = sitk.ReadImage(str(files["fixed"]))
    rng = np.random.default_rng(3)
    for index in rng.uniform(1, np.array(fixed.GetSize()) - 2, (50, 3)):
        x = fixed.TransformContinuousIndexToPhysicalPoint(tuple(index))
        np.testing.assert_allclose(chain.TransformPoint(x), whole.TransformPoint(x), atol=1e-4)
    moving = sitk.ReadImage(str(files["moving"]), sitk.sitkFloat32)
    by_chain = sitk.GetArrayFromImage(sitk.Resample(moving, fixed, chain, sitk.sitkLinear))
    by_whole = sitk.GetArrayFromImage(sitk.Resample(moving, fixed, whole, sitk.sitkLinear))
    np.testing.assert_allclose(by_chain, by_whole, atol=1e-3 * np.ptp(by_whole))


def test_bad_part_outputs_are_refused(capfd, exported, tmp_path):
    _, run, _ = exported
    expect_error(capfd, ["export", str(run), "--alpha", "0.3", "--affine",
                         str(tmp_path / "a.nii.gz")],
                 "--affine", ".mat")
    expect_error(capfd, ["export", str(run), "--alpha", "0.3", "--warp-only",
                         str(tmp_path / "w.txt"), "--format", "elastix"], "--warp-only",
                 "elastix")
    expect_error(capfd, ["export", str(run)], "--warp-only", "--affine")
    assert not list(tmp_path.iterdir())
