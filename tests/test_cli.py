"""The ``cidir`` command line: the fit → select → apply/export → evaluate → report sequence
through the installed console script, help, options and output style (bad input:
``test_cli_errors.py``)."""

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
from cidir.geometry import Image
from runs_helpers import CLI_TINY as TINY


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
def test_console_script_full_sequence(cli_files, tmp_path):
    """fit → select → apply → export → evaluate → report on files, via the console script;
    the exported field, applied by SimpleITK, reproduces cidir's own warp."""
    out = tmp_path / "run"
    r = _cli("fit", str(cli_files["fixed"]), str(cli_files["moving"]), "--out", str(out),
             "--fixed-mask", str(cli_files["mask"]), "--init", "moments", *TINY)
    assert r.returncode == 0, r.stderr
    for name in ("model.safetensors", "config.toml", "metrics.json", "loss.csv", "inputs.json",
                 "init_transform.tfm"):
        assert (out / name).is_file(), name
    r = _cli("select", str(out), "--fixed-labels", str(cli_files["fixed_labels"]),
             "--moving-labels", str(cli_files["moving_labels"]), "--selection-num-alphas", "5",
             "--fixed-points", str(cli_files["fixed_points"]),
             "--moving-points", str(cli_files["moving_points"]))
    assert r.returncode == 0, r.stderr
    selection = json.loads((out / "selection.json").read_text(encoding="utf-8"))
    assert {"alpha", "dice", "folding_percent", "tre_mm"} <= set(selection)
    assert len((out / "alpha_table.csv").read_text(encoding="utf-8").strip().splitlines()) == 6
    warped = tmp_path / "warped.nii.gz"
    assert _cli("apply", str(out), "--image", str(cli_files["moving"]), "--out",
                str(warped)).returncode == 0
    assert _cli("apply", str(out), "--labels", str(cli_files["moving_labels"]), "--out",
                str(tmp_path / "wl.nii.gz")).returncode == 0
    assert _cli("apply", str(out), "--points", str(cli_files["fixed_points"]), "--out",
                str(tmp_path / "mapped.csv")).returncode == 0
    field = tmp_path / "field.nii.gz"
    r = _cli("export", str(out), "--field", str(field), "--jacobian", str(tmp_path / "jac.mha"))
    assert r.returncode == 0, r.stderr
    assert _cli("export", str(out), "--field", str(tmp_path / "w1Warp.nii.gz"),
                "--format", "ants").returncode == 0
    assert _cli("export", str(out), "--field", str(tmp_path / "tp.txt"),
                "--format", "elastix").returncode == 0
    assert (tmp_path / "tp_field.nii.gz").is_file()
    r = _cli("evaluate", str(out), "--fixed-points", str(cli_files["fixed_points"]),
             "--moving-points", str(cli_files["moving_points"]),
             "--fixed-labels", str(cli_files["fixed_labels"]),
             "--moving-labels", str(cli_files["moving_labels"]))
    assert r.returncode == 0, r.stderr
    evaluation = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    assert {"tre_before", "tre_after", "dice", "folding_percent"} <= set(evaluation)
    r = _cli("report", str(out))
    assert r.returncode == 0, r.stderr
    assert (out / "report.html").is_file()

    # oracle: SimpleITK applying the exported field (initial alignment included) = cidir warp
    fixed = sitk.ReadImage(str(cli_files["fixed"]))
    moving = sitk.ReadImage(str(cli_files["moving"]), sitk.sitkFloat32)
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


def test_output_style(capsys, cli_files, cli_run, tmp_path):
    """The human summary goes to stderr, JSON to stdout only with --json (the same numbers
    as the file written), nothing but warnings with --quiet."""
    out = tmp_path / "eval.json"
    argv = ["evaluate", str(cli_run), "--fixed-labels", str(cli_files["fixed_labels"]),
            "--moving-labels", str(cli_files["moving_labels"]), "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "Dice" in captured.err and "folding" in captured.err
    assert main([*argv, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads(out.read_text(encoding="utf-8"))
    assert printed["dice"] == written["dice"] and printed["alpha"] == written["alpha"]
    assert main([*argv, "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")
    assert main(["select", str(cli_run), "--fixed-labels", str(cli_files["fixed_labels"]),
                 "--moving-labels", str(cli_files["moving_labels"]), "--selection-num-alphas",
                 "5", "--json", "--quiet"]) == 0
    captured = capsys.readouterr()
    selection = json.loads(captured.out)
    assert len(selection["rows"]) == 5 and "chosen" not in captured.err


# ----------------------------------------------------------------------- bad input
def test_written_image_keeps_geometry(cli_files, cli_run, tmp_path):
    """apply --image writes on the fixed grid (spacing, origin, direction)."""
    out = tmp_path / "w.nrrd"
    assert main(["apply", str(cli_run), "--image", str(cli_files["moving"]), "--out",
                 str(out)]) == 0
    a, b = sitk.ReadImage(str(out)), sitk.ReadImage(str(cli_files["fixed"]))
    assert a.GetSize() == b.GetSize()
    assert np.allclose(a.GetSpacing(), b.GetSpacing())
    assert np.allclose(a.GetOrigin(), b.GetOrigin())
    assert np.allclose(a.GetDirection(), b.GetDirection())
    assert Image.from_sitk(a).array.dtype == np.float32


def test_config_file_and_overrides(cli_files, tmp_path):
    """Defaults < --config file < --set < typed options; the resolved config is written back."""
    config = tmp_path / "my.toml"
    config.write_text("[model]\nwidth = 16\n[training]\niterations = 7\nbatch_size = 300\n"
                      "learning_rate = 2e-4\n[[objective.regularizers]]\nname = \"jacobian\"\n"
                      "lambda_min = 0.1\nlambda_max = 5.0\n")
    out = tmp_path / "run"
    assert main(["fit", str(cli_files["fixed"]), str(cli_files["moving"]), "--out", str(out),
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
