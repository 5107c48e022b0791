"""``cidir cohort``: the manifest checked whole (bad ones write nothing), one run folder per
pair, reuse and resume on rerun, failures isolated, the local process pool."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from cidir.cohort import derive_seed
from cidir.config import RunConfig
from cidir.io.images import read_image, write_image
from runs_helpers import TINY, expect_error, interrupt_at, main, snapshot, write_pair

# pairs run inline with one torch thread: bit-reproducible, the same as in a pool worker
OPTIONS = [*TINY, "--threads", "1", "--training-checkpoint-every", "5"]


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory) -> dict[str, Path]:
    return write_pair(tmp_path_factory.mktemp("pair"))


def _manifest(path: Path, rows: list[dict[str, str]], header: list[str] | None = None) -> Path:
    header = header or list(rows[0])
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(h, "") for h in header])
    return path


def _row(files: dict[str, Path], ident: str, labels: bool = True) -> dict[str, str]:
    row = {"id": ident, "fixed": str(files["fixed"]), "moving": str(files["moving"]),
           "fixed_mask": str(files["mask"])}
    if labels:
        row.update(fixed_labels=str(files["fixed_labels"]),
                   moving_labels=str(files["moving_labels"]),
                   fixed_points=str(files["fixed_points"]),
                   moving_points=str(files["moving_points"]))
    return row


def _tensors(run: Path) -> dict[str, np.ndarray]:
    return load_file(str(run / "model.safetensors"))


# ------------------------------------------------------------------- bad manifests
BAD = [
    ("unknown column", lambda f: ([{**_row(f, "a"), "fixd": "x"}], None),
     ("header", "unknown column", "fixd")),
    ("missing column", lambda f: ([{"id": "a", "fixed": str(f["fixed"])}], None),
     ("header", "missing column", "moving")),
    ("duplicate id", lambda f: ([_row(f, "a"), _row(f, "a")], None),
     ("row 2", "column id", "duplicate id")),
    ("missing file", lambda f: ([{**_row(f, "a"), "moving": "nope.nii.gz"}], None),
     ("row 1", "column moving", "no such file")),
    ("empty id", lambda f: ([{**_row(f, "a"), "id": ""}], None), ("row 1", "column id", "empty")),
    ("id not a folder name", lambda f: ([_row(f, "../a")], None),
     ("row 1", "column id", "cannot name a folder")),
    ("labels without partner", lambda f: ([{**_row(f, "a"), "moving_labels": ""}], None),
     ("row 1", "column moving_labels", "go together")),
    ("bad init", lambda f: ([{**_row(f, "a"), "init": "warp"}], None),
     ("row 1", "column init", "moments")),
    ("bad override", lambda f: ([{**_row(f, "a"), "set": "training.iterationz=5"}], None),
     ("row 1", "column set", "iterationz")),
    ("bad override value", lambda f: ([{**_row(f, "a"), "set": "training.iterations=-3"}], None),
     ("row 1", "column set", "training.iterations")),
    ("init model without a model",
     lambda f: ([{**_row(f, "a"), "init_model": str(f["mask"].parent)}], None),
     ("row 1", "column init_model", "model.safetensors")),
    ("no rows", lambda f: ([], ["id", "fixed", "moving"]), ("no pairs",)),
    ("extra cells", lambda f: ([_row(f, "a")], ["id", "fixed", "moving"]), ("more cells",)),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_manifest_is_refused_with_nothing_written(capfd, pair_files, tmp_path, case):
    _, build, words = case
    rows, header = build(pair_files)
    manifest = tmp_path / "m.csv"
    if header and rows and len(header) < len(rows[0]):  # more cells than the header
        manifest.write_text(",".join(header) + "\n" + ",".join(rows[0].values()) + "\n")
    else:
        _manifest(manifest, rows, header or list(rows[0]))
    out = tmp_path / "cohort"
    expect_error(capfd, ["cohort", str(manifest), "--out", str(out), *OPTIONS], *words)
    assert not out.exists()


def test_every_problem_in_one_message(capfd, pair_files, tmp_path):
    manifest = _manifest(tmp_path / "m.csv", [{**_row(pair_files, "a"), "fixed": "x.nii"},
                                              _row(pair_files, "a")])
    err = expect_error(capfd, ["cohort", str(manifest), "--out", str(tmp_path / "o"),
                               *OPTIONS], "2 problem(s)")
    assert "row 1 (id a), column fixed" in err and "row 2 (id a), column id" in err


def test_relative_paths_are_relative_to_the_manifest(pair_files, tmp_path):
    from cidir.cohort import read_manifest

    folder = pair_files["fixed"].parent
    manifest = _manifest(folder / "relative.csv", [{"id": "a", "fixed": "fixed.nii.gz",
                                                     "moving": "moving.nii.gz"}])
    (pair,) = read_manifest(manifest, RunConfig())
    assert pair.path("fixed") == pair_files["fixed"].resolve() and pair.path("fixed_mask") is None


# ---------------------------------------------------------------------- running
def test_cohort_runs_reuses_and_refits_only_what_changed(capfd, pair_files, tmp_path):
    """Three pairs: a run folder each (report, field, selection), per-pair seeds, the
    summary files; a rerun reuses all; a changed input refits that pair only."""
    moving2 = tmp_path / "moving2.nii.gz"
    image = read_image(pair_files["moving"])
    write_image(image, moving2)
    rows = [_row(pair_files, "p1"), {**_row(pair_files, "p2"), "moving": str(moving2)},
            {**_row(pair_files, "p3", labels=False),
             "set": "training.iterations=10; training.seed=7"}]
    manifest = _manifest(tmp_path / "m.csv", rows, list(rows[0]) + ["set"])
    out = tmp_path / "cohort"
    argv = ["cohort", str(manifest), "--out", str(out), *OPTIONS]
    assert main(argv) == 0
    summary = json.loads((out / "cohort.json").read_text())
    assert [p["status"] for p in summary["pairs"]] == ["ok", "ok", "ok"]
    for ident in ("p1", "p2", "p3"):
        for name in ("model.safetensors", "report.html", "field.nii.gz", "evaluation.json"):
            assert (out / ident / name).is_file(), (ident, name)
        config = RunConfig.load(out / ident / "config.toml")
        assert config.training.seed == derive_seed(7 if ident == "p3" else 0, ident)
    assert (out / "p1" / "selection.json").is_file() and not (out / "p3" / "selection.json"
                                                              ).exists()
    assert RunConfig.load(out / "p3" / "config.toml").training.iterations == 10
    first = summary["pairs"][0]
    assert first["dice_after"] is not None and first["tre_after_mm"] is not None
    assert summary["pairs"][2]["alpha_source"].startswith("default")
    html = (out / "cohort.html").read_text()
    assert 'href="p1/report.html"' in html and "data:image/png;base64," in html
    assert len((out / "cohort.csv").read_text().splitlines()) == 4

    before = snapshot(out / "p1")
    capfd.readouterr()
    assert main(argv) == 0
    summary = json.loads((out / "cohort.json").read_text())
    assert [p["status"] for p in summary["pairs"]] == ["reused"] * 3
    assert snapshot(out / "p1") == before

    write_image(type(image)(image.array * 1.5, image.grid), moving2)
    p1_model = (out / "p1" / "model.safetensors").read_bytes()
    assert main(argv) == 0
    summary = json.loads((out / "cohort.json").read_text())
    assert [p["status"] for p in summary["pairs"]] == ["reused", "ok", "reused"]
    assert summary["pairs"][1]["fit"] == "fitted"
    assert (out / "p1" / "model.safetensors").read_bytes() == p1_model


def test_a_pair_started_from_another_run(capfd, pair_files, tmp_path):
    """Column init_model: the pair's fit starts from that run's network (recorded in its
    metrics.json); a changed source model refits the pair; an incompatible one fails the
    pair with the reason, and the others go on."""
    source = tmp_path / "source"
    assert main(["fit", str(pair_files["fixed"]), str(pair_files["moving"]), "--out",
                 str(source), *OPTIONS]) == 0
    other = tmp_path / "other"
    assert main(["fit", str(pair_files["fixed"]), str(pair_files["moving"]), "--out",
                 str(other), *OPTIONS, "--model-width", "8"]) == 0
    rows = [{**_row(pair_files, "warm"), "init_model": str(source)},
            {**_row(pair_files, "clash"), "init_model": str(other)}]
    manifest = _manifest(tmp_path / "m.csv", rows)
    out = tmp_path / "cohort"
    argv = ["cohort", str(manifest), "--out", str(out), *OPTIONS]
    assert main(argv) == 1
    summary = json.loads((out / "cohort.json").read_text())
    assert [p["status"] for p in summary["pairs"]] == ["ok", "failed"]
    assert "model.width 8 there, 16 here" in summary["pairs"][1]["error"]
    metrics = json.loads((out / "warm" / "metrics.json").read_text())
    assert metrics["init_model"]["path"] == str(source.resolve())
    capfd.readouterr()
    assert main(["fit", str(pair_files["fixed"]), str(pair_files["moving"]), "--out",
                 str(source), *OPTIONS, "--training-seed", "3", "--overwrite"]) == 0
    assert main(argv) == 1
    summary = json.loads((out / "cohort.json").read_text())
    assert summary["pairs"][0]["status"] == "ok" and summary["pairs"][0]["fit"] == "fitted"


def test_a_failing_pair_is_recorded_and_the_others_go_on(capfd, pair_files, tmp_path):
    broken = tmp_path / "broken.nii.gz"
    broken.write_text("not an image")
    rows = [{**_row(pair_files, "bad"), "fixed": str(broken)}, _row(pair_files, "good")]
    manifest = _manifest(tmp_path / "m.csv", rows)
    out = tmp_path / "cohort"
    loud = [o for o in OPTIONS if o != "--quiet"]  # a line per pair on stderr
    assert main(["cohort", str(manifest), "--out", str(out), *loud]) == 1
    err = capfd.readouterr().err
    assert "pair bad failed" in err and "Traceback" not in err
    assert "[1/2] bad: failed (" in err and "[2/2] good: ok (α " in err
    summary = json.loads((out / "cohort.json").read_text())
    assert [p["status"] for p in summary["pairs"]] == ["failed", "ok"]
    assert "broken.nii.gz" in summary["pairs"][0]["error"]


def test_an_interrupted_pair_resumes_to_the_same_model(pair_files, tmp_path, monkeypatch):
    """Ctrl-C during a pair's fit: the cohort stops (exit 130) with a checkpoint; the rerun
    resumes it and the model equals an uninterrupted cohort's."""
    import cidir.runs.fit as fit_module

    manifest = _manifest(tmp_path / "m.csv", [_row(pair_files, "p1")])
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(["cohort", str(manifest), "--out", str(whole), *OPTIONS]) == 0
    with monkeypatch.context() as m:
        m.setattr(fit_module, "StopWhen", interrupt_at(12))
        assert main(["cohort", str(manifest), "--out", str(parts), *OPTIONS]) == 130
    assert not (parts / "p1" / "model.safetensors").exists()
    assert main(["cohort", str(manifest), "--out", str(parts), *OPTIONS]) == 0
    record = json.loads((parts / "p1" / "cohort_pair.json").read_text())
    assert record["fit"] == "resumed"
    a, b = _tensors(whole / "p1"), _tensors(parts / "p1")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_an_interrupted_cohort_reruns_only_the_unfinished_pair(pair_files, tmp_path,
                                                               monkeypatch):
    """Ctrl-C during the second pair's fit: the rerun reuses the first pair as it is and
    resumes the second from its checkpoint."""
    import cidir.runs.fit as fit_module

    fits = []
    interrupting = interrupt_at(12)

    def second_fit_interrupted(*args, **kwargs):
        fits.append(1)
        return (interrupting if len(fits) == 2 else fit_module_stop)(*args, **kwargs)

    fit_module_stop = fit_module.StopWhen
    manifest = _manifest(tmp_path / "m.csv", [_row(pair_files, "p1"), _row(pair_files, "p2")])
    out = tmp_path / "cohort"
    argv = ["cohort", str(manifest), "--out", str(out), *OPTIONS]
    with monkeypatch.context() as m:
        m.setattr(fit_module, "StopWhen", second_fit_interrupted)
        assert main(argv) == 130
    first = (out / "p1" / "model.safetensors").read_bytes()
    assert not (out / "p2" / "model.safetensors").exists()
    assert main(argv) == 0
    summary = json.loads((out / "cohort.json").read_text())
    assert [p["status"] for p in summary["pairs"]] == ["reused", "ok"]
    assert summary["pairs"][1]["fit"] == "resumed"
    assert (out / "p1" / "model.safetensors").read_bytes() == first


@pytest.mark.slow  # ~40 s: two spawned workers import torch
def test_local_pool_equals_inline(pair_files, tmp_path):
    """Two workers (one thread each) give the same models as the pairs run inline."""
    rows = [_row(pair_files, "p1"), _row(pair_files, "p2")]
    manifest = _manifest(tmp_path / "m.csv", rows)
    assert main(["cohort", str(manifest), "--out", str(tmp_path / "a"), *OPTIONS]) == 0
    assert main(["cohort", str(manifest), "--out", str(tmp_path / "b"), "--workers", "2",
                 *OPTIONS]) == 0
    for ident in ("p1", "p2"):
        a, b = _tensors(tmp_path / "a" / ident), _tensors(tmp_path / "b" / ident)
        assert all(np.array_equal(a[k], b[k]) for k in a), ident
