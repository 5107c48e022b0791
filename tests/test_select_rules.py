"""α rules of ``cidir select``: the label-free L-curve corner on a synthetic pair with a known
displacement, its corner definition, and the command line's rule checks (exit 2)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from cidir.cli.main import main
from cidir.config import RunConfig
from cidir.data.synthetic import make_synthetic_pair
from cidir.geometry import Image
from cidir.selection.lcurve import lcurve_corner, search_lcurve
from cidir.training import fit
from runs_helpers import expect_error, snapshot
from test_registration import TEST_CONFIG, _endpoint_error

#: image noise, as a fraction of each image's standard deviation: without noise nothing
#: needs regularizing (the best α is the smallest, an end the corner rule never picks)
NOISE = 0.03


def _noisy(image: Image, rng: np.random.Generator) -> Image:
    a = np.asarray(image.array, np.float32)
    noise = rng.normal(0.0, NOISE * float(a.std()), a.shape).astype(np.float32)
    return Image(a + noise, image.grid, image.source)


@pytest.fixture(scope="module")
def noisy_fit_2d():
    """The 2D synthetic pair of test_registration with 3 % noise, fitted with the default
    objective (bending over five decades of the pilot's λ_b, antifolding guard)."""
    pair = make_synthetic_pair(2, seed=0)
    rng = np.random.default_rng(1)
    pair = dataclasses.replace(pair, fixed=_noisy(pair.fixed, rng),
                               moving=_noisy(pair.moving, rng))
    model_and_training = {k: v for k, v in TEST_CONFIG.items() if not k.startswith("objective")}
    config = RunConfig().with_overrides(model_and_training)
    return pair, config, fit(pair.fixed, pair.moving, config, pair.fixed_mask)


def test_lcurve_alpha_has_near_best_field_error(noisy_fit_2d):
    """The L-curve α's mean endpoint error (mm, inside the mask) is within 15 % of the best α
    of the grid (measured: α 0.4, 0.233 mm, against α 0.2, 0.232 mm)."""
    pair, config, result = noisy_fit_2d
    choice = search_lcurve(result.transform, pair.fixed, pair.moving, config.objective,
                           config.selection, mask=pair.fixed_mask,
                           margin_mm=config.training.mask_margin_mm)
    errors = [_endpoint_error(pair, result.transform, row.alpha) for row in choice.rows]
    assert choice.rule == "lcurve" and choice.note is None
    assert errors[choice.index] <= 1.15 * min(errors), (choice.alpha, errors)
    energies = [row.energy for row in choice.rows]
    assert energies[0] > 1.2 * energies[-1]  # α drives the regularizer down (measured 1.37×)
    assert choice.seconds < 10.0


def test_corner_of_an_l_and_of_a_line():
    """The corner of an L sampled unevenly is its bend; a straight line has none (−1)."""
    s = np.array([0.0, 0.01, 0.02, 0.05, 0.3, 0.6, 1.0])
    energy = 10.0 ** np.array([4.0, 2.0, 1.0, 0.2, 0.1, 0.05, 0.0])
    index, distance = lcurve_corner(s, energy)
    assert index == 3 and distance[index] > 0.5
    line, _ = lcurve_corner(np.linspace(0, 1, 5), 10.0 ** np.linspace(3, 0, 5))
    assert line == -1


def test_cli_select_lcurve_writes_the_rule(cli_run, capfd):
    assert main(["select", str(cli_run), "--rule", "lcurve", "--json"]) == 0
    out = json.loads(capfd.readouterr().out)
    selection = json.loads((cli_run / "selection.json").read_text(encoding="utf-8"))
    assert selection["rule"] == "lcurve" == out["rule"]
    assert selection["alpha"] == out["alpha"]
    assert all(r["energy"] > 0 and r["dice"] is None for r in selection["rows"])
    assert "similarity" in (cli_run / "alpha_table.csv").read_text(encoding="utf-8").splitlines()[0]
    assert main(["report", str(cli_run), "--quiet"]) == 0
    assert "chosen by the L-curve corner" in (cli_run / "report.html").read_text(encoding="utf-8")


def test_cli_rule_errors(cli_run, cli_files, capfd):
    """A bad rule and each rule's missing inputs: exit 2, one line naming the argument,
    nothing written."""
    before = snapshot(cli_run)
    with pytest.raises(SystemExit) as exit_info:  # argparse: usage, then the error line
        main(["select", str(cli_run), "--rule", "nonsense"])
    assert exit_info.value.code == 2
    err = capfd.readouterr().err
    assert "--rule: invalid choice: 'nonsense'" in err and "lcurve" in err
    expect_error(capfd, ["select", str(cli_run), "--rule", "dice"], "--fixed-labels")
    expect_error(capfd, ["select", str(cli_run)], "--fixed-labels")
    expect_error(capfd, ["select", str(cli_run), "--rule", "tre", "--fixed-labels",
                         str(cli_files["fixed_labels"]), "--moving-labels",
                         str(cli_files["moving_labels"])], "--fixed-points")
    expect_error(capfd, ["select", str(cli_run), "--rule", "lcurve", "--fixed-labels",
                         str(cli_files["fixed_labels"]), "--moving-labels",
                         str(cli_files["moving_labels"])], "no labels")
    assert snapshot(cli_run) == before
