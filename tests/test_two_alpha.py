"""Several hyperparameters at once: the α space (parsing, the coarse-to-fine search), and a
model conditioned on two regularizers (the ``bending-jacobian`` preset) trained, selected,
applied, exported and reported end to end on a tiny synthetic pair."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from cidir.cli.main import main
from cidir.config import RunConfig, SelectionConfig
from cidir.errors import InputError
from cidir.selection.alpha_space import (
    alpha_text,
    as_alpha,
    explore,
    format_alpha,
    parse_alpha,
    product_grid,
    smoothness,
)
from runs_helpers import TINY, expect_error, write_pair


def test_alpha_text_round_trip():
    assert parse_alpha("0.35") == 0.35
    assert parse_alpha("0.35, 0.7") == (0.35, 0.7)
    assert alpha_text((0.35, 0.7)) == "0.35,0.7" and alpha_text(0.5) == "0.5"
    assert format_alpha([0.25, 1.0]) == "(0.25, 1)" and format_alpha(0.125) == "0.125"
    assert as_alpha([0.3]) == 0.3 and as_alpha([0.3, 0.4]) == (0.3, 0.4)
    for bad in ("x", "0.3,", "1.5", "0.2,-0.1", "nan"):
        with pytest.raises(InputError, match="--alpha"):
            parse_alpha(bad)


def test_ties_go_to_the_most_regularized_point():
    points = [(0.2, 0.8), (0.8, 0.4), (0.5, 0.5)]
    assert max(points, key=smoothness) == (0.8, 0.4)
    assert max([0.1, 0.9, 0.5], key=smoothness) == 0.9


def test_explore_finds_the_peak_of_a_smooth_surface_with_few_points():
    """A unimodal merit peaked at (0.65, 0.35): the coarse grid (6 per axis) and two halvings
    reach the 0.05 grid's best point with 52 scored points instead of 441."""
    peak = np.array([0.65, 0.35])
    scored: list = []

    def score(points):
        scored.extend(points)
        return [-float(np.sum((np.array(p) - peak) ** 2)) for p in points]

    points = explore(score, 2, SelectionConfig())
    assert points == scored and len(points) == len(set(points)) == 36 + 8 + 8
    best = max(points, key=lambda p: -np.sum((np.array(p) - peak) ** 2))
    assert np.allclose(best, peak)
    assert all(0.0 <= v <= 1.0 for p in points for v in p)


def test_explore_takes_given_points_and_checks_them():
    seen: list = []
    assert explore(lambda p: seen.extend(p) or [0.0] * len(p), 2, SelectionConfig(),
                   [(0.0, 1.0), [0.5, 0.5]]) == [(0.0, 1.0), (0.5, 0.5)]
    with pytest.raises(InputError, match="conditioned on 2"):
        explore(lambda p: [0.0] * len(p), 2, SelectionConfig(), [0.5])
    assert explore(lambda p: [0.0] * len(p), 1, SelectionConfig(num_alphas=5)) == \
        product_grid(5, 1)


def test_preset_conditions_two_terms():
    config = RunConfig.from_preset("bending-jacobian")
    assert config.num_conditions == 2
    driven = {t.name: t.alpha_index for t in config.objective.regularizers
              if t.mapping != "constant"}
    assert driven == {"bending": 0, "jacobian": 1}


@pytest.fixture(scope="module")
def two_alpha_run(tmp_path_factory) -> tuple[dict[str, Path], Path]:
    root = tmp_path_factory.mktemp("two_alpha")
    files = write_pair(root / "data")
    run = root / "run"
    assert main(["fit", str(files["fixed"]), str(files["moving"]), "--out", str(run),
                 "--preset", "bending-jacobian", *TINY, "--selection-num-alphas", "5",
                 "--selection-coarse-alphas", "3"]) == 0
    assert main(["select", str(run), "--fixed-labels", str(files["fixed_labels"]),
                 "--moving-labels", str(files["moving_labels"]), "--quiet"]) == 0
    return files, run


def test_two_alpha_model_trains_and_selects(two_alpha_run):
    _, run = two_alpha_run
    selection = json.loads((run / "selection.json").read_text(encoding="utf-8"))
    chosen = selection["alpha"]
    assert isinstance(chosen, list) and len(chosen) == 2
    rows = selection["rows"]
    # a 3×3 grid (step 0.5) refined once around its best at the 5-grid's step (0.25)
    assert 9 < len(rows) <= 9 + 8
    assert all(len(r["alpha"]) == 2 for r in rows)
    best = max(r["dice"] for r in rows)
    assert selection["dice"] >= best - max(r["dice_gap_se"] for r in rows) - 1e-12
    assert chosen in selection["tied_alphas"]
    with open(run / "alpha_table.csv", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert "alpha_1" in table[0] and "alpha_2" in table[0] and "alpha" not in table[0]
    assert [float(table[selection["index"]][k]) for k in ("alpha_1", "alpha_2")] == chosen
    config = (run / "config.toml").read_text(encoding="utf-8")
    assert "jacobian" in config and "alpha_index = 1" in config


def test_two_alpha_apply_export_and_report(two_alpha_run, tmp_path, capfd):
    files, run = two_alpha_run
    out = tmp_path / "warped.nii.gz"
    assert main(["apply", str(run), "--image", str(files["moving"]), "--out", str(out),
                 "--alpha", "0.25,0.75"]) == 0
    import SimpleITK as sitk

    assert sitk.ReadImage(str(out)).GetMetaData("descrip").endswith("alpha 0.25,0.75")
    field = tmp_path / "field.nii.gz"
    assert main(["export", str(run), "--field", str(field), "--alpha", "1,0"]) == 0
    assert field.is_file()
    assert main(["export", str(run), "--uncertainty", str(tmp_path / "u.nii.gz")]) == 0
    capfd.readouterr()
    expect_error(capfd, ["apply", str(run), "--image", str(files["moving"]), "--out",
                         str(tmp_path / "x.nii.gz"), "--alpha", "0.5"],
                 "conditioned on 2", "a1,a2")
    assert not (tmp_path / "x.nii.gz").exists()
    expect_error(capfd, ["export", str(run), "--field", str(tmp_path / "y.nii.gz"),
                         "--alpha", "0.5,2"], "--alpha: expected values in [0, 1], found 0.5,2")
    assert not (tmp_path / "y.nii.gz").exists()
    with pytest.raises(SystemExit) as exit_info:  # not numbers: argparse's own error
        main(["export", str(run), "--field", str(tmp_path / "y.nii.gz"), "--alpha", "a,b"])
    assert exit_info.value.code == 2 and "comma-separated numbers" in capfd.readouterr().err
    expect_error(capfd, ["select", str(run), "--rule", "lcurve"], "lcurve", "conditioned on 2")
    assert main(["report", str(run), "--quiet"]) == 0
    report = (run / "report.html").read_text(encoding="utf-8")
    assert "alpha_surface.png" in report and "α1" in report


def test_evaluate_at_a_point_of_the_plane(two_alpha_run, capfd):
    files, run = two_alpha_run
    assert main(["evaluate", str(run), "--fixed-labels", str(files["fixed_labels"]),
                 "--moving-labels", str(files["moving_labels"]), "--alpha", "0,0.5"]) == 0
    assert "α (0, 0.5):" in capfd.readouterr().err
    evaluation = json.loads((run / "evaluation.json").read_text(encoding="utf-8"))
    assert evaluation["alpha"] == [0.0, 0.5]
