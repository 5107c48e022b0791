"""The report's summary, at the top of the page: before → after (Dice of each evaluated label
set, landmark TRE in mm, folding in %), which α is shown and why, the times (s), the input
files with their SHA-256, the fit's and the report's dates and cidir's version.

Every number comes from the run's records (``metrics.json``, ``selection.json``,
``evaluation.json``, ``inputs.json``); a number that was not measured is said to be absent,
with the command that measures it.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cidir
from cidir.reporting.tables import fmt, num
from cidir.selection.alpha_space import Alpha, as_alpha, components, format_alpha, smoothness

WHAT = {"fixed": "fixed image", "moving": "moving image", "fixed_mask": "fixed mask",
        "moving_mask": "moving mask", "init": "initial transform",
        "fixed_labels": "fixed labels", "moving_labels": "moving labels",
        "fixed_points": "fixed landmarks", "moving_points": "moving landmarks"}


@dataclass(frozen=True)
class RunRecord:
    """What the run folder recorded, as read from its files (each part may be absent).

    ``metrics``: metrics.json (the fit); ``evaluation``: evaluation.json; ``inputs``: the
    entries of inputs.json by name; ``fit_date``: when the fit's model file was written
    (ISO 8601); ``alpha_given``: the shown α was given by the caller (``--alpha``)."""

    metrics: Mapping[str, Any] = field(default_factory=dict)
    evaluation: Mapping[str, Any] | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    fit_date: str | None = None
    alpha_given: bool = False


# ------------------------------------------------------------------------- helpers
def _labels_text(labels: Sequence[Any]) -> str:
    return ", ".join(str(v) for v in labels)


def _row(quantity: str, before: str, after: str, note: str, row_id: str) -> str:
    return (f"<tr id='{row_id}'><td class='k'>{html.escape(quantity)}</td>"
            f"<td>{html.escape(before)}</td><td>{html.escape(after)}</td>"
            f"<td class='k note'>{html.escape(note)}</td></tr>")


def _finite(value: Any) -> float | None:
    """A recorded number as a float, None when absent or not finite."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _extremes(per_label: Mapping[str, Any]) -> str:
    """``lowest 0.81 (label 2), highest 0.93 (label 1)`` over the labels' Dice."""
    finite = {k: v for k, v in ((k, _finite(v)) for k, v in per_label.items())
              if v is not None}
    if len(finite) < 2:
        return ""
    low, high = min(finite, key=finite.__getitem__), max(finite, key=finite.__getitem__)
    return (f"; per label lowest {finite[low]:.4f} (label {low}), highest {finite[high]:.4f} "
            f"(label {high})")


# ---------------------------------------------------------------- before → after
def _dice_rows(selection: Mapping[str, Any] | None,
               evaluation: Mapping[str, Any] | None) -> list[str]:
    rows = []
    evaluated: list[str] = []
    if evaluation and evaluation.get("dice") is not None:
        per_label = {str(k): v for k, v in (evaluation.get("dice_per_label") or {}).items()}
        evaluated = list(per_label)
        before = evaluation.get("dice_before")
        rows.append(_row(
            f"Dice, labels {_labels_text(evaluated)} (mean over labels, 0–1)",
            num(before, ".4f") if before is not None else "not recorded",
            num(evaluation["dice"], ".4f"),
            f"every voxel, at α = {num(evaluation.get('alpha'), '.3g')} (evaluation.json)"
            + _extremes(per_label), "sum-dice"))
    if selection and selection.get("dice") is not None and selection.get("rows") and \
            [str(v) for v in selection.get("labels") or []] != evaluated:
        rows.append(_row(
            f"Dice, labels {_labels_text(selection.get('labels') or [])} (mean, estimate)",
            "not measured", f"{num(selection['dice'], '.4f')} ± "
            f"{num(selection.get('dice_se'), '.4f')}",
            f"α search estimate from {selection.get('sample_points')} sampled voxels, at "
            f"α = {num(selection.get('alpha'), '.3g')} (selection.json); before: run cidir "
            "evaluate with --fixed-labels/--moving-labels", "sum-dice-selection"))
    if not rows:
        rows.append(_row("Dice", "not measured", "not measured",
                         "no label maps were given (cidir select or cidir evaluate with "
                         "--fixed-labels/--moving-labels measure it)", "sum-dice"))
    return rows


def _tre_row(evaluation: Mapping[str, Any] | None) -> str:
    before = (evaluation or {}).get("tre_before")
    after = (evaluation or {}).get("tre_after")
    if not before or not after:
        return _row("TRE (mm)", "not measured", "not measured",
                    "no landmarks were given (cidir evaluate with --fixed-points/"
                    "--moving-points measures it)", "sum-tre")
    b, a = before["continuous"], after["continuous"]
    note = (f"{after.get('points')} landmark pairs, at α = "
            f"{num((evaluation or {}).get('alpha'), '.3g')}; max {num(b.get('max'), '.2f')} → "
            f"{num(a.get('max'), '.2f')} mm")
    if before.get("snapped") and after.get("snapped"):
        note += (f"; snapped to voxel centres {num(before['snapped']['mean'], '.2f')} → "
                 f"{num(after['snapped']['mean'], '.2f')} mm")
    return _row("TRE, mean ± sd (mm)", f"{num(b['mean'], '.2f')} ± {num(b['sd'], '.2f')}",
                f"{num(a['mean'], '.2f')} ± {num(a['sd'], '.2f')}", note, "sum-tre")


def _folding_row(selection: Mapping[str, Any] | None,
                 evaluation: Mapping[str, Any] | None) -> str:
    quantity = "folding: voxels with det J ≤ 0 (%)"
    if evaluation and evaluation.get("folding_percent") is not None:
        region = evaluation.get("jacobian_region", "fixed grid")
        return _row(quantity, "0 (identity)", num(evaluation["folding_percent"], ".3f"),
                    f"every voxel of the {region}, at α = {num(evaluation.get('alpha'), '.3g')}"
                    f"; std log det J {num(evaluation.get('std_log_jacobian'), '.3f')} "
                    "(evaluation.json)", "sum-folding")
    if selection and selection.get("folding_percent") is not None:
        where = {"lcurve": "of the fit's mask", "surface": "near the label boundaries"}.get(
            str(selection_rule(selection)), "near the labels")
        return _row(quantity, "0 (identity)", num(selection["folding_percent"], ".3f"),
                    f"estimate from sampled voxels {where}, at α = "
                    f"{num(selection.get('alpha'), '.3g')} (selection.json); over the whole "
                    "mask: run cidir evaluate", "sum-folding")
    return _row(quantity, "0 (identity)", "not measured", "run cidir evaluate to measure it",
                "sum-folding")


def before_after_table(selection: Mapping[str, Any] | None,
                       evaluation: Mapping[str, Any] | None) -> str:
    """Dice, TRE (mm) and folding (%) before (no transform: the images where they lie in
    world space) and after registration (φ at the α noted in each row)."""
    rows = _dice_rows(selection, evaluation) + [_tre_row(evaluation),
                                                _folding_row(selection, evaluation)]
    return ("<table class='summary'><tr><th>quantity</th><th>before (no transform)</th>"
            "<th>after</th>"
            f"<th>how measured</th></tr>{''.join(rows)}</table>")


# ------------------------------------------------------------------- α and why
def dice_ties(selection: Mapping[str, Any]) -> list[int] | None:
    """Indices of the α rows tied with the best mean Dice, recomputed from the recorded
    scores as the search decided them (within ``tie_tolerance``, or within each row's
    ``dice_gap_se`` when it is 0); None when the record does not allow it."""
    rows = selection.get("rows") or []
    tolerance = (selection.get("selection_config") or {}).get("tie_tolerance")
    scores = [_finite(r.get("dice")) for r in rows]
    if tolerance is None or not rows or all(s is None for s in scores):
        return None
    best = max(s for s in scores if s is not None)
    ties = [i for i, (r, s) in enumerate(zip(rows, scores, strict=True))
            if s is not None and s >= best - (tolerance if tolerance > 0
                                              else float(r.get("dice_gap_se") or 0.0))]
    chosen = max(ties, key=lambda i: smoothness(as_alpha(rows[i]["alpha"])))
    return ties if chosen == selection.get("index") else None


def _dice_reason(selection: Mapping[str, Any]) -> str:
    rows = selection["rows"]
    scores = {i: s for i, s in enumerate(_finite(r.get("dice")) for r in rows) if s is not None}
    text = (f"by the mean Dice of labels {_labels_text(selection.get('labels') or [])} over "
            + _searched_text(rows))
    if not scores:
        return text + " (no finite Dice was recorded)"
    best = max(scores, key=scores.__getitem__)
    text += (": best estimated mean Dice "
            f"{num(rows[best]['dice'], '.4f')} at α = {format_alpha(rows[best]['alpha'])}")
    ties = dice_ties(selection)
    if ties is None:
        return text
    tolerance = selection["selection_config"]["tie_tolerance"]
    within = (f"within {tolerance:g} of it" if tolerance > 0 else
              "within the standard error of their gap to it")
    if len(ties) == 1:
        return text + f"; no other α {within}"
    tied = ", ".join(format_alpha(rows[i]["alpha"]) for i in ties)
    order = ("the largest, smoothest α" if len(components(rows[0]["alpha"])) == 1
             else "the most regularized point (the largest sum of the α values)")
    return text + f"; tied set (Dice {within}): α = {tied}; ties go to {order}"


def _searched_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """``21 α from 0 to 1``, or ``52 points of the 2-D α space`` for several conditions."""
    count = len(components(rows[0]["alpha"]))
    if count > 1:
        return f"{len(rows)} points of the {count}-D α space (coarse grid refined around the best)"
    return (f"{len(rows)} α from {format_alpha(rows[0]['alpha'])} to "
            f"{format_alpha(rows[-1]['alpha'])}")


def selection_rule(selection: Mapping[str, Any]) -> str | None:
    """What chose α in selection.json: ``rule`` (``criterion`` in runs selected before the
    L-curve rule existed)."""
    return selection.get("rule") or selection.get("criterion")


def alpha_reason(alpha: Alpha, selection: Mapping[str, Any] | None,
                 alpha_given: bool) -> str:
    """Which α the report shows and why, in one sentence (plain text)."""
    if not selection or selection.get("alpha") is None:
        if alpha_given:
            return f"α = {format_alpha(alpha)}, given with --alpha (no α selection was run)."
        return (f"α = {format_alpha(alpha)} (default, no selection run: cidir select chooses "
                "α).")
    chosen = as_alpha(selection["alpha"])
    rule = selection_rule(selection)
    if rule == "dice" and selection.get("rows"):
        why = _dice_reason(selection)
    elif rule == "tre":
        why = (f"by the lowest mean landmark TRE ({num(selection.get('tre_mm'), '.3f')} mm) "
               f"over {len(selection.get('rows') or [])} α")
    elif rule == "surface":
        why = (f"by the smallest mean boundary error ({num(selection.get('surface_mm'), '.3f')}"
               f" mm: signed distance to the boundaries of labels "
               f"{_labels_text(selection.get('labels') or [])}) over "
               f"{len(selection.get('rows') or [])} α; ties within the standard error go to "
               "the larger α")
    elif rule == "lcurve":
        why = ("by the L-curve corner, without labels: the α farthest from the chord of the "
               "curve of image similarity against log regularizer energy over "
               f"{len(selection.get('rows') or [])} α (similarity "
               f"{num(selection.get('similarity'), '.5g')}, energy "
               f"{num(selection.get('energy'), '.4g')})")
    else:
        why = f"by {rule}"
    text = f"α = {format_alpha(chosen)}, chosen {why}."
    shown = zip(components(chosen), components(alpha), strict=False)
    if max(abs(c - a) for c, a in shown) > 1e-9:
        text = (f"Shown at α = {format_alpha(alpha)}, given with --alpha; the selection chose "
                f"{text}")
    if selection.get("warning"):
        text += f" Warning: {selection['warning']}"
    return text


# ------------------------------------------------------------- time, inputs, dates
def time_text(metrics: Mapping[str, Any], selection: Mapping[str, Any] | None) -> str:
    """Fit, initial alignment, calibration and α search times (s), and the machine."""
    parts = []
    if metrics.get("fit_seconds") is not None:
        fit = f"fit {num(metrics['fit_seconds'], '.1f')} s"
        pilot = (metrics.get("calibration") or {}).get("seconds")
        if pilot is not None:
            fit += f" (of which calibration pilot {num(pilot, '.1f')} s)"
        parts.append(fit)
    if metrics.get("init_seconds"):
        parts.append(f"initial alignment {num(metrics['init_seconds'], '.2f')} s")
    if selection and selection.get("seconds") is not None:
        parts.append(f"α search {num(selection['seconds'], '.2f')} s")
    if not parts:
        return "Time: not recorded."
    machine = metrics.get("machine") or {}
    where = ", ".join(str(x) for x in (machine.get("gpu") or machine.get("device"),
                                       f"{machine['threads']} threads"
                                       if machine.get("threads") else None) if x)
    return f"Time: {', '.join(parts)}" + (f" ({where})." if where else ".")


def inputs_table(inputs: Mapping[str, Any]) -> str:
    """The recorded input files: name, path, SHA-256 and size; or a sentence when none."""
    rows = []
    for name, entry in inputs.items():
        what = html.escape(WHAT.get(name, name))
        if isinstance(entry, Mapping) and "path" not in entry:  # init by method
            rows.append(f"<tr><td class='k'>{what}</td><td class='k' colspan='3'>"
                        f"{html.escape(str(entry.get('method')))}</td></tr>")
            continue
        path = entry.get("path") if isinstance(entry, Mapping) else entry
        sha = entry.get("sha256") if isinstance(entry, Mapping) else None
        size = entry.get("bytes") if isinstance(entry, Mapping) else None
        rows.append(f"<tr><td class='k'>{what}</td><td class='k path'>"
                    f"{html.escape(str(path))}</td><td class='k sha'>"
                    f"{html.escape(sha or 'not recorded')}</td><td>{fmt(size)}</td></tr>")
    if not rows:
        return "<p>Input files: not recorded (no inputs.json).</p>"
    return ("<table id='inputs'><tr><th>input</th><th>path</th><th>SHA-256</th>"
            f"<th>bytes</th></tr>{''.join(rows)}</table>")


def file_date(path: str | Path) -> str:
    """A file's modification time, local time zone, ISO 8601 to the second."""
    stamp = Path(path).stat().st_mtime
    return dt.datetime.fromtimestamp(stamp, dt.timezone.utc).astimezone().isoformat(
        timespec="seconds")


def provenance_text(run_id: str | None, fit_date: str | None,
                    metrics: Mapping[str, Any] | None = None) -> str:
    """The run id, the fit's dates and cidir version (from metrics.json; for fits that did
    not record them, the model file's time) and the date and cidir version of this
    report."""
    now = dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")
    metrics = metrics or {}
    if metrics.get("finished"):
        fit = (f"fit started {metrics.get('started')}, finished {metrics['finished']} by "
               f"cidir {metrics.get('cidir_version', '(version not recorded)')}")
    elif fit_date:
        fit = f"fit finished {fit_date} (the model file's time; version not recorded)"
    else:
        fit = "fit date not recorded"
    run = f"run {run_id}; " if run_id else ""
    return f"{run}{fit}; this report written {now} by cidir {cidir.__version__}."


def summary_section(alpha: Alpha, selection: Mapping[str, Any] | None, record: RunRecord,
                    run_id: str | None = None) -> str:
    """The whole summary block (``<section id="summary">``)."""
    evaluation = record.evaluation or record.metrics.get("evaluation")
    return "\n".join([
        "<section id='summary'><h2>Summary</h2>",
        before_after_table(selection, evaluation),
        f"<p id='alpha-reason'>{html.escape(alpha_reason(alpha, selection, record.alpha_given))}"
        "</p>",
        f"<p id='time'>{html.escape(time_text(record.metrics, selection))}</p>",
        "<p id='provenance' class='small'>"
        f"{html.escape(provenance_text(run_id, record.fit_date, record.metrics))}</p>",
        "<h3>Input files</h3>", inputs_table(record.inputs), "</section>"])
