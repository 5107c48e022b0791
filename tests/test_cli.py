"""The ``cidir`` command line: the fit → select → apply/export → evaluate → report sequence
through the installed console script, and one test per kind of bad input (exit status 2, one
line on stderr, no traceback, no output left behind)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from cidir.cli.main import main
from cidir.data.synthetic import make_synthetic_pair
from cidir.geometry import Image
from cidir.io.images import write_image
from runs_helpers import write_pair

TINY = ["--model-width", "32", "--training-iterations", "30", "--training-batch-size", "500",
        "--objective-calibration-iterations", "5",
        "--selection-num-alphas", "5", "--quiet"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A small 3D synthetic pair on disk (anisotropic, rotated grid), moving points as .fcsv."""
    return write_pair(tmp_path_factory.mktemp("pair"), size=(24, 20, 12), points=10,
                      moving_points_name="moving_points.fcsv")


@pytest.fixture(scope="module")
def run(files, tmp_path_factory) -> Path:
    """A trained and selected run (in-process, tiny)."""
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(["fit", str(files["fixed"]), str(files["moving"]), "--out", str(out),
                 "--fixed-mask", str(files["mask"]), *TINY]) == 0
    assert main(["select", str(out), "--fixed-labels", str(files["fixed_labels"]),
                 "--moving-labels", str(files["moving_labels"]),
                 "--selection-num-alphas", "5"]) == 0
    return out


def _console_script() -> str:
    exe = Path(sys.executable).with_name("cidir")
    found = str(exe) if exe.exists() else shutil.which("cidir")
    if found is None:
        pytest.skip("the cidir console script is not installed")
    return found


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_console_script(), *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow  # 30 s: the installed console script end to end, in subprocesses
def test_console_script_full_sequence(files, tmp_path):
    """fit → select → apply → export → evaluate → report on files, via the console script;
    the exported field, applied by SimpleITK, reproduces cidir's own warp."""
    out = tmp_path / "run"
    r = _cli("fit", str(files["fixed"]), str(files["moving"]), "--out", str(out),
             "--fixed-mask", str(files["mask"]), "--init", "moments", *TINY)
    assert r.returncode == 0, r.stderr
    for name in ("model.safetensors", "config.toml", "metrics.json", "loss.csv", "inputs.json",
                 "init_transform.tfm"):
        assert (out / name).is_file(), name
    r = _cli("select", str(out), "--fixed-labels", str(files["fixed_labels"]),
             "--moving-labels", str(files["moving_labels"]), "--selection-num-alphas", "5",
             "--fixed-points", str(files["fixed_points"]),
             "--moving-points", str(files["moving_points"]))
    assert r.returncode == 0, r.stderr
    selection = json.loads((out / "selection.json").read_text(encoding="utf-8"))
    assert {"alpha", "dice", "folding_percent", "tre_mm"} <= set(selection)
    assert len((out / "alpha_table.csv").read_text(encoding="utf-8").strip().splitlines()) == 6
    warped = tmp_path / "warped.nii.gz"
    assert _cli("apply", str(out), "--image", str(files["moving"]), "--out",
                str(warped)).returncode == 0
    assert _cli("apply", str(out), "--labels", str(files["moving_labels"]), "--out",
                str(tmp_path / "wl.nii.gz")).returncode == 0
    assert _cli("apply", str(out), "--points", str(files["fixed_points"]), "--out",
                str(tmp_path / "mapped.csv")).returncode == 0
    field = tmp_path / "field.nii.gz"
    r = _cli("export", str(out), "--field", str(field), "--jacobian", str(tmp_path / "jac.mha"))
    assert r.returncode == 0, r.stderr
    assert _cli("export", str(out), "--field", str(tmp_path / "w1Warp.nii.gz"),
                "--format", "ants").returncode == 0
    assert _cli("export", str(out), "--field", str(tmp_path / "tp.txt"),
                "--format", "elastix").returncode == 0
    assert (tmp_path / "tp_field.nii.gz").is_file()
    r = _cli("evaluate", str(out), "--fixed-points", str(files["fixed_points"]),
             "--moving-points", str(files["moving_points"]),
             "--fixed-labels", str(files["fixed_labels"]),
             "--moving-labels", str(files["moving_labels"]))
    assert r.returncode == 0, r.stderr
    evaluation = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    assert {"tre_before", "tre_after", "dice", "folding_percent"} <= set(evaluation)
    r = _cli("report", str(out))
    assert r.returncode == 0, r.stderr
    assert (out / "report.html").is_file()

    # oracle: SimpleITK applying the exported field (initial alignment included) = cidir warp
    fixed = sitk.ReadImage(str(files["fixed"]))
    moving = sitk.ReadImage(str(files["moving"]), sitk.sitkFloat32)
    transform = sitk.DisplacementFieldTransform(sitk.ReadImage(str(field), sitk.sitkVectorFloat64))
    oracle = sitk.GetArrayFromImage(sitk.Resample(moving, fixed, transform, sitk.sitkLinear, 0.0))
    ours = sitk.GetArrayFromImage(sitk.ReadImage(str(warped)))
    scale = np.abs(sitk.GetArrayFromImage(moving)).max()
    assert np.median(np.abs(oracle - ours)) < 1e-4 * scale
    assert np.mean(np.abs(oracle - ours) < 1e-3 * scale) > 0.97


def test_help_is_complete(capsys):
    """Every command has --help naming its main options."""
    for command, option in [("fit", "--fixed-mask"), ("select", "--fixed-labels"),
                            ("apply", "--points"), ("export", "--format"),
                            ("evaluate", "--fixed-points"), ("report", "--alpha"),
                            ("phantom", "--size"), ("phantom", "--variant"),
                            ("demo", "--device"), ("demo", "--variant"), ("dirlab", "--case"),
                            ("cohort", "--workers")]:
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert option in capsys.readouterr().out
    r = _cli("fit", "--help")
    assert "--training-iterations" in r.stdout and "--regularizer" in r.stdout


def test_one_spelling_per_configuration_value():
    """A command with configuration options has no other option writing a configuration
    value (the old aliases --iterations, --seed, --alphas are gone)."""
    import dataclasses

    from cidir.cli.config_options import SECTIONS
    from cidir.cli.main import build_parser

    fields = {f.name for cls in SECTIONS.values() for f in dataclasses.fields(cls)}
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    checked = 0
    for name, sub in subparsers.items():
        dests = [a.dest for a in sub._actions]
        if not any(d.startswith("cfg__") for d in dests):
            continue
        checked += 1
        plain = {d for d in dests if not d.startswith("cfg__")}
        assert not plain & fields, (name, plain & fields)
        flags = [o for a in sub._actions for o in a.option_strings]
        assert len(flags) == len(set(flags)), name
    assert checked == 5  # fit, select, demo, dirlab, cohort
    for argv in (["fit", "a", "b", "--out", "r", "--iterations", "5"],
                 ["select", "r", "--fixed-labels", "a", "--moving-labels", "b", "--alphas", "5"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2


def test_output_style(capsys, files, run, tmp_path):
    """The human summary goes to stderr, JSON to stdout only with --json (the same numbers
    as the file written), nothing but warnings with --quiet."""
    out = tmp_path / "eval.json"
    argv = ["evaluate", str(run), "--fixed-labels", str(files["fixed_labels"]),
            "--moving-labels", str(files["moving_labels"]), "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "Dice" in captured.err and "folding" in captured.err
    assert main([*argv, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads(out.read_text(encoding="utf-8"))
    assert printed["dice"] == written["dice"] and printed["alpha"] == written["alpha"]
    assert main([*argv, "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")
    assert main(["select", str(run), "--fixed-labels", str(files["fixed_labels"]),
                 "--moving-labels", str(files["moving_labels"]), "--selection-num-alphas",
                 "5", "--json", "--quiet"]) == 0
    captured = capsys.readouterr()
    selection = json.loads(captured.out)
    assert len(selection["rows"]) == 5 and "chosen" not in captured.err


# ----------------------------------------------------------------------- bad input
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


def test_fit_missing_file(capsys, files, tmp_path):
    out = tmp_path / "run"
    _expect_error(capsys, ["fit", str(tmp_path / "nope.nii.gz"), str(files["moving"]),
                           "--out", str(out), *TINY], "nope.nii.gz")
    assert not out.exists()


def test_fit_corrupt_image(capsys, files, tmp_path):
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"\x1f\x8b garbage, not an image" * 10)
    out = tmp_path / "run"
    _expect_error(capsys, ["fit", str(files["fixed"]), str(bad), "--out", str(out), *TINY],
                  "bad.nii.gz")
    assert not out.exists()


def test_fit_dimension_mismatch(capsys, files, tmp_path):
    pair2d = make_synthetic_pair(2, seed=0, size=(16, 16))
    path = tmp_path / "moving2d.nii.gz"
    write_image(pair2d.moving, path)
    out = tmp_path / "run"
    _expect_error(capsys, ["fit", str(files["fixed"]), str(path), "--out", str(out), *TINY],
                  "2D")
    assert not out.exists()


def test_fit_mask_on_other_grid(capsys, files, tmp_path):
    mask = sitk.ReadImage(str(files["mask"]))
    mask.SetOrigin([o + 7.0 for o in mask.GetOrigin()])
    path = tmp_path / "shifted_mask.nii.gz"
    sitk.WriteImage(mask, str(path))
    out = tmp_path / "run"
    _expect_error(capsys, ["fit", str(files["fixed"]), str(files["moving"]), "--out", str(out),
                           "--fixed-mask", str(path), *TINY], "shifted_mask")
    assert not out.exists()


def test_fit_empty_mask(capsys, files, tmp_path):
    shape = sitk.GetArrayFromImage(sitk.ReadImage(str(files["mask"]))).shape
    path = _write(tmp_path / "empty.nii.gz", np.zeros(shape, np.uint8), files["mask"])
    out = tmp_path / "run"
    _expect_error(capsys, ["fit", str(files["fixed"]), str(files["moving"]), "--out", str(out),
                           "--fixed-mask", str(path), *TINY], "empty")
    assert not out.exists()


def test_fit_nan_voxels(capsys, files, tmp_path):
    array = sitk.GetArrayFromImage(sitk.ReadImage(str(files["moving"]))).astype(np.float32)
    array[2, 3, 4] = np.nan
    array[1, 1, 1] = np.inf
    path = _write(tmp_path / "nan.mha", array, files["moving"])
    out = tmp_path / "run"
    _expect_error(capsys, ["fit", str(files["fixed"]), str(path), "--out", str(out), *TINY],
                  "nan.mha")
    assert not out.exists()


def test_fit_constant_image(capsys, files, tmp_path):
    shape = sitk.GetArrayFromImage(sitk.ReadImage(str(files["fixed"]))).shape
    path = _write(tmp_path / "const.nii.gz", np.full(shape, 3.0, np.float32), files["fixed"])
    out = tmp_path / "run"
    _expect_error(capsys, ["fit", str(path), str(files["moving"]), "--out", str(out), *TINY],
                  "constant")
    assert not out.exists()


def test_fit_bad_config_value(capsys, files, tmp_path):
    out = tmp_path / "run"
    _expect_error(capsys, ["fit", str(files["fixed"]), str(files["moving"]), "--out", str(out),
                           "--set", "training.nonsense=3"], "nonsense")
    config = tmp_path / "c.toml"
    config.write_text("[training]\nlearning_rate = -1\n")
    _expect_error(capsys, ["fit", str(files["fixed"]), str(files["moving"]), "--out", str(out),
                           "--config", str(config)], "learning_rate")
    assert not out.exists()


def test_select_no_common_label(capsys, files, run, tmp_path):
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(files["moving_labels"])))
    path = _write(tmp_path / "other.nii.gz", np.where(labels > 0, labels + 10, 0).astype(np.int32),
                  files["moving_labels"])
    before = (run / "selection.json").read_bytes()
    _expect_error(capsys, ["select", str(run), "--fixed-labels", str(files["fixed_labels"]),
                           "--moving-labels", str(path)], "common")
    assert (run / "selection.json").read_bytes() == before


def test_select_labels_on_other_grid(capsys, files, run, tmp_path):
    labels = sitk.ReadImage(str(files["fixed_labels"]))
    labels.SetSpacing([s * 1.5 for s in labels.GetSpacing()])
    path = tmp_path / "stretched.nii.gz"
    sitk.WriteImage(labels, str(path))
    _expect_error(capsys, ["select", str(run), "--fixed-labels", str(path),
                           "--moving-labels", str(files["moving_labels"])], "stretched")


def test_malformed_landmarks(capsys, files, run, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y,z\n1,2,3\n4,five,6\n")
    out = tmp_path / "eval.json"
    _expect_error(capsys, ["evaluate", str(run), "--fixed-points", str(bad), "--moving-points",
                           str(files["moving_points"]), "--out", str(out)], "bad.csv", "line 3")
    assert not out.exists()


def test_landmark_count_mismatch(capsys, files, run, tmp_path):
    fewer = tmp_path / "fewer.csv"
    lines = files["fixed_points"].read_text(encoding="utf-8").splitlines()
    fewer.write_text("\n".join(lines[:-2]) + "\n")
    out = tmp_path / "eval.json"
    _expect_error(capsys, ["evaluate", str(run), "--fixed-points", str(fewer), "--moving-points",
                           str(files["moving_points"]), "--out", str(out)], "8", "10")
    assert not out.exists()


@pytest.mark.parametrize("alpha", ["1.5", "-0.1", "nan"])
def test_alpha_outside_unit_interval(capsys, files, run, tmp_path, alpha):
    out = tmp_path / "w.nii.gz"
    _expect_error(capsys, ["apply", str(run), "--alpha", alpha, "--image", str(files["moving"]),
                           "--out", str(out)], "--alpha")
    assert not out.exists()


def _copy_run(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    return copy


def test_truncated_model(capsys, files, run, tmp_path):
    copy = _copy_run(run, tmp_path)
    model = copy / "model.safetensors"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    out = tmp_path / "w.nii.gz"
    _expect_error(capsys, ["apply", str(copy), "--image", str(files["moving"]), "--out",
                           str(out)], "model.safetensors")
    assert not out.exists()


def test_tampered_model(capsys, files, run, tmp_path):
    copy = _copy_run(run, tmp_path)
    model = copy / "model.safetensors"
    data = bytearray(model.read_bytes())
    data[-100] ^= 0xFF  # a byte of the last tensor
    model.write_bytes(bytes(data))
    out = tmp_path / "w.nii.gz"
    _expect_error(capsys, ["apply", str(copy), "--image", str(files["moving"]), "--out",
                           str(out)], "checksum")
    assert not out.exists()


def test_model_from_another_config(capsys, files, run, tmp_path):
    copy = _copy_run(run, tmp_path)
    config = copy / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("width = 32", "width = 64"))
    out = tmp_path / "w.nii.gz"
    _expect_error(capsys, ["apply", str(copy), "--image", str(files["moving"]), "--out",
                           str(out)], "different config")
    assert not out.exists()


def test_apply_without_selection_needs_alpha(capsys, files, run, tmp_path):
    copy = _copy_run(run, tmp_path)
    (copy / "selection.json").unlink()
    out = tmp_path / "w.nii.gz"
    _expect_error(capsys, ["apply", str(copy), "--image", str(files["moving"]), "--out",
                           str(out)], "select")
    assert main(["apply", str(copy), "--alpha", "0.5", "--image", str(files["moving"]),
                 "--out", str(out)]) == 0
    assert out.is_file()


def test_fit_refuses_to_overwrite(capsys, files, run):
    _expect_error(capsys, ["fit", str(files["fixed"]), str(files["moving"]), "--out", str(run),
                           *TINY], "--overwrite")


def test_written_image_keeps_geometry(files, run, tmp_path):
    """apply --image writes on the fixed grid (spacing, origin, direction)."""
    out = tmp_path / "w.nrrd"
    assert main(["apply", str(run), "--image", str(files["moving"]), "--out", str(out)]) == 0
    a, b = sitk.ReadImage(str(out)), sitk.ReadImage(str(files["fixed"]))
    assert a.GetSize() == b.GetSize()
    assert np.allclose(a.GetSpacing(), b.GetSpacing())
    assert np.allclose(a.GetOrigin(), b.GetOrigin())
    assert np.allclose(a.GetDirection(), b.GetDirection())
    assert Image.from_sitk(a).array.dtype == np.float32


def test_config_file_and_overrides(files, tmp_path):
    """Defaults < --config file < --set < typed options; the resolved config is written back."""
    config = tmp_path / "my.toml"
    config.write_text("[model]\nwidth = 16\n[training]\niterations = 7\nbatch_size = 300\n"
                      "learning_rate = 2e-4\n[[objective.regularizers]]\nname = \"jacobian\"\n"
                      "lambda_min = 0.1\nlambda_max = 5.0\n")
    out = tmp_path / "run"
    assert main(["fit", str(files["fixed"]), str(files["moving"]), "--out", str(out),
                 "--config", str(config), "--set", "training.learning_rate=3e-4",
                 "--training-iterations", "5", "--training-seed", "4", "--quiet"]) == 0
    from cidir.config import RunConfig

    resolved = RunConfig.load(out / "config.toml")
    assert resolved.model.width == 16
    assert resolved.training.iterations == 5
    assert resolved.training.learning_rate == 3e-4
    assert resolved.training.seed == 4
    assert resolved.objective.regularizers[0].name == "jacobian"
    assert resolved.selection == RunConfig().selection  # untouched sections keep defaults
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8"))["iterations"] == 5
