"""``RUN/report.html``: one self-contained page that can be mailed — figures embedded as
``data:`` PNG URIs, inline CSS, no scripts, no external resources. From the top: a summary
(before → after, α and why, times, input files with SHA-256, dates and version,
:mod:`cidir.reporting.summary`), the figures (2D runs side by side), the α table (per-label
Dice collapsed), every recorded number (collapsed) and the resolved config.

The figures are also written as ``RUN/report/*.png`` (each embedded figure links to its file)
for use elsewhere; the page does not need them.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cidir.fields import ConditionedTransform
from cidir.geometry import Image
from cidir.io.atomic import write_bytes, write_text
from cidir.reporting import figures as F
from cidir.reporting.panels import Figure, ViewData, evaluate_view, make_figures
from cidir.reporting.summary import RunRecord, summary_section
from cidir.reporting.tables import alpha_table, flatten, metrics_table
from cidir.selection.alpha_space import Alpha, format_alpha

__all__ = ["FIGURE_NAMES", "ViewData", "evaluate_view", "flatten", "render_html",
           "write_report"]

FIGURE_NAMES = ("alpha_curves.png", "tradeoff.png", "images.png", "differences.png",
                "checkerboard.png", "jacobian.png", "deformed_grid.png", "labels.png",
                "uncertainty.png", "loss.png")

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3} td.k{text-align:left}
tr.chosen,td.chosen,th.chosen{background:#fff3c4;font-weight:bold}
#summary{background:#f6f9fc;border:1px solid #cfdbe6;border-radius:6px;padding:0.2em 1.2em}
#summary table.summary td{font-size:1.05em} #summary td.note{font-size:0.85em;color:#555}
#summary table.summary td:nth-child(3){font-weight:bold}
#summary th{text-align:left} #summary td:nth-child(2),#summary td:nth-child(3){white-space:nowrap}
td.sha,td.path{font-family:ui-monospace,monospace;font-size:0.8em;word-break:break-all}
.small{font-size:0.85em;color:#555}
.scroll{overflow-x:auto}
details{margin:1em 0} summary{cursor:pointer;font-weight:bold}
figure{margin:1.5em 0} img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:0.9em;color:#444;margin-top:0.3em}
.side-by-side{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}
.side-by-side figure{flex:0 1 auto;max-width:100%;margin:0.5em 0}
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:0.85em}
"""


def png_width(png: bytes) -> int:
    """A PNG's width in pixels (from its IHDR chunk)."""
    return int.from_bytes(png[16:20], "big")


def _figure_html(name: str, png: bytes, caption: str, style: str = "") -> str:
    """One figure, its PNG embedded (data: URI) and linked to its file in report/."""
    data = base64.b64encode(png).decode("ascii")
    n = html.escape(name)
    return (f"<figure id='fig-{n.removesuffix('.png')}'{style}><a href='report/{n}'>"
            f"<img src='data:image/png;base64,{data}' alt='{n}'></a>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _figures_html(figures: Sequence[Figure], ndim: int) -> list[str]:
    """3D: one figure under the other. 2D (one panel per image): the figures side by side,
    wrapped by their natural widths (px), so single-panel figures share a row."""
    if ndim != 2:
        return [_figure_html(*f) for f in figures]
    return (["<div class='side-by-side'>"]
            + [_figure_html(*f, style=f" style='flex-basis:{png_width(f[1]) + 2}px'")
               for f in figures] + ["</div>"])


def _headline(alpha: Alpha, fixed: Image) -> str:
    return (f"<p>Shown at α = <b>{format_alpha(alpha, '.4g')}</b>. Fixed grid: "
            f"{html.escape(fixed.grid.describe())}.</p>")


def render_html(title: str, headline: str, metrics: Mapping[str, Any],
                selection: Mapping[str, Any] | None, figures: list[Figure],
                config_toml: str, run_id: str | None = None, *, summary: str = "",
                ndim: int = 3) -> str:
    """The page's text (every dynamic string HTML-escaped); ``run_id`` names the fit in a
    ``<meta name="cidir-run-id">``; ``summary``: the summary section's HTML."""
    meta = (f"<meta name='cidir-run-id' content='{html.escape(run_id)}'>" if run_id else "")
    parts = ["<!DOCTYPE html>", f"<html lang='en'><head><meta charset='utf-8'>{meta}",
             f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>", headline, summary, "<h2>Figures</h2>"]
    parts += _figures_html(figures, ndim)
    if selection and selection.get("rows"):
        parts += ["<h2>α table</h2>", alpha_table(selection)]
    parts += ["<details id='numbers'><summary>Every recorded number</summary>",
              metrics_table(metrics), "</details>",
              "<details id='config'><summary>Configuration (resolved)</summary>",
              f"<pre>{html.escape(config_toml)}</pre></details>", "</body></html>"]
    return "\n".join(p for p in parts if p) + "\n"


def _write_figures(folder: Path, figures: Sequence[Figure]) -> None:
    """Write report/*.png; remove figures of an earlier report that this one lacks."""
    for name, png, _ in figures:
        write_bytes(folder / name, png)
    made = {name for name, _, _ in figures}
    for name in FIGURE_NAMES:
        if name not in made:
            (folder / name).unlink(missing_ok=True)


def _evaluated_labels(selection: Mapping[str, Any] | None,
                      record: RunRecord) -> list[int] | None:
    """The labels the numbers are about: evaluation.json's, else the selection's."""
    evaluation = record.evaluation or record.metrics.get("evaluation") or {}
    if evaluation.get("dice_per_label"):
        return [int(k) for k in evaluation["dice_per_label"]]
    if selection and selection.get("labels"):
        return [int(v) for v in selection["labels"]]
    return None


def write_report(run_dir: str | Path, *, transform: ConditionedTransform, fixed: Image,
                 moving: Image, alpha: Alpha, config_toml: str, metrics: dict[str, Any],
                 selection: dict[str, Any] | None = None, fixed_labels: Image | None = None,
                 moving_labels: Image | None = None,
                 loss_history: list[dict] | None = None, title: str = "cidir run",
                 run_id: str | None = None, fixed_mask: Image | None = None,
                 record: RunRecord | None = None) -> Path:
    """Write ``run_dir/report.html`` (self-contained) and its figures ``run_dir/report/*.png``;
    return the HTML path. ``record``: the run's records for the summary (default: ``metrics``
    alone); ``fixed_mask``: outlined on the difference images. Every file is written
    atomically; figures of an earlier report that this one does not produce are removed."""
    run_dir = Path(run_dir)
    record = record or RunRecord(metrics=metrics)
    views = F.slice_views(fixed.grid)
    tied = (selection or {}).get("tied_alphas") or None
    data = [evaluate_view(v, transform, fixed, moving, alpha, fixed_labels, moving_labels,
                          fixed_mask, tied) for v in views]
    figures = make_figures(views, data, fixed=fixed, alpha=alpha, selection=selection,
                           loss_history=loss_history,
                           labels=_evaluated_labels(selection, record))
    _write_figures(run_dir / "report", figures)
    out = run_dir / "report.html"
    write_text(out, render_html(title, _headline(alpha, fixed), metrics, selection,
                                figures, config_toml, run_id,
                                summary=summary_section(alpha, selection, record, run_id),
                                ndim=fixed.ndim))
    return out
