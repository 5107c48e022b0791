"""The in-memory API (:mod:`cidir.api`) and the file commands built on it give the same
numbers: the commands are thin wrappers (read, compute with the API, record)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cidir import api
from cidir.config import RunConfig
from cidir.evaluation import Evaluation
from cidir.selection import SelectionResult
from runs_helpers import TINY, main, write_pair


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_pair(tmp_path_factory.mktemp("pair"))


def test_in_memory_chain_equals_the_commands(files, tmp_path):
    """fit → select → evaluate through the CLI on files, and through the API on the same
    images and configuration: the same network weights, α table and evaluation."""
    run = tmp_path / "run"
    assert main(["fit", str(files["fixed"]), str(files["moving"]), "--out", str(run),
                 "--fixed-mask", str(files["mask"]), *TINY]) == 0
    label_args = ["--fixed-labels", str(files["fixed_labels"]),
                  "--moving-labels", str(files["moving_labels"])]
    point_args = ["--fixed-points", str(files["fixed_points"]),
                  "--moving-points", str(files["moving_points"])]
    assert main(["select", str(run), *label_args, *point_args]) == 0
    assert main(["evaluate", str(run), *label_args, *point_args]) == 0

    config = RunConfig.load(run / "config.toml")
    fixed, moving = api.read_image(files["fixed"]), api.read_image(files["moving"])
    mask = api.read_mask(files["mask"], reference=fixed.grid)
    fit = api.register(fixed, moving, config, fixed_mask=mask)
    loaded = api.load_transform(str(run))
    for name, tensor in loaded.model.state_dict().items():
        assert torch.equal(tensor, fit.transform.model.state_dict()[name]), name
    assert fit.iterations == config.training.iterations and fit.calibration is not None

    fl = api.read_label_map(files["fixed_labels"], reference=fixed.grid)
    ml = api.read_label_map(files["moving_labels"], reference=moving.grid)
    fp = api.read_points(files["fixed_points"], fixed.grid)
    mp = api.read_points(files["moving_points"], moving.grid)
    choice = api.choose_alpha(fit.transform, fl, ml, config.selection, fixed_points=fp,
                              moving_points=mp)
    assert isinstance(choice, SelectionResult)
    recorded = json.loads((run / "selection.json").read_text(encoding="utf-8"))
    assert choice.alpha == recorded["alpha"]
    assert [r.dice for r in choice.rows] == [r["dice"] for r in recorded["rows"]]
    assert [r.tre_mm for r in choice.rows] == [r["tre_mm"] for r in recorded["rows"]]

    result = api.evaluate(fit.transform, choice.alpha, fixed_points=fp, moving_points=mp,
                          moving_grid=moving.grid, fixed_labels=fl, moving_labels=ml,
                          mask=mask.array)
    assert isinstance(result, Evaluation)
    on_disk = json.loads((run / "evaluation.json").read_text(encoding="utf-8"))
    assert {k: on_disk[k] for k in result.to_dict()} == result.to_dict()
    assert result.tre_after is not None and result.tre_after.snapped is not None
    assert result.tre_after.continuous.mean < result.tre_before.continuous.mean

    field = api.displacement_field(fit.transform, choice.alpha)
    assert field.shape == (*fixed.grid.shape, 3) and np.isfinite(field).all()
