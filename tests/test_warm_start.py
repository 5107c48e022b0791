"""``cidir fit --init-model``: a warm start from another run's network — the weights carried
over, the record kept, and incompatible sources refused (exit 2, nothing written)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from cidir import api
from cidir.cli.main import main
from cidir.config import RunConfig
from cidir.data.synthetic import make_synthetic_pair
from cidir.io.images import write_image
from runs_helpers import TINY, expect_error, fit_args, write_pair

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def donor(tmp_path_factory) -> tuple[dict[str, Path], Path]:
    root = tmp_path_factory.mktemp("warm")
    files = write_pair(root / "pair")
    assert main(fit_args(files, root / "donor")) == 0
    return files, root / "donor"


def _first_loss(run: Path) -> float:
    with open(run / "loss.csv", encoding="utf-8") as f:
        return float(next(csv.DictReader(f))["total"])


def test_warm_start_carries_the_network_and_is_recorded(donor, tmp_path):
    files, source = donor
    cold, warm = tmp_path / "cold", tmp_path / "warm"
    assert main(fit_args(files, cold)) == 0
    assert main(fit_args(files, warm, "--init-model", str(source))) == 0
    metrics = json.loads((warm / "metrics.json").read_text(encoding="utf-8"))
    donor_metrics = json.loads((source / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["init_model"]["path"] == str(source.resolve())
    assert metrics["init_model"]["run_id"] == donor_metrics["run_id"]
    assert json.loads((cold / "metrics.json").read_text(encoding="utf-8"))["init_model"] is None
    assert "warm start from" in (warm / "fit.log").read_text(encoding="utf-8")
    # the donor already fits this pair: the warm fit starts where the donor ended
    assert _first_loss(warm) < _first_loss(cold)


def test_start_fit_copies_the_weights_exactly():
    pair = make_synthetic_pair(2, seed=0, size=(16, 16))
    config = RunConfig().with_overrides({"model.width": 16, "training.iterations": 5,
                                         "training.seed": 1})
    source = api.register(pair.fixed, pair.moving, config)
    trainer = api.start_fit(pair.fixed, pair.moving,
                            config.with_overrides({"training.seed": 7}),
                            init_model=(source.transform, config))
    ours, theirs = trainer.transform.model.state_dict(), source.transform.model.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


def test_incompatible_sources_are_refused(donor, tmp_path, capfd):
    files, source = donor
    out = tmp_path / "out"
    expect_error(capfd, fit_args(files, out, "--init-model", str(tmp_path)), "model.safetensors")
    expect_error(capfd, [*fit_args(files, out, "--init-model", str(source)),
                         "--model-width", "24"], "model.width 16 there, 24 here")
    pair2d = make_synthetic_pair(2, seed=0, size=(16, 16))
    write_image(pair2d.fixed, tmp_path / "f2.nii.gz")
    write_image(pair2d.moving, tmp_path / "m2.nii.gz")
    expect_error(capfd, ["fit", str(tmp_path / "f2.nii.gz"), str(tmp_path / "m2.nii.gz"),
                         "--out", str(out), *TINY, "--init-model", str(source)],
                 "3D, this pair is 2D")
    assert not out.exists()
    expect_error(capfd, ["fit", "--resume", str(source), "--init-model", str(source)],
                 "--init-model")
