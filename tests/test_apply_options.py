"""``cidir apply`` like antsApplyTransforms: --reference (another output grid), --interpolation
linear|nearest|bspline, --default-value; and label maps / masks on another grid than their
image's, resampled with a note instead of refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from cidir.cli.main import main
from cidir.config import ModelConfig
from cidir.fields import ConditionedTransform, warp_image
from cidir.geometry import Grid, Image
from cidir.models import DeformationModel
from runs_helpers import CLI_TINY, expect_error

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ALPHA = "0.4"


def _read(path) -> Image:
    return Image.from_sitk(sitk.ReadImage(str(path)), str(path))


def _write_grid(grid: Grid, path) -> str:
    """A reference image file on ``grid`` (its values are not used)."""
    sitk.WriteImage(grid.to_sitk(np.zeros(grid.shape, np.uint8)), str(path))
    return str(path)


def _apply(run, out, *options: str) -> Image:
    assert main(["apply", str(run), *options, "--out", str(out), "--alpha", ALPHA,
                 "--quiet"]) == 0
    return _read(out)


@pytest.fixture(scope="module")
def fixed_grid(cli_files) -> Grid:
    return _read(cli_files["fixed"]).grid


def _finer(grid: Grid) -> Grid:
    """Half the spacing, starting one voxel in: every other voxel of it is a voxel of
    ``grid`` (1 + j/2), and it lies inside ``grid``."""
    size = tuple(2 * (s - 3) + 1 for s in grid.size)
    origin = grid.voxel_to_world(np.ones(grid.ndim))
    return Grid(size, tuple(s / 2 for s in grid.spacing), tuple(origin), grid.direction)


def _larger(grid: Grid, margin: int) -> Grid:
    """``grid`` grown by ``margin`` voxels on every side (same spacing and direction)."""
    return grid.region((-margin,) * grid.ndim, tuple(s + 2 * margin for s in grid.size))


# ------------------------------------------------------------------ --reference
def test_reference_finer_grid_matches_default_output(cli_files, cli_run, fixed_grid, tmp_path):
    """On a grid of half the spacing and another origin, the voxels shared with the fixed
    grid get the default output's values (image: linear; labels: nearest)."""
    fine = _finer(fixed_grid)
    ref = _write_grid(fine, tmp_path / "fine.nii.gz")
    default = _apply(cli_run, tmp_path / "d.nii.gz", "--image", str(cli_files["moving"]))
    found = _apply(cli_run, tmp_path / "f.nii.gz", "--image", str(cli_files["moving"]),
                   "--reference", ref)
    assert found.grid.same_as(fine)
    shared = tuple(slice(1, s - 1) for s in fixed_grid.shape)
    span = float(np.ptp(default.array))
    np.testing.assert_allclose(found.array[::2, ::2, ::2], default.array[shared],
                               atol=1e-4 * span)
    assert np.abs(found.array[1::2, 1::2, 1::2]).max() > 0  # in between: interpolated
    labels_d = _apply(cli_run, tmp_path / "ld.nii.gz", "--labels",
                      str(cli_files["moving_labels"]))
    labels_f = _apply(cli_run, tmp_path / "lf.nii.gz", "--labels",
                      str(cli_files["moving_labels"]), "--reference", ref)
    assert labels_f.array.dtype == np.int32 and labels_f.grid.same_as(fine)
    assert (labels_f.array[::2, ::2, ::2] == labels_d.array[shared]).mean() > 0.995
    assert labels_d.array[shared].any()


def test_reference_beyond_fixed_domain_and_default_value(cli_files, cli_run, fixed_grid,
                                                         tmp_path, capfd):
    """A reference larger than the fixed image: a note on stderr; inside the fixed domain the
    default output; outside it φ = x (no --init), which here is outside the moving image
    (the pair shares one grid), so every voxel there gets --default-value."""
    big = _larger(fixed_grid, 4)
    ref = _write_grid(big, tmp_path / "big.nii.gz")
    moving = ["--image", str(cli_files["moving"]), "--default-value", "-7"]
    default = _apply(cli_run, tmp_path / "d.nii.gz", *moving)
    capfd.readouterr()
    assert main(["apply", str(cli_run), *moving, "--reference", ref, "--out",
                 str(tmp_path / "b.nii.gz"), "--alpha", ALPHA]) == 0
    err = capfd.readouterr().err
    assert "outside the fixed image's domain" in err and "big.nii.gz" in err
    found = _read(tmp_path / "b.nii.gz")
    assert found.grid.same_as(big)
    inner = (slice(4, -4),) * 3
    np.testing.assert_allclose(found.array[inner], default.array, atol=1e-4)
    ring = np.ones(big.shape, bool)
    ring[inner] = False
    assert (found.array[ring] == -7).all()
    assert (default.array == -7).mean() < 0.2 and (found.array[inner] != -7).any()
    labels = _apply(cli_run, tmp_path / "l.nii.gz", "--labels",
                    str(cli_files["moving_labels"]), "--reference", ref, "--default-value", "5")
    assert (labels.array[ring] == 5).all() and labels.array.dtype == np.int32


def _random_transform(grid: Grid, init_matrix: np.ndarray) -> ConditionedTransform:
    """An untrained cidir model with displacements of a few mm, and an initial affine."""
    torch.manual_seed(0)
    model = DeformationModel(ModelConfig(width=16, hidden_layers=1, harmonizer_widths=(8,),
                                         omega_first=2.0), 3)
    with torch.no_grad():
        model.mlp.output.weight.copy_(0.05 * torch.randn(3, 16))
    return ConditionedTransform(model, grid, init_matrix)


def test_outside_fixed_domain_the_initial_affine_alone():
    """Outside the fixed domain φ(x) = A·x + t: the warped values there equal SimpleITK's
    resampling with the initial affine alone; inside they differ (u ≠ 0)."""
    fixed = Grid((10, 9, 6), (2.0, 2.5, 3.0), (-5.0, 3.0, 1.0), tuple(np.eye(3).ravel()))
    affine = np.eye(4)
    affine[:3, :3] = [[1.05, 0.05, 0.0], [-0.03, 0.95, 0.0], [0.0, 0.02, 1.1]]
    affine[:3, 3] = [2.0, -1.5, 1.0]
    transform = _random_transform(fixed, affine)
    moving_grid = _larger(fixed, 6)
    w = moving_grid.world_points()
    values = np.sin(w @ np.array([0.2, -0.15, 0.1])).reshape(moving_grid.shape)
    moving = Image(values.astype(np.float32), moving_grid, "moving")
    out_grid = _larger(fixed, 3)
    found = warp_image(transform, moving, 0.5, out_grid).array
    sitk_affine = sitk.AffineTransform(3)
    sitk_affine.SetMatrix(affine[:3, :3].ravel().tolist())
    sitk_affine.SetTranslation(affine[:3, 3].tolist())
    reference = out_grid.to_sitk(np.zeros(out_grid.shape, np.float32))
    expected = sitk.GetArrayFromImage(sitk.Resample(moving.to_sitk(), reference, sitk_affine,
                                                    sitk.sitkLinear, 0.0))
    outside = ~fixed.contains_world(out_grid.world_points(), margin=0.5).reshape(
        out_grid.shape)
    assert outside.mean() > 0.3
    np.testing.assert_allclose(found[outside], expected[outside], atol=1e-4)
    assert np.abs(found[~outside] - expected[~outside]).max() > 0.05


# ------------------------------------------------------------ --interpolation
def test_nearest_gives_only_input_values(cli_files, cli_run, tmp_path):
    moving = _read(cli_files["moving"]).array
    linear = _apply(cli_run, tmp_path / "l.nii.gz", "--image", str(cli_files["moving"]))
    nearest = _apply(cli_run, tmp_path / "n.nii.gz", "--image", str(cli_files["moving"]),
                     "--interpolation", "nearest")
    assert np.isin(nearest.array, np.append(np.unique(moving), 0)).all()
    assert not np.isin(linear.array, moving).all()
    span = float(np.ptp(moving))
    assert np.abs(nearest.array - linear.array).mean() < 0.05 * span


def test_bspline_close_to_linear_and_equal_to_sitk(cli_files, cli_run, tmp_path):
    """Cubic B-spline: near linear on the smooth synthetic image but not equal to it, and
    equal to sitk.Resample(sitkBSpline) with the field that export writes."""
    linear = _apply(cli_run, tmp_path / "l.nii.gz", "--image", str(cli_files["moving"]))
    bspline = _apply(cli_run, tmp_path / "b.nii.gz", "--image", str(cli_files["moving"]),
                     "--interpolation", "bspline")
    span = float(np.ptp(linear.array))
    difference = np.abs(bspline.array - linear.array)
    assert difference.mean() < 0.03 * span and difference.max() > 1e-3 * span
    field = tmp_path / "field.nii.gz"
    assert main(["export", str(cli_run), "--field", str(field), "--alpha", ALPHA,
                 "--quiet"]) == 0
    transform = sitk.DisplacementFieldTransform(sitk.ReadImage(str(field),
                                                               sitk.sitkVectorFloat64))
    expected = sitk.Resample(sitk.ReadImage(str(cli_files["moving"]), sitk.sitkFloat32),
                             sitk.ReadImage(str(cli_files["fixed"])), transform,
                             sitk.sitkBSpline, 0.0, sitk.sitkFloat32)
    np.testing.assert_allclose(bspline.array, sitk.GetArrayFromImage(expected),
                               atol=1e-4 * span)


# ------------------------------------------------------------------- refused
@pytest.mark.parametrize("options, words", [
    (["--labels", "{labels}", "--interpolation", "linear"], ("--interpolation linear",
                                                             "nearest")),
    (["--labels", "{labels}", "--interpolation", "bspline"], ("nearest",)),
    (["--labels", "{labels}", "--default-value", "1.5"], ("--default-value", "integer")),
    (["--image", "{moving}", "--default-value", "nan"], ("--default-value", "finite")),
    (["--points", "{points}", "--reference", "{moving}"], ("--reference", "--image")),
    (["--image", "{moving}", "--reference", "{flat}"], ("--reference", "3D", "2D")),
])
def test_bad_apply_options(capfd, cli_files, cli_run, tmp_path, options, words):
    flat = tmp_path / "flat.nii.gz"
    sitk.WriteImage(sitk.Image([5, 4], sitk.sitkUInt8), str(flat))
    names = {"labels": cli_files["moving_labels"], "moving": cli_files["moving"],
             "points": cli_files["fixed_points"], "flat": flat}
    out = tmp_path / "out.nii.gz"
    argv = ["apply", str(cli_run), *[o.format(**names) for o in options], "--out", str(out)]
    expect_error(capfd, argv, *words)
    assert not out.exists()


# ------------------------------------------- masks and labels on another grid
def _coarser(path, out, factor: float = 1.5):
    """``path`` resampled (nearest) onto a grid of ``factor`` × its spacing, half a voxel
    off its origin, covering the same region."""
    image = sitk.ReadImage(str(path))
    spacing = [s * factor for s in image.GetSpacing()]
    size = [int(n / factor) for n in image.GetSize()]
    origin = np.add(image.GetOrigin(), np.asarray(image.GetDirection()).reshape(3, 3)
                    @ (0.5 * np.asarray(image.GetSpacing())))
    coarse = sitk.Resample(image, size, sitk.Transform(), sitk.sitkNearestNeighbor,
                           origin.tolist(), spacing, image.GetDirection(), 0)
    sitk.WriteImage(coarse, str(out))
    return out


def test_mask_and_labels_on_another_grid_are_resampled(capfd, cli_files, cli_run, tmp_path):
    """fit --fixed-mask, evaluate --mask and select/evaluate --fixed-labels on a coarser
    grid: resampled onto the image's grid with a note naming the file, and the commands
    run; the run records the file given (its checksum), and later commands read it again."""
    mask = _coarser(cli_files["mask"], tmp_path / "coarse_mask.nii.gz")
    labels = _coarser(cli_files["fixed_labels"], tmp_path / "coarse_labels.nii.gz")
    run = tmp_path / "run"
    capfd.readouterr()
    assert main(["fit", str(cli_files["fixed"]), str(cli_files["moving"]), "--out", str(run),
                 "--fixed-mask", str(mask), *CLI_TINY]) == 0
    err = capfd.readouterr().err
    assert "coarse_mask.nii.gz" in err and "resampled" in err and "fixed mask" in err
    inputs = json.loads((run / "inputs.json").read_text(encoding="utf-8"))["inputs"]
    assert inputs["fixed_mask"]["path"].endswith("coarse_mask.nii.gz")
    assert main(["evaluate", str(run), "--alpha", "0.5", "--quiet"]) == 0  # the run's mask
    assert "coarse_mask.nii.gz" in capfd.readouterr().err
    assert main(["evaluate", str(cli_run), "--mask", str(mask), "--fixed-labels", str(labels),
                 "--moving-labels", str(cli_files["moving_labels"]), "--out",
                 str(tmp_path / "e.json"), "--quiet"]) == 0
    err = capfd.readouterr().err
    assert "coarse_mask.nii.gz" in err and "coarse_labels.nii.gz" in err
    evaluation = json.loads((tmp_path / "e.json").read_text(encoding="utf-8"))
    assert evaluation["dice"] > 0.3
    assert main(["select", str(run), "--fixed-labels", str(labels), "--moving-labels",
                 str(cli_files["moving_labels"]), "--selection-num-alphas", "3",
                 "--quiet"]) == 0
    assert "coarse_labels.nii.gz" in capfd.readouterr().err


def test_mapped_points_in_a_voxel_format_index_the_moving_grid(cli_files, tmp_path):
    """apply --points maps fixed points into moving space: written as DIR-LAB voxel indices
    they index the moving grid (here shifted and coarser than the fixed one), so reading
    them back on the moving grid gives the same world points as the CSV output."""
    from cidir.io.images import read_image, write_image
    from cidir.io.landmarks import read_points

    moving = read_image(cli_files["moving"])
    g = moving.grid
    shifted = Grid(g.size, tuple(1.25 * s for s in g.spacing),
                   tuple(o + 3.0 for o in g.origin), g.direction)
    write_image(Image(moving.array, shifted), tmp_path / "moving_shifted.nii.gz")
    run = tmp_path / "run"
    assert main(["fit", str(cli_files["fixed"]), str(tmp_path / "moving_shifted.nii.gz"),
                 "--out", str(run), *CLI_TINY]) == 0
    for name in ("mapped.csv", "mapped_xyz.txt"):
        assert main(["apply", str(run), "--points", str(cli_files["fixed_points"]),
                     "--out", str(tmp_path / name), "--alpha", "0.5", "--quiet"]) == 0
    world = read_points(tmp_path / "mapped.csv")
    voxel = read_points(tmp_path / "mapped_xyz.txt", shifted)
    # DIR-LAB indices are written to 4 decimals: within 1e-4 voxel
    assert np.allclose(voxel, world, atol=1e-4 * max(shifted.spacing))
