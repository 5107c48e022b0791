"""The HTML report: every figure referenced exists and is a PNG, numbers and escaped config
appear, it works without selection, labels or history, and the slice views are placed and
oriented correctly."""

from __future__ import annotations

import re

import numpy as np
import pytest

from cidir.config import RunConfig, SelectionConfig
from cidir.data.synthetic import make_synthetic_pair
from cidir.fields import displacement_field
from cidir.geometry import Grid
from cidir.reporting import write_report
from cidir.reporting.figures import slice_views
from cidir.reporting.html import evaluate_view, flatten
from cidir.selection import search_alpha
from cidir.training import fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"model.width": 32, "training.iterations": 20, "training.batch_size": 500,
        "objective.calibration_iterations": 5}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ALL_FIGURES = {"alpha_curves.png", "tradeoff.png", "images.png", "differences.png",
               "checkerboard.png", "uncertainty.png",
               "jacobian.png", "deformed_grid.png", "labels.png", "loss.png"}


@pytest.fixture(scope="module", params=[2, 3], ids=["2d", "3d"])
def trained(request):
    """A tiny model trained on a small synthetic pair, and its α selection."""
    ndim = request.param
    size = (20, 16, 10) if ndim == 3 else (24, 20)
    pair = make_synthetic_pair(ndim, seed=0, size=size)
    result = fit(pair.fixed, pair.moving, RunConfig().with_overrides(TINY), pair.fixed_mask)
    selection = search_alpha(result.transform, pair.fixed_labels, pair.moving_labels,
                             SelectionConfig(num_alphas=5)).to_dict()
    return pair, result, selection


def _referenced_pngs(text: str) -> list[str]:
    """The figures on the page: each embedded (data: URI) and linked to report/NAME."""
    return re.findall(r"href=[\"']report/([^\"']+)[\"']><img src=[\"']data:image/png", text)


def _check_pngs(run_dir, names):
    on_disk = {p.name for p in (run_dir / "report").iterdir()}
    assert on_disk == set(names), "every PNG on disk is referenced, and the reverse"
    for name in names:
        data = (run_dir / "report" / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    assert not [p for p in run_dir.rglob("*") if p.name.startswith(".") or "tmp" in p.name]


def test_full_report(tmp_path, trained):
    pair, result, selection = trained
    config = RunConfig().to_toml() + '\n# <script>alert("x")</script>\n'
    path = write_report(tmp_path, transform=result.transform, fixed=pair.fixed,
                        moving=pair.moving, alpha=selection["alpha"], config_toml=config,
                        metrics={"fit_seconds": result.seconds, "nested": {"a": 1.5, "b": None}},
                        selection=selection, fixed_labels=pair.fixed_labels,
                        moving_labels=pair.moving_labels, loss_history=result.history,
                        title="test <run>")
    assert path == tmp_path / "report.html"
    text = path.read_text(encoding="utf-8")
    images = _referenced_pngs(text)
    assert set(images) == ALL_FIGURES
    _check_pngs(tmp_path, images)
    assert f"{selection['alpha']:.4g}" in text and f"{selection['dice']:.4f}" in text
    assert text.count('class="chosen"') == 1
    assert "nested.a" in text and "nested.b" in text and "fit_seconds" in text
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "test &lt;run&gt;" in text
    assert not any(tag in text for tag in ("<script", "<link", "url(", "<iframe"))


def test_report_without_optional_parts_removes_stale_figures(tmp_path, trained):
    pair, result, _ = trained
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "labels.png").write_bytes(b"stale")  # from an earlier report
    path = write_report(tmp_path, transform=result.transform, fixed=pair.fixed,
                        moving=pair.moving, alpha=0.5, config_toml="", metrics={})
    images = _referenced_pngs(path.read_text(encoding="utf-8"))
    assert set(images) == ALL_FIGURES - {"alpha_curves.png", "tradeoff.png", "labels.png",
                                         "uncertainty.png", "loss.png"}
    _check_pngs(tmp_path, images)


def test_slice_data_matches_dense_evaluation(trained):
    """Planes computed on a slice grid equal the same slice of the full-grid evaluation."""
    pair, result, _ = trained
    grid = pair.fixed.grid
    full = displacement_field(result.transform, 0.3) @ grid.direction_matrix
    for view in slice_views(grid):
        data = evaluate_view(view, result.transform, pair.fixed, pair.moving, 0.3,
                             pair.fixed_labels, pair.moving_labels)
        expected = view.cut(full)[..., [view.h, view.v]]
        assert data.displacement.shape == (view.v_size, view.h_size, 2)
        np.testing.assert_allclose(data.displacement, expected, atol=1e-4)
        assert data.fixed.shape == data.warped.shape == data.det.shape == data.moving.shape
        assert data.warped_labels.shape == data.fixed_labels.shape
        # same grid for fixed and moving: "before" is the moving slice itself
        np.testing.assert_allclose(data.moving, view.cut(pair.moving.array), atol=1e-4)


def test_views_follow_anatomy():
    """LPS identity: axial with x right and y down, coronal/sagittal superior up; a z axis
    that points inferior is shown reversed, and permuted voxel axes are found."""
    views = {v.name: v for v in slice_views(Grid.from_shape((10, 12, 14), (1.0, 2.0, 3.0)))}
    ax, co, sa = views["axial"], views["coronal"], views["sagittal"]
    assert (ax.axis, ax.h, ax.v, ax.h_reversed, ax.v_down) == (2, 0, 1, False, True)
    assert (co.axis, co.h, co.v, co.h_reversed, co.v_down) == (1, 0, 2, False, False)
    assert (sa.axis, sa.h, sa.v, sa.h_reversed, sa.v_down) == (0, 1, 2, False, False)
    assert (ax.h_spacing, ax.v_spacing, ax.index) == (1.0, 2.0, 5)
    assert np.allclose(co.extent, (-0.5, 13.5, -1.5, 28.5))
    flipped = Grid.from_shape((10, 12, 14), direction=(1, 0, 0, 0, 1, 0, 0, 0, -1))
    co = {v.name: v for v in slice_views(flipped)}["coronal"]
    assert co.v == 2 and co.v_down  # index grows inferior → downwards, superior stays up
    # voxel axes (x, y, z) along world (y, x, z): the axial view shows voxel y horizontally
    swapped = Grid.from_shape((10, 12, 14), direction=(0, 1, 0, 1, 0, 0, 0, 0, 1))
    ax = {v.name: v for v in slice_views(swapped)}["axial"]
    assert (ax.axis, ax.h, ax.v) == (2, 1, 0)
    plane = ax.cut(np.arange(10 * 12 * 14).reshape(10, 12, 14))
    assert plane.shape == (ax.v_size, ax.h_size) == (14, 12)
    (view,) = slice_views(Grid.from_shape((12, 14)))
    assert (view.axis, view.h, view.v, view.v_down) == (None, 0, 1, True)


def test_flatten_metrics():
    rows = dict(flatten({"a": 1, "b": {"c": 2.0, "d": {"e": "x"}}, "short": [1, 2],
                         "long": list(range(50))}))
    assert rows == {"a": 1, "b.c": 2.0, "b.d.e": "x", "short": [1, 2]}
