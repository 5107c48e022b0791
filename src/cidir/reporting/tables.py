"""The report's tables: every recorded number (flattened), and the α table — one row per α
with the mean scores, and the Dice of every label in a collapsible section (``<details>``),
one row per label, so that the table stays readable with many labels."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from cidir.selection.alpha_space import format_alpha


def flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Scalar entries with dotted keys for nested dicts; short lists kept, long ones dropped."""
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows += flatten(value, name + ".")
        elif isinstance(value, (list, tuple)):
            if len(value) <= 6 and all(not isinstance(v, (Mapping, list, tuple))
                                       for v in value):
                rows.append((name, value))
        else:
            rows.append((name, value))
    return rows


def fmt(value: Any, digits: int = 4) -> str:
    """A recorded value as text: floats to ``digits`` significant digits, None / NaN as —."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (float, np.floating)):
        return "—" if not math.isfinite(value) else f"{float(value):.{digits}g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v, digits) for v in value)
    return str(value)


def num(value: Any, spec: str) -> str:
    """A number with a format spec (``'.3f'``), or — when absent or not finite."""
    if value is None or isinstance(value, bool):
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    return format(number, spec) if math.isfinite(number) else "—"


def metrics_table(metrics: Mapping[str, Any]) -> str:
    """Every recorded number, one row per dotted key."""
    rows = "".join(f"<tr><td class='k'>{html.escape(k)}</td><td>{html.escape(fmt(v))}</td>"
                   "</tr>" for k, v in flatten(metrics))
    if not rows:
        return "<p>No metrics recorded.</p>"
    return f"<table><tr><th>quantity</th><th>value</th></tr>{rows}</table>"


def _score_columns(rule: str | None) -> list[tuple[str, Any]]:
    """The score columns of the α table for a rule: (header, cell function) pairs."""
    if rule == "surface":
        return [("boundary error (mm)", lambda r: num(r.get("surface_mm"), ".4f"))]
    if rule == "lcurve":
        return [("similarity S", lambda r: num(r.get("similarity"), ".5g")),
                ("regularizer energy R", lambda r: num(r.get("energy"), ".4g"))]
    return [("mean Dice ± se", lambda r: f"{num(r.get('dice'), '.4f')} ± "
                                          f"{num(r.get('dice_se'), '.4f')}"),
            ("se of gap to best", lambda r: num(r.get("dice_gap_se"), ".4f"))]


def _mean_rows(selection: Mapping[str, Any], has_tre: bool, columns: list) -> list[str]:
    body = []
    for i, r in enumerate(selection["rows"]):
        chosen = i == selection.get("index")
        cls = ' class="chosen"' if chosen else ""
        body.append(
            f"<tr{cls}>"
            f"<td>{format_alpha(r['alpha'], '.3f')}{' ◀ chosen' if chosen else ''}</td>"
            + "".join(f"<td>{cell(r)}</td>" for _, cell in columns)
            + f"<td>{num(r['folding_percent'], '.3f')}</td>"
            f"<td>{num(r.get('std_log_jacobian'), '.3f')}</td>"
            + (f"<td>{num(r.get('tre_mm'), '.3f')}</td>" if has_tre else "") + "</tr>")
    return body


def per_label_table(selection: Mapping[str, Any]) -> str:
    """Dice of every label (rows) at every α of the grid (columns), the chosen α's column
    marked, inside a ``<details>`` section; empty when no per-label Dice was recorded."""
    rows = selection["rows"]
    per_alpha = [{str(k): v for k, v in (r.get("dice_per_label") or {}).items()} for r in rows]
    labels: list[str] = []
    for dice in per_alpha:
        labels += [k for k in dice if k not in labels]
    if not labels:
        return ""
    index = selection.get("index")
    head = "".join(f"<th{' class=chosen' if i == index else ''}>"
                   f"{format_alpha(r['alpha'], '.3g')}</th>" for i, r in enumerate(rows))
    body = []
    for label in labels:
        cells = "".join(
            f"<td{' class=chosen' if i == index else ''}>"
            f"{num(dice.get(label), '.3f')}</td>" for i, dice in enumerate(per_alpha))
        body.append(f"<tr><td class='k'>{html.escape(label)}</td>{cells}</tr>")
    return (f"<details id='per-label'><summary>Dice per label at every α ({len(labels)} "
            f"labels)</summary><div class='scroll'><table><tr><th>label \\ α</th>{head}</tr>"
            f"{''.join(body)}</table></div></details>")


def alpha_table(selection: Mapping[str, Any]) -> str:
    """The α table: mean scores per α (chosen row marked), per-label Dice collapsed."""
    has_tre = any(r.get("tre_mm") is not None for r in selection["rows"])
    s = selection
    rule = s.get("rule") or s.get("criterion")  # criterion: runs selected before rules
    columns = _score_columns(rule)
    head = ("<tr><th>α</th>" + "".join(f"<th>{h}</th>" for h, _ in columns)
            + "<th>% det J ≤ 0</th><th>std log det J</th>"
            + ("<th>mean TRE (mm)</th>" if has_tre else "") + "</tr>")
    if rule == "lcurve":
        note = (f"Rule: lcurve (the L-curve corner, no labels; Dice not measured); similarity"
                f" and regularizer energy on {s.get('sample_points')} of "
                f"{s.get('region_voxels')} voxels of the fit's mask; search took "
                f"{num(s.get('seconds'), '.2f')} s.")
    elif rule == "surface":
        note = (f"Rule: surface; labels {fmt(s.get('labels'))}; mean error (mm) of the signed "
                f"distance to each label's boundary on {s.get('sample_points')} of "
                f"{s.get('region_voxels')} voxels near the boundaries; search took "
                f"{num(s.get('seconds'), '.2f')} s. Ties (within the standard error of the "
                "gap) go to the larger, smoother α.")
    else:
        note = (f"Rule: {rule}; labels {fmt(s.get('labels'))}; Dice estimated on "
                f"{s.get('sample_points')} of {s.get('region_voxels')} voxels near the labels"
                f"{' (exact)' if s.get('exact') else ''}; search took "
                f"{num(s.get('seconds'), '.2f')} s. Ties (within the standard error of the "
                "gap) go to the larger, smoother α.")
    return (f"<table id='alpha-table'>{head}{''.join(_mean_rows(selection, has_tre, columns))}"
            "</table>"
            f"<p>{html.escape(note)}</p>{per_label_table(selection)}")
