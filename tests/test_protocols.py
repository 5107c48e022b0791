"""The end-to-end protocols: ``cidir dirlab`` on a DIR-LAB-layout download, and ``cidir demo``,
with tiny training settings (the quality of the defaults is measured in docs/demo.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cidir.cli.main import main
from cidir.data.phantom import make_phantom

TINY = ["--model-width", "32", "--training-iterations", "20", "--training-batch-size", "500",
        "--objective-calibration-iterations", "5",
        "--selection-num-alphas", "3", "--quiet"]


@pytest.fixture(scope="module")
def phantom():
    return make_phantom("small", seed=3)


def test_dirlab_protocol_on_a_download_layout(dirlab_download, tmp_path):
    """A phantom written as DIR-LAB case 1 (headerless int16 + 1-based landmark files, under
    name variants in subfolders) runs through the whole protocol: threshold lung masks,
    fit, selection by lung Dice, TRE continuous and snapped."""
    root, phantom = dirlab_download
    grid = phantom.grid
    out = tmp_path / "run"
    assert main(["dirlab", "--root", str(root), "--case", "1", "--out", str(out), *TINY]) == 0
    summary = json.loads((out / "dirlab.json").read_text(encoding="utf-8"))
    snapped_in = np.round(grid.world_to_voxel(phantom.inhale_points))
    snapped_ex = np.round(grid.world_to_voxel(phantom.exhale_points))
    expected_before = np.linalg.norm((snapped_in - snapped_ex) * grid.spacing, axis=1).mean()
    assert summary["tre_before_mm"] == pytest.approx(expected_before, abs=1e-6)
    assert summary["selection"] == "lung-mask Dice"
    assert 0.0 <= summary["alpha"] <= 1.0
    assert {"tre_after_mm", "tre_after_snapped_mm", "tre_after_per_axis_mm",
            "folding_percent"} <= set(summary)
    for name in ("T00.nii.gz", "T50.nii.gz", "T00_lungs.nii.gz", "T50_lungs.nii.gz"):
        assert (out / "inputs" / name).is_file()
    table = (out / "alpha_table.csv").read_text(encoding="utf-8").splitlines()
    assert "tre_mm" in table[0] and len(table) == 4


def test_dirlab_missing_case_files(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["dirlab", "--root", str(tmp_path / "empty"), "--case", "2", "--out",
                 str(tmp_path / "run"), *TINY])
    assert code == 2
    assert "case2" in capsys.readouterr().err.lower()
    assert not (tmp_path / "run").exists()


def test_demo_writes_summary(tmp_path, capsys):
    """``cidir demo`` writes metrics.json with the documented keys and a report."""
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *[a for a in TINY if a != "--quiet"]]) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    for key in ("tre_before_mm", "tre_after_mm", "alpha", "dice", "folding_percent",
                "fit_seconds", "select_seconds"):
        assert key in metrics
    assert metrics["tre_before_mm"] > 5.0  # the phantom's breathing motion
    assert (out / "run" / "report.html").is_file()
    captured = capsys.readouterr()
    assert "TRE" in captured.err and captured.out == ""  # the summary goes to stderr
    # the in-memory chain recorded the run like the commands: selection and evaluation of
    # this fit, and the label files in inputs.json
    run = out / "run"
    selection = json.loads((run / "selection.json").read_text(encoding="utf-8"))
    evaluation = json.loads((run / "evaluation.json").read_text(encoding="utf-8"))
    fit = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert selection["run_id"] == evaluation["run_id"] == fit["run_id"]
    assert selection["alpha"] == evaluation["alpha"] == metrics["alpha"]
    assert evaluation["dice"] == metrics["dice"]
    assert evaluation["jacobian_region"] == "mask"
    inputs = json.loads((run / "inputs.json").read_text(encoding="utf-8"))["inputs"]
    assert {"fixed", "moving", "fixed_mask", "fixed_labels", "moving_labels"} <= set(inputs)


def test_threshold_lung_mask_matches_phantom_lungs(phantom):
    """The documented threshold mask finds both phantom lungs (Dice > 0.9 each)."""
    from cidir.data.lung_mask import threshold_lung_mask
    from cidir.evaluation import dice_per_label

    mask = threshold_lung_mask(phantom.inhale)
    truth = phantom.inhale_labels.array
    assert set(np.unique(mask.array)) == {0, 1, 2}
    # label 1 is the lung with the smaller x index (patient right in LPS), as is the phantom's 2
    lungs = np.where(np.isin(truth, (1, 2, 5)) & (phantom.inhale_lung_mask.array > 0),
                     truth, 0)
    lungs = np.where(lungs == 5, 0, lungs)
    dice = dice_per_label(np.where(lungs == 2, 1, np.where(lungs == 1, 2, 0)), mask.array, [1, 2])
    assert min(dice.values()) > 0.9, dice


def test_phantom_and_demo_commands_pass_the_variant(tmp_path, monkeypatch):
    """``cidir phantom --variant`` and ``cidir demo --variant`` reach the phantom (smooth by
    default); the demo's summary names a non-default variant."""
    import cidir.data.phantom as phantom_module
    import cidir.runs.demo as demo_module

    calls = []
    monkeypatch.setattr(phantom_module, "make_phantom", lambda *a: calls.append(a))
    monkeypatch.setattr(phantom_module, "write_phantom", lambda p, out: {})
    monkeypatch.setattr(demo_module, "run_demo",
                        lambda out, config, **kw: calls.append(kw) or {})
    monkeypatch.setattr(demo_module, "format_summary", lambda summary: "")
    assert main(["phantom", "--out", str(tmp_path), "--variant", "sliding"]) == 0
    assert main(["phantom", "--out", str(tmp_path), "--size", "dirlab", "--seed", "2"]) == 0
    assert main(["demo", "--out", str(tmp_path), "--variant", "sliding", "--quiet"]) == 0
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    assert calls[:2] == [("small", 0, "sliding"), ("dirlab", 2, "smooth")]
    assert [c["variant"] for c in calls[2:]] == ["sliding", "smooth"]
    monkeypatch.undo()
    summary = {"phantom": {"size": "small", "seed": 0, "variant": "sliding"}, "landmarks": 163,
               "tre_before_mm": 7.7, "tre_after_mm": 1.0, "tre_after_sd_mm": 0.5,
               "tre_before_snapped_mm": 7.8, "tre_after_snapped_mm": 1.1,
               "field_error_before_mm": 8.5, "field_error_mm": 1.2, "alpha": 1.0,
               "dice_before": 0.7, "dice": 0.9, "folding_percent": 0.0,
               "std_log_jacobian": 0.02, "fit_seconds": 1.0, "select_seconds": 1.0,
               "machine": {"device": "cpu", "threads": 2}, "report": "r.html"}
    assert "(small, seed 0, sliding variant)" in demo_module.format_summary(summary)
    summary["phantom"]["variant"] = "smooth"
    assert "(small, seed 0), 163 landmark pairs" in demo_module.format_summary(summary)
