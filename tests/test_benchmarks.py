"""Fast tests of the benchmark harness (benchmarks/): the field conventions, each available
peer's conversion on a known translation, and the runner's tiny phantom path."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import methods  # noqa: E402
from benchmarks.fields import (  # noqa: E402
    affine_field,
    compose_with_affine,
    jacobian_determinant,
    map_points_with_field,
    warp_labels_with_field,
)
from benchmarks.pairs import PairData, load_pair  # noqa: E402

from cidir.geometry import Grid, Image  # noqa: E402

SHIFT = np.array([2.5, -1.5])  # mm, fixed point x corresponds to moving point x + SHIFT


def _pattern(grid: Grid) -> np.ndarray:
    """A smooth 2D pattern of blobs (values ~0-100) on ``grid`` as a function of world mm."""
    w = grid.world_points().reshape(grid.shape + (2,))
    out = np.zeros(grid.shape)
    for cx, cy, s in ((-8, -6, 5.0), (7, -4, 4.0), (-3, 8, 6.0), (9, 9, 3.5), (0, 0, 3.0)):
        out += 100 * np.exp(-((w[..., 0] - cx) ** 2 + (w[..., 1] - cy) ** 2) / (2 * s * s))
    return out.astype(np.float32)


def _translated_pair() -> PairData:
    """Fixed pattern F(x); moving M(y) = F(y − SHIFT), so φ(x) = x + SHIFT (mm)."""
    grid = Grid((48, 44), (1.0, 1.0), (-23.0, -21.0), (1.0, 0.0, 0.0, 1.0))
    fixed = Image(_pattern(grid), grid, "fixed")
    moved = Grid(grid.size, grid.spacing, tuple(np.asarray(grid.origin) - SHIFT),
                 grid.direction)
    moving = Image(_pattern(moved), grid, "moving")  # values at y are F(y - SHIFT)
    labels = Image((fixed.array > 40).astype(np.int32), grid, "labels")
    mlabels = Image((moving.array > 40).astype(np.int32), grid, "mlabels")
    points = np.array([[-8.0, -6.0], [7.0, -4.0], [-3.0, 8.0], [0.0, 0.0], [2.0, 3.0]])
    return PairData(task="test", name="shift", fixed=fixed, moving=moving, fixed_sel=labels,
                    moving_sel=mlabels, sel_labels=[1], fixed_eval=labels, moving_eval=mlabels,
                    eval_labels=[1], fixed_points=points, moving_points=points + SHIFT)


def _center_tre(pair: PairData, field: np.ndarray) -> float:
    mapped = map_points_with_field(pair.fixed_points, field, pair.fixed.grid)
    return float(np.linalg.norm(mapped - pair.moving_points, axis=1).mean())


def test_field_helpers_translation_and_affine():
    grid = Grid((10, 8, 6), (1.0, 2.0, 3.0), (5.0, -4.0, 2.0), tuple(np.eye(3).ravel()))
    m = np.eye(4)
    m[:3, 3] = [1.0, -2.0, 0.5]
    field = affine_field(m, grid)
    assert np.allclose(field, [1.0, -2.0, 0.5])
    p = np.array([[8.0, 0.0, 8.0]])
    assert np.allclose(map_points_with_field(p, field, grid), p + [1.0, -2.0, 0.5])
    assert np.allclose(jacobian_determinant(field, grid), 1.0)
    # composing a deformable shift with the affine: M (x + u) with a scaling in M
    s = np.diag([2.0, 1.0, 1.0, 1.0])
    total = compose_with_affine(np.full(grid.shape + (3,), 1.0), s, grid)
    x = grid.world_points().reshape(grid.shape + (3,))
    assert np.allclose(x + total, (x + 1.0) * [2.0, 1.0, 1.0])


def test_label_warp_follows_resampling_convention():
    pair = _translated_pair()
    field = np.broadcast_to(SHIFT, pair.fixed.grid.shape + (2,)).astype(float)
    inner = (slice(5, -5), slice(5, -5))
    # half-voxel shift: nearest-neighbour ties at the edges cost a few % of agreement
    agree = (warp_labels_with_field(pair.moving_sel, field, pair.fixed.grid)[inner]
             == pair.fixed_sel.array[inner]).mean()
    wrong = (warp_labels_with_field(pair.moving_sel, -field, pair.fixed.grid)[inner]
             == pair.fixed_sel.array[inner]).mean()
    assert agree > 0.95 and agree - wrong > 0.03
    assert _center_tre(pair, field) < 1e-6


def test_pair_round_trip(tmp_path):
    pair = _translated_pair()
    pair.init_matrix = np.eye(3)
    back = load_pair(pair.save(tmp_path / "p"))
    assert np.allclose(back.fixed.array, pair.fixed.array)
    assert back.fixed.grid.same_as(pair.fixed.grid)
    assert np.allclose(back.moving_points, pair.moving_points)
    assert back.sel_labels == [1] and np.allclose(back.init, np.eye(3))


PEER_SETTINGS = {
    "elastix": {"grid_alphas": [0.0], "elastix": {"iterations": 60, "resolutions": 2}},
    "ants": {"ants": {"reg_iterations": [30, 20, 0]}},
    "sitk": {"sitk": {"shrink": [2, 1], "iterations": 40}},
}


@pytest.mark.parametrize("name", ["elastix", "ants", "sitk"])
def test_peer_recovers_translation(name):
    reason = methods.available(name)
    if reason:
        pytest.skip(reason)
    pair = _translated_pair()
    identity_tre = _center_tre(pair, np.zeros(pair.fixed.grid.shape + (2,)))
    assert identity_tre == pytest.approx(np.linalg.norm(SHIFT))
    result = methods.get(name)(pair, PEER_SETTINGS[name])
    assert result.field.shape == pair.fixed.grid.shape + (2,)
    # a wrong direction (moving → fixed) would give about 2·|SHIFT| = 5.8 mm
    assert _center_tre(pair, result.field) < 0.35 * identity_tre


def test_peer_composes_with_initial_affine():
    """A peer sees the moving image pre-aligned by the pair's affine; its total field must
    include that affine (identity deformable part here: the affine is the exact answer)."""
    from benchmarks.methods._peer_io import prealigned_moving, total_field

    pair = _translated_pair()
    m = np.eye(3)
    m[:2, 2] = SHIFT
    pair.init_matrix = m
    pre = prealigned_moving(pair)
    inner = (slice(6, -6), slice(6, -6))
    # linear interpolation at a half-voxel shift: errors of a few units (peak value ~100)
    assert np.abs(pre.array[inner] - pair.fixed.array[inner]).max() < 4.0
    assert np.abs(pair.moving.array[inner] - pair.fixed.array[inner]).max() > 15.0
    field = total_field(pair, np.zeros(pair.fixed.grid.shape + (2,)))
    assert _center_tre(pair, field) < 1e-6


def _check_first_call(report: dict, text: str) -> dict:
    """The first tiny call: phantom and sliding fitted, brain skipped; its cidir run."""
    assert report["mode"] == "tiny" and "--tiny" in report["command"]
    assert report["complete"] and report["reused_runs"] == 0
    assert report["machine"]["cpu_cores"] >= 1 and report["machine"]["torch"]
    assert "absent" in report["tasks"]["brain2d"]["skipped"]
    (pair,) = report["tasks"]["phantom"]["pairs"].values()
    run = pair["runs"]["cidir"]
    assert run["ok"], run.get("error")
    assert np.isfinite(run["metrics"]["tre_mm"]) and run["peak_rss_mb"] > 0
    assert 0.0 <= run["choice"]["alpha"] <= 1.0
    assert len(run["run_key"]) == 16 and run["finished_utc"]
    (sliding,) = report["tasks"]["phantom-sliding"]["pairs"].values()
    assert sliding["info"]["variant"] == "sliding" and pair["info"]["variant"] == "smooth"
    assert sliding["runs"]["cidir"]["ok"], sliding["runs"]["cidir"].get("error")
    assert sliding["runs"]["cidir"]["run_key"] != run["run_key"]
    assert sliding["before"]["field_error_mm"] > 0
    assert "Phantom 4D-CT" in text and "| `cidir` |" in text and "Skipped:" in text
    assert "## Phantom 4D-CT with sliding and exhale density" in text
    assert "Tiny smoke settings" in text and "Incomplete" not in text
    return run


def _check_interrupted_call(monkeypatch, out: Path, doc: Path, run: dict) -> None:
    """A call interrupted after its first run leaves a file with every earlier run in it,
    those of the named tasks it had not started included."""
    import benchmarks.run_benchmarks as runner
    from benchmarks.run_benchmarks import main

    real_run_one, calls = runner.run_one, []

    def interrupted(*args, **kwargs):
        calls.append(args[1])
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real_run_one(*args, **kwargs)

    monkeypatch.setattr(runner, "run_one", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main(["--tiny", "--tasks", "phantom", "phantom-sliding", "--resume", "--methods",
              "identity", "affine", "--no-baselines", "--out", str(out), "--doc", str(doc)])
    on_disk = json.loads((out / "benchmarks-tiny.json").read_text())
    sliding = on_disk["tasks"]["phantom-sliding"]["pairs"]["small-seed0"]["runs"]
    assert sliding["cidir"]["ok"]  # not started by the interrupted call: kept
    runs = on_disk["tasks"]["phantom"]["pairs"]["small-seed0"]["runs"]
    assert calls == ["identity", "affine"] and not on_disk["complete"]
    assert {"identity", "cidir", "sitk"} <= set(runs) and runs["cidir"]["metrics"] == run[
        "metrics"]
    assert "Incomplete: 3 of 4 planned runs" in doc.read_text()


@pytest.mark.slow  # 35 s: the whole benchmark runner on tiny phantoms (both variants)
def test_runner_tiny_phantom(tmp_path, monkeypatch):
    from benchmarks.run_benchmarks import main

    out, doc = tmp_path / "results", tmp_path / "benchmarks.md"
    main(["--tiny", "--tasks", "phantom", "phantom-sliding", "brain2d", "--methods", "cidir",
          "--no-baselines", "--shared-data", str(tmp_path / "absent"), "--out", str(out),
          "--doc", str(doc)])
    report = json.loads((out / "benchmarks-tiny.json").read_text())
    run = _check_first_call(report, doc.read_text())

    # --resume: the finished run is reused, not rerun; a task this call does not name is kept
    main(["--tiny", "--resume", "--tasks", "brain2d", "--methods", "cidir", "--no-baselines",
          "--shared-data", str(tmp_path / "absent"), "--out", str(out), "--doc", str(doc)])
    kept = json.loads((out / "benchmarks-tiny.json").read_text())
    assert kept["tasks"]["phantom"]["pairs"] == report["tasks"]["phantom"]["pairs"]
    main(["--tiny", "--resume", "--tasks", "phantom", "--methods", "cidir", "sitk",
          "--no-baselines", "--out", str(out), "--doc", str(doc)])
    again = json.loads((out / "benchmarks-tiny.json").read_text())
    assert again["reused_runs"] == 1
    assert list(again["tasks"]) == ["phantom", "phantom-sliding", "brain2d"]
    runs = again["tasks"]["phantom"]["pairs"]["small-seed0"]["runs"]
    assert runs["cidir"]["reused"] and runs["cidir"]["metrics"] == run["metrics"]
    assert runs["sitk"]["ok"] and not runs["sitk"].get("reused")
    calls = again["calls"]
    assert [(c["runs_done"], c["runs_reused"]) for c in calls] == [(2, 0), (0, 0), (1, 1)]
    assert "--methods cidir sitk" in calls[-1]["command"] and calls[-1]["finished_utc"]
    assert "come from 3 calls" in doc.read_text()
    _check_interrupted_call(monkeypatch, out, doc, run)

    # a call naming other methods keeps the finished runs of the ones it does not name
    main(["--tiny", "--resume", "--tasks", "phantom", "--methods", "identity",
          "--no-baselines", "--out", str(out), "--doc", str(doc)])
    last = json.loads((out / "benchmarks-tiny.json").read_text())["tasks"]["phantom"]
    assert list(last["pairs"]["small-seed0"]["runs"]) == ["identity", "cidir", "sitk"]
    assert last["planned_methods"] == ["identity", "affine", "cidir", "sitk"]


def test_report_marks_incomplete_tasks(tmp_path):
    from benchmarks.report import write_markdown

    run = {"ok": True, "metrics": {"tre_mm": 1.0, "dice_eval": 0.9}, "method_wall_seconds": 2.0,
           "choice": {"alpha": 0.5}, "code_version": "abc"}
    entry = {"pairs": {"p0": {"before": {}, "runs": {"cidir": run}}},
             "planned_pairs": ["p0", "p1"], "planned_methods": ["cidir"], "skipped": None}
    settings = {"cidir": {}, "idir_alpha": 0.5, "grid_alphas": [0.0, 1.0], "elastix": {},
                "ants": {}, "sitk": {}}
    report = {"mode": "full", "command": "python x", "started_utc": "2026-01-01T00:00:00",
              "total_seconds": 60.0, "settings": settings, "tasks": {"phantom": entry},
              "machine": {"cpu_cores": 2, "platform": "p", "device": "cpu",
                          "threads_per_run": 2, "python": "3", "torch": "t"}}
    write_markdown([report], tmp_path / "b.md", ["b-full.json"])
    text = (tmp_path / "b.md").read_text()
    assert "**Incomplete: 1 of 2 planned runs**" in text and "**interrupted**" in text
    assert "A 2-weight grid, not 11." in text and "# Full protocol" in text
    assert ("**Not run on this task**: `idir`, `idir-grid`, `idir-at-cidir`, `elastix`, "
            "`ants`, `sitk`") in text
    assert "Tasks not run in this mode: Phantom 4D-CT with sliding" in text
    assert "; Lung MRI inter-subject" in text


def test_runner_dirlab_task_on_a_download_layout(dirlab_download, tmp_path):
    """--dirlab ROOT runs the DIR-LAB task on a download layout: threshold lung masks, α by
    lung Dice, TRE on the case's landmark files (here a phantom written as case 1)."""
    from benchmarks.run_benchmarks import main

    root, phantom = dirlab_download
    out, doc = tmp_path / "results", tmp_path / "benchmarks.md"
    main(["--tiny", "--tasks", "dirlab", "--dirlab", str(root), "--methods", "cidir",
          "--shared-data", str(tmp_path / "absent"), "--out", str(out), "--doc", str(doc)])
    task = json.loads((out / "benchmarks-tiny.json").read_text())["tasks"]["dirlab"]
    assert task["skipped"] is None and list(task["pairs"]) == ["case1"]
    pair = task["pairs"]["case1"]
    snapped = [np.round(phantom.grid.world_to_voxel(p)) * phantom.grid.spacing
               for p in (phantom.inhale_points, phantom.exhale_points)]
    before = np.linalg.norm(snapped[0] - snapped[1], axis=1).mean()
    assert pair["before"]["tre_mm"] == pytest.approx(before, abs=1e-6)
    identity, cidir = pair["runs"]["identity"], pair["runs"]["cidir"]
    assert identity["ok"] and cidir["ok"], cidir.get("error")
    assert identity["metrics"]["tre_mm"] == pytest.approx(before, abs=1e-6)
    assert np.isfinite(cidir["metrics"]["tre_snapped_mm"]) and cidir["metrics"]["dice_sel"] > 0
    assert "## DIR-LAB 4DCT" in doc.read_text() and "| `cidir` |" in doc.read_text()


def test_run_key_depends_only_on_the_methods_own_settings():
    from benchmarks.run_benchmarks import mode_settings, run_key

    settings, _ = mode_settings("full")
    keys = {m: run_key("full", "phantom", "p", m, settings)
            for m in ("identity", "cidir", "idir", "idir-grid", "elastix", "ants", "sitk")}
    new_ants = {**settings, "ants": {"reg_iterations": [1]}}
    new_cidir = {**settings, "cidir": {"training.iterations": 5}}
    changed = {m for m in keys if run_key("full", "phantom", "p", m, new_ants) != keys[m]}
    assert changed == {"ants"}
    changed = {m for m in keys if run_key("full", "phantom", "p", m, new_cidir) != keys[m]}
    assert changed == {"cidir", "idir", "idir-grid"}
    assert run_key("quick", "phantom", "p", "cidir", settings) != keys["cidir"]
    assert run_key("full", "phantom", "q", "cidir", settings) != keys["cidir"]


def test_idir_at_cidir_uses_cidirs_choice(tmp_path, monkeypatch):
    """``idir-at-cidir`` runs after cidir on the same pair (whatever the order named), at
    cidir's α with cidir's calibrated λ scale; the doc states the conditioning cost; its
    run key depends on cidir's choice, and INR keys on the resolved configuration."""
    from benchmarks.reading import conditioning_cost
    from benchmarks.run_benchmarks import _pair_settings, main, run_key

    out, doc = tmp_path / "results", tmp_path / "b.md"
    assert main(["--tiny", "--tasks", "phantom", "--methods", "idir-at-cidir", "cidir",
                 "--no-baselines", "--out", str(out), "--doc", str(doc)]) == 0
    entry = json.loads((out / "benchmarks-tiny.json").read_text())["tasks"]["phantom"]
    runs = entry["pairs"]["small-seed0"]["runs"]
    assert list(runs) == ["cidir", "idir-at-cidir"] and runs["idir-at-cidir"]["ok"], runs
    cidir = runs["cidir"]["choice"]
    assert runs["idir-at-cidir"]["choice"]["alpha"] == cidir["alpha"]
    assert runs["idir-at-cidir"]["choice"]["lambda_scales"] == cidir["calibration"]["scales"]
    assert "**Conditioning cost**" in doc.read_text()
    assert conditioning_cost("phantom", entry).count("`small-seed0`") == 1

    settings = {"cidir": {}, "conditioning_pairs": 1}
    pair = {"runs": {"cidir": {"ok": True, "choice": {"alpha": 0.3,
                                                      "calibration": {"scales": [2.0, 1.0]}}}}}
    own, reason = _pair_settings("idir-at-cidir", settings, pair, 0)
    assert reason is None and own["cidir_choice"]["alpha"] == 0.3
    assert _pair_settings("idir-at-cidir", settings, pair, 1)[1] is not None
    assert _pair_settings("idir-at-cidir", settings, {"runs": {}}, 0)[1] is not None
    other = {**own, "cidir_choice": {**own["cidir_choice"], "alpha": 0.4}}
    assert run_key("full", "t", "p", "idir-at-cidir", own) != run_key(
        "full", "t", "p", "idir-at-cidir", other)
    import benchmarks.methods.inr as inr

    from cidir.config import RunConfig

    key = run_key("full", "t", "p", "cidir", settings)
    assert run_key("full", "t", "p", "sitk", settings) == run_key("full", "t", "p", "sitk", {})
    # new library defaults (same benchmark settings) give cidir a new key: it is rerun
    monkeypatch.setattr(inr, "config_for", lambda s, **kw: RunConfig().with_overrides(
        {"model.width": 64}))
    assert run_key("full", "t", "p", "cidir", settings) != key
