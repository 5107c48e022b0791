"""The report reads at a glance: rendered by headless Chromium, its summary (before → after
from the run's own records, α and why, input checksums, version) is on the page; the page is
one self-contained file (figures as data: URIs, nothing fetched); absent numbers are said to
be absent; the α table keeps per-label Dice collapsed; 2D runs are laid out side by side."""

from __future__ import annotations

import base64
import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

import cidir
from cidir.reporting.summary import RunRecord, alpha_reason, summary_section
from cidir.reporting.tables import alpha_table

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("headless Chromium is absent (Debian: apt-get install -y chromium); the "
                "report's rendering is not checked")


def rendered_dom(page: Path, tmp_path: Path) -> str:
    """The DOM of ``page`` after headless Chromium has loaded and rendered it."""
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    result = subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                             "--dump-dom", page.resolve().as_uri()],
                            capture_output=True, encoding="utf-8", errors="replace", timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _cell(dom: str, row_id: str) -> list[str]:
    """The text of the cells of the summary row ``row_id``."""
    row = re.search(rf'<tr id="{row_id}">(.*?)</tr>', dom, re.S)
    assert row, f"summary row {row_id} missing"
    return [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row[1], re.S)]


def _png_size(data_uri: str) -> tuple[int, int]:
    png = base64.b64decode(data_uri.split(",", 1)[1])
    return struct.unpack(">II", png[16:24])


@pytest.fixture(scope="module")
def evaluated_run(cli_run, cli_files) -> Path:
    """The CLI tests' trained and selected 3D run, evaluated (labels, landmarks), reported."""
    from cidir.cli.main import main

    files = cli_files
    assert main(["evaluate", str(cli_run), "--fixed-points", str(files["fixed_points"]),
                 "--moving-points", str(files["moving_points"]), "--fixed-labels",
                 str(files["fixed_labels"]), "--moving-labels", str(files["moving_labels"]),
                 "--quiet"]) == 0
    assert main(["report", str(cli_run), "--quiet"]) == 0
    return cli_run


def test_summary_rendered_in_chromium(evaluated_run, tmp_path):
    dom = rendered_dom(evaluated_run / "report.html", tmp_path)
    assert '<section id="summary">' in dom
    assert dom.index('id="summary"') < dom.index("<h2>Figures</h2>"), "summary at the top"
    evaluation = json.loads((evaluated_run / "evaluation.json").read_text())
    selection = json.loads((evaluated_run / "selection.json").read_text())
    inputs = json.loads((evaluated_run / "inputs.json").read_text())["inputs"]
    dice = _cell(dom, "sum-dice")
    labels = ", ".join(evaluation["dice_per_label"])
    assert dice[0].startswith(f"Dice, labels {labels}")
    assert dice[1:3] == [f"{evaluation['dice_before']:.4f}", f"{evaluation['dice']:.4f}"]
    tre = _cell(dom, "sum-tre")
    before, after = evaluation["tre_before"]["continuous"], evaluation["tre_after"]["continuous"]
    assert tre[1:3] == [f"{before['mean']:.2f} ± {before['sd']:.2f}",
                        f"{after['mean']:.2f} ± {after['sd']:.2f}"]
    assert _cell(dom, "sum-folding")[2] == f"{evaluation['folding_percent']:.3f}"
    reason = re.search(r'<p id="alpha-reason">(.*?)</p>', dom, re.S)[1]
    assert reason.startswith(f"α = {selection['alpha']:.3g}, chosen by the mean Dice of labels")
    assert "tied set" in reason or "no other α" in reason
    assert re.search(r'<p id="time">Time: fit [0-9.]+ s.*α search', dom)
    for name in ("fixed", "moving", "fixed_mask", "fixed_labels", "moving_labels"):
        assert inputs[name]["sha256"] in dom
    metrics = json.loads((evaluated_run / "metrics.json").read_text())
    assert f"finished {metrics['finished']} by cidir {cidir.__version__}" in dom
    assert '<details id="per-label">' in dom


def test_report_is_self_contained(evaluated_run, tmp_path):
    """Mailed alone, the page shows everything: every image a data: URI, no resource
    fetched (no http(s) or protocol-relative URL, no script, stylesheet link or url())."""
    text = (evaluated_run / "report.html").read_text(encoding="utf-8")
    sources = re.findall(r"<img[^>]*\ssrc=['\"]([^'\"]+)", text)
    assert len(sources) == 10  # every figure: labels, α curves, trade-off, uncertainty
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"(src|href)=['\"](https?:)?//", text)
    assert not any(tag in text for tag in ("<script", "<link", "url(", "<iframe"))
    alone = tmp_path / "mailed" / "report.html"
    alone.parent.mkdir()
    alone.write_text(text, encoding="utf-8")
    dom = rendered_dom(alone, tmp_path)
    assert dom.count("data:image/png;base64,") == 10 and 'id="summary"' in dom


def test_summary_says_what_was_not_measured():
    """No labels, no landmarks, no selection: said plainly, no number made up."""
    record = RunRecord(metrics={"fit_seconds": 12.345, "machine": {"device": "cpu",
                                                                   "threads": 2}})
    text = summary_section(0.5, None, record)
    assert "no label maps were given" in text and "no landmarks were given" in text
    assert "α = 0.5 (default, no selection run" in text
    assert "Time: fit 12.3 s (cpu, 2 threads)." in text
    assert "Input files: not recorded" in text
    assert alpha_reason(0.7, None, alpha_given=True).startswith("α = 0.7, given with --alpha")


def _selection(dice: list[float], gap_se: float, tolerance: float = 0.0) -> dict:
    rows = [{"alpha": a / 4, "dice": d, "dice_se": 0.01, "dice_gap_se": gap_se,
             "folding_percent": 0.0, "dice_per_label": {str(k): d for k in range(1, 41)}}
            for a, d in enumerate(dice)]
    best = max(range(len(dice)), key=lambda i: dice[i])
    ties = [i for i, d in enumerate(dice) if d >= dice[best] - (tolerance or gap_se)]
    index = max(ties)
    return {"rows": rows, "index": index, "alpha": rows[index]["alpha"], "rule": "dice",
            "labels": list(range(1, 41)), "dice": dice[index], "dice_se": 0.01,
            "folding_percent": 0.0, "selection_config": {"tie_tolerance": tolerance}}


def test_alpha_reason_names_the_tied_set():
    selection = _selection([0.70, 0.802, 0.805, 0.801, 0.60], gap_se=0.005)
    reason = alpha_reason(0.75, selection, alpha_given=False)
    assert reason.startswith("α = 0.75, chosen by the mean Dice of labels 1, 2, 3")
    assert "best estimated mean Dice 0.8050 at α = 0.5" in reason
    assert "tied set (Dice within the standard error of their gap to it): α = 0.25, 0.5, " \
           "0.75; ties go to the largest, smoothest α" in reason
    alone = alpha_reason(0.5, _selection([0.7, 0.8, 0.9, 0.6, 0.5], 0.001), False)
    assert alone.endswith("no other α within the standard error of their gap to it.")
    shown = alpha_reason(0.25, selection, alpha_given=True)
    assert shown.startswith("Shown at α = 0.25, given with --alpha; the selection chose α = 0.75")


def test_alpha_table_collapses_per_label_dice():
    """40 labels: the main table has the means only; per-label Dice sits in <details>."""
    html = alpha_table(_selection([0.70, 0.802, 0.805, 0.801, 0.60], gap_se=0.005))
    main, details = html.split("<details", 1)
    assert "per label" not in main.split("</table>")[0]
    assert main.count("<tr") == 6
    assert details.count("<tr>") == 41 and "40 labels" in details
    assert details.count("class=chosen") == 41  # the chosen α's column, header included


def test_2d_report_side_by_side(tmp_path):
    """A 2D run: the image rows become columns (one row of panels) and the single-panel
    figures sit side by side in one flex row."""
    from cidir.config import RunConfig, SelectionConfig
    from cidir.data.synthetic import make_synthetic_pair
    from cidir.reporting import write_report
    from cidir.selection import search_alpha
    from cidir.training import fit

    pair = make_synthetic_pair(2, seed=0, size=(24, 20))
    tiny = {"model.width": 16, "training.iterations": 10, "training.batch_size": 300,
            "objective.calibration_iterations": 3}
    result = fit(pair.fixed, pair.moving, RunConfig().with_overrides(tiny), pair.fixed_mask)
    selection = search_alpha(result.transform, pair.fixed_labels, pair.moving_labels,
                             SelectionConfig(num_alphas=3)).to_dict()
    path = write_report(tmp_path, transform=result.transform, fixed=pair.fixed,
                        moving=pair.moving, alpha=selection["alpha"], config_toml="",
                        metrics={}, selection=selection, fixed_labels=pair.fixed_labels,
                        moving_labels=pair.moving_labels, fixed_mask=pair.fixed_mask)
    text = path.read_text(encoding="utf-8")
    uris = dict(re.findall(r"<figure id='fig-([a-z_]+)'[^>]*><a [^>]*><img src='([^']+)'", text))
    for name in ("images", "differences", "checkerboard"):
        width, height = _png_size(uris[name])
        assert width > 1.8 * height, (name, width, height)
    row = text.split("<div class='side-by-side'>", 1)[1].split("</div>", 1)[0]
    assert all(f"id='fig-{n}'" in row for n in ("images", "jacobian", "deformed_grid",
                                                  "labels"))
    assert "outline of the fixed mask" in text
