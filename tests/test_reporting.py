"""The HTML report: every figure referenced exists and is a PNG, numbers and escaped config
appear, and it works without selection, labels or history."""

from __future__ import annotations

import re

import pytest

from cidir.config import RunConfig, SelectionConfig
from cidir.data.synthetic import make_synthetic_pair
from cidir.reporting import write_report
from cidir.selection import search_alpha
from cidir.training import fit

TINY = {"model.width": 32, "training.iterations": 10, "training.batch_size": 300}


@pytest.mark.parametrize("ndim", [2, 3])
def test_report_figures_and_numbers(tmp_path, ndim):
    size = (20, 16, 10) if ndim == 3 else (24, 20)
    pair = make_synthetic_pair(ndim, seed=0, size=size)
    result = fit(pair.fixed, pair.moving, RunConfig().with_overrides(TINY), pair.fixed_mask)
    selection = search_alpha(result.transform, pair.fixed_labels, pair.moving_labels,
                             SelectionConfig(num_alphas=5)).to_dict()
    config = RunConfig().to_toml() + '\n# <script>alert("x")</script>\n'
    path = write_report(tmp_path, transform=result.transform, fixed=pair.fixed,
                        moving=pair.moving, alpha=selection["alpha"], config_toml=config,
                        metrics={"fit_seconds": result.seconds, "nested": {"a": 1.5}},
                        selection=selection, fixed_labels=pair.fixed_labels,
                        moving_labels=pair.moving_labels, loss_history=result.history)
    text = path.read_text(encoding="utf-8")
    images = re.findall(r"src='report/([^']+)'", text)
    assert {"alpha_curves.png", "images.png", "differences.png", "checkerboard.png",
            "jacobian.png", "deformed_grid.png", "labels.png", "loss.png"} == set(images)
    for name in images:
        data = (tmp_path / "report" / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    assert f"{selection['alpha']:.4g}" in text and f"{selection['dice']:.4f}" in text
    assert "nested.a" in text
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert not list(tmp_path.rglob("*.tmp*"))


def test_report_without_optional_parts(tmp_path):
    pair = make_synthetic_pair(2, seed=1, size=(24, 20))
    result = fit(pair.fixed, pair.moving, RunConfig().with_overrides(TINY), pair.fixed_mask)
    path = write_report(tmp_path, transform=result.transform, fixed=pair.fixed,
                        moving=pair.moving, alpha=0.5, config_toml="", metrics={})
    images = re.findall(r"src='report/([^']+)'", path.read_text(encoding="utf-8"))
    assert "alpha_curves.png" not in images and "labels.png" not in images
    assert "jacobian.png" in images
