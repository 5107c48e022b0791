"""A cohort's summary: ``cohort.csv`` and ``cohort.json`` (one row per pair: status, α,
Dice / TRE before and after, folding, seconds, peak memory, error) and ``cohort.html``
(figures embedded, each pair's report linked). Written atomically after every pair."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from cidir.io.atomic import write_json, write_text
from cidir.runs.folder import csv_text
from cidir.selection.alpha_space import alpha_text, components, format_alpha

COLUMNS = ("id", "status", "fit", "alpha", "alpha_source", "dice_before", "dice_after",
           "tre_before_mm", "tre_after_mm", "folding_percent", "fit_seconds", "seconds",
           "peak_rss_mb", "report", "error")


def write_summary(out: Path, records: list[dict[str, Any]], settings: dict[str, Any],
                  seconds: float) -> None:
    """Rewrite the three summary files from the records so far (manifest order)."""
    rows = [{c: r.get(c) for c in COLUMNS} for r in records]
    write_text(out / "cohort.csv", csv_text([_flat(r) for r in rows]))
    counts = {s: sum(r.get("status") == s for r in records)
              for s in ("ok", "reused", "failed", "interrupted")}
    write_json(out / "cohort.json", {"pairs": rows, "counts": counts, "seconds": seconds,
                                     "settings": settings})
    write_text(out / "cohort.html", _html(rows, counts, seconds))


def _figure_png(rows: list[dict[str, Any]]) -> bytes | None:
    """α per pair, Dice and TRE before → after, time per pair, as one PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    done = [r for r in rows if r["status"] in ("ok", "reused")]
    if not done:
        return None
    ids = [r["id"] for r in done]
    fig = Figure(figsize=(12, 3.2), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 4)
    _alpha_bars(axes[0], ids, [components(r["alpha"]) for r in done])
    for ax, key, title in ((axes[1], "dice", "Dice before → after"),
                           (axes[2], "tre", "TRE (mm) before → after")):
        before = f"{key}_before" + ("_mm" if key == "tre" else "")
        after = f"{key}_after" + ("_mm" if key == "tre" else "")
        pairs = [(r[before], r[after]) for r in done
                 if r.get(before) is not None and r.get(after) is not None]
        if pairs:
            for b, a in pairs:
                ax.plot([0, 1], [b, a], "-o", color="#aa3377", alpha=0.7)
            ax.set_xticks([0, 1], ["before", "after"])
        ax.set_title(title if pairs else f"{title}: not given")
    axes[3].bar(ids, [r["seconds"] or 0.0 for r in done], color="#228833")
    axes[3].set(title="seconds per pair")
    for ax in (axes[0], axes[3]):
        ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _alpha_bars(ax: Any, ids: list[str], alphas: list[tuple[float, ...]]) -> None:
    """α per pair: one bar each, or side-by-side bars α1, α2, … for several conditions."""
    count = max(len(a) for a in alphas)
    width = 0.8 / count
    for k in range(count):
        offsets = [i + (k - (count - 1) / 2) * width for i in range(len(ids))]
        ax.bar(offsets, [a[k] if k < len(a) else 0.0 for a in alphas], width=width,
               label=f"α{k + 1}" if count > 1 else None)
    ax.set_xticks(range(len(ids)), ids)
    ax.set(title="α chosen", ylim=(0, 1))
    if count > 1:
        ax.legend(fontsize=7)


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    """A row for the CSV: α as ``0.35`` or ``0.35,0.7``."""
    alpha = row.get("alpha")
    return {**row, "alpha": None if alpha is None else alpha_text(alpha)}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return html.escape(format_alpha(value))
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _html(rows: list[dict[str, Any]], counts: dict[str, int], seconds: float) -> str:
    png = _figure_png(rows)
    figure = (f'<img alt="cohort figures" src="data:image/png;base64,'
              f'{base64.b64encode(png).decode()}">' if png else "<p>No pair finished yet.</p>")
    head = "".join(f"<th>{c}</th>" for c in COLUMNS)
    body = []
    for r in rows:
        cells = [f'<a href="{html.escape(r["report"])}">{_cell(r["id"])}</a>'
                 if r.get("report") else _cell(r["id"])]
        cells += [_cell(r.get(c)) for c in COLUMNS[1:]]
        style = ' style="background:#fdd"' if r.get("status") == "failed" else ""
        body.append(f"<tr{style}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>cidir cohort</title>"
            "<style>body{font-family:sans-serif}td,th{padding:2px 6px;border-bottom:1px solid "
            "#ddd;font-size:12px}</style></head><body>"
            f"<h1>cidir cohort</h1><p>{len(rows)} pairs: {summary}; {seconds:.0f} s.</p>"
            f"{figure}<table><tr>{head}</tr>{''.join(body)}</table></body></html>\n")
