"""The ``cidir`` command line on bad input: one test per kind (exit status 2, one line on
stderr naming the file or argument, no traceback, no output left behind)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from cidir.cli.main import main
from cidir.data.synthetic import make_synthetic_pair
from cidir.io.images import write_image
from runs_helpers import CLI_TINY as TINY


def _expect_error(capsys, argv: list[str], *words: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word.lower() in err.lower(), (word, err)
    return err


def _write(path: Path, array: np.ndarray, like: Path) -> Path:
    ref = sitk.ReadImage(str(like))
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(ref)
    sitk.WriteImage(image, str(path))
    return path


def test_fit_missing_file(capsys, cli_files, tmp_path):
    out = tmp_path / "run"
    _expect_error(capsys, ["fit", str(tmp_path / "nope.nii.gz"), str(cli_files["moving"]),
                           "--out", str(out), *TINY], "nope.nii.gz")
    assert not out.exists()


def test_fit_corrupt_image(capsys, cli_files, tmp_path):
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"\x1f\x8b garbage, not an image" * 10)
    out = tmp_path / "run"
    _expect_error(capsys, ["fit", str(cli_files["fixed"]), str(bad), "--out", str(out), *TINY],
                  "bad.nii.gz")
    assert not out.exists()


def test_fit_dimension_mismatch(capsys, cli_files, tmp_path):
    pair2d = make_synthetic_pair(2, seed=0, size=(16, 16))
    path = tmp_path / "moving2d.nii.gz"
    write_image(pair2d.moving, path)
    out = tmp_path / "run"
    _expect_error(capsys, ["fit", str(cli_files["fixed"]), str(path), "--out", str(out), *TINY],
                  "2D")
    assert not out.exists()


def test_fit_mask_outside_its_image(capsys, cli_files, tmp_path):
    """A mask on another grid is resampled (tests/test_apply_options.py), one that does not
    overlap its image at all is refused."""
    mask = sitk.ReadImage(str(cli_files["mask"]))
    mask.SetOrigin([o + 500.0 for o in mask.GetOrigin()])
    path = tmp_path / "shifted_mask.nii.gz"
    sitk.WriteImage(mask, str(path))
    out = tmp_path / "run"
    _expect_error(capsys, ["fit", str(cli_files["fixed"]), str(cli_files["moving"]), "--out",
                           str(out),
                           "--fixed-mask", str(path), *TINY], "shifted_mask", "entirely outside")
    assert not out.exists()


def test_fit_empty_mask(capsys, cli_files, tmp_path):
    shape = sitk.GetArrayFromImage(sitk.ReadImage(str(cli_files["mask"]))).shape
    path = _write(tmp_path / "empty.nii.gz", np.zeros(shape, np.uint8), cli_files["mask"])
    out = tmp_path / "run"
    _expect_error(capsys, ["fit", str(cli_files["fixed"]), str(cli_files["moving"]), "--out",
                           str(out),
                           "--fixed-mask", str(path), *TINY], "empty")
    assert not out.exists()


def test_fit_nan_voxels(capsys, cli_files, tmp_path):
    array = sitk.GetArrayFromImage(sitk.ReadImage(str(cli_files["moving"]))).astype(np.float32)
    array[2, 3, 4] = np.nan
    array[1, 1, 1] = np.inf
    path = _write(tmp_path / "nan.mha", array, cli_files["moving"])
    out = tmp_path / "run"
    _expect_error(capsys, ["fit", str(cli_files["fixed"]), str(path), "--out", str(out), *TINY],
                  "nan.mha")
    assert not out.exists()


def test_fit_constant_image(capsys, cli_files, tmp_path):
    shape = sitk.GetArrayFromImage(sitk.ReadImage(str(cli_files["fixed"]))).shape
    path = _write(tmp_path / "const.nii.gz", np.full(shape, 3.0, np.float32), cli_files["fixed"])
    out = tmp_path / "run"
    _expect_error(capsys, ["fit", str(path), str(cli_files["moving"]), "--out", str(out), *TINY],
                  "constant")
    assert not out.exists()


def test_fit_bad_config_value(capsys, cli_files, tmp_path):
    out = tmp_path / "run"
    _expect_error(capsys, ["fit", str(cli_files["fixed"]), str(cli_files["moving"]), "--out",
                           str(out),
                           "--set", "training.nonsense=3"], "nonsense")
    config = tmp_path / "c.toml"
    config.write_text("[training]\nlearning_rate = -1\n")
    _expect_error(capsys, ["fit", str(cli_files["fixed"]), str(cli_files["moving"]), "--out",
                           str(out),
                           "--config", str(config)], "learning_rate")
    assert not out.exists()


def test_select_no_common_label(capsys, cli_files, cli_run, tmp_path):
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(cli_files["moving_labels"])))
    path = _write(tmp_path / "other.nii.gz", np.where(labels > 0, labels + 10, 0).astype(np.int32),
                  cli_files["moving_labels"])
    before = (cli_run / "selection.json").read_bytes()
    _expect_error(capsys, ["select", str(cli_run), "--fixed-labels", str(cli_files["fixed_labels"]),
                           "--moving-labels", str(path)], "common")
    assert (cli_run / "selection.json").read_bytes() == before


def test_select_labels_outside_their_image(capsys, cli_files, cli_run, tmp_path):
    labels = sitk.ReadImage(str(cli_files["fixed_labels"]))
    labels.SetOrigin([o - 500.0 for o in labels.GetOrigin()])
    path = tmp_path / "far.nii.gz"
    sitk.WriteImage(labels, str(path))
    before = (cli_run / "selection.json").read_bytes()
    _expect_error(capsys, ["select", str(cli_run), "--fixed-labels", str(path),
                           "--moving-labels", str(cli_files["moving_labels"])], "far.nii.gz",
                  "entirely outside")
    assert (cli_run / "selection.json").read_bytes() == before


def test_malformed_landmarks(capsys, cli_files, cli_run, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y,z\n1,2,3\n4,five,6\n")
    out = tmp_path / "eval.json"
    _expect_error(capsys, ["evaluate", str(cli_run), "--fixed-points", str(bad), "--moving-points",
                           str(cli_files["moving_points"]), "--out", str(out)], "bad.csv", "line 3")
    assert not out.exists()


def test_landmark_count_mismatch(capsys, cli_files, cli_run, tmp_path):
    fewer = tmp_path / "fewer.csv"
    lines = cli_files["fixed_points"].read_text(encoding="utf-8").splitlines()
    fewer.write_text("\n".join(lines[:-2]) + "\n")
    out = tmp_path / "eval.json"
    _expect_error(capsys, ["evaluate", str(cli_run), "--fixed-points", str(fewer),
                           "--moving-points",
                           str(cli_files["moving_points"]), "--out", str(out)], "8", "10")
    assert not out.exists()


@pytest.mark.parametrize("alpha", ["1.5", "-0.1", "nan"])
def test_alpha_outside_unit_interval(capsys, cli_files, cli_run, tmp_path, alpha):
    out = tmp_path / "w.nii.gz"
    _expect_error(capsys, ["apply", str(cli_run), "--alpha", alpha, "--image",
                           str(cli_files["moving"]),
                           "--out", str(out)], "--alpha")
    assert not out.exists()


def _copy_run(cli_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(cli_run, copy)
    return copy


def test_truncated_model(capsys, cli_files, cli_run, tmp_path):
    copy = _copy_run(cli_run, tmp_path)
    model = copy / "model.safetensors"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    out = tmp_path / "w.nii.gz"
    _expect_error(capsys, ["apply", str(copy), "--image", str(cli_files["moving"]), "--out",
                           str(out)], "model.safetensors")
    assert not out.exists()


def test_tampered_model(capsys, cli_files, cli_run, tmp_path):
    copy = _copy_run(cli_run, tmp_path)
    model = copy / "model.safetensors"
    data = bytearray(model.read_bytes())
    data[-100] ^= 0xFF  # a byte of the last tensor
    model.write_bytes(bytes(data))
    out = tmp_path / "w.nii.gz"
    _expect_error(capsys, ["apply", str(copy), "--image", str(cli_files["moving"]), "--out",
                           str(out)], "checksum")
    assert not out.exists()


def test_model_from_another_config(capsys, cli_files, cli_run, tmp_path):
    copy = _copy_run(cli_run, tmp_path)
    config = copy / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("width = 32", "width = 64"))
    out = tmp_path / "w.nii.gz"
    _expect_error(capsys, ["apply", str(copy), "--image", str(cli_files["moving"]), "--out",
                           str(out)], "different config")
    assert not out.exists()


def test_apply_without_selection_needs_alpha(capsys, cli_files, cli_run, tmp_path):
    copy = _copy_run(cli_run, tmp_path)
    (copy / "selection.json").unlink()
    out = tmp_path / "w.nii.gz"
    _expect_error(capsys, ["apply", str(copy), "--image", str(cli_files["moving"]), "--out",
                           str(out)], "select")
    assert main(["apply", str(copy), "--alpha", "0.5", "--image", str(cli_files["moving"]),
                 "--out", str(out)]) == 0
    assert out.is_file()


def test_fit_refuses_to_overwrite(capsys, cli_files, cli_run):
    _expect_error(capsys, ["fit", str(cli_files["fixed"]), str(cli_files["moving"]), "--out",
                           str(cli_run),
                           *TINY], "--overwrite")
