"""Markdown tables of the α-selection study (docs/selection.md) from its results."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

TITLES = {"phantom": "Phantom (smooth motion, DIR-LAB size)",
          "phantom-sliding": "Phantom with sliding lungs (DIR-LAB size)",
          "lung-mri": "Lung MRI (α by the two lung masks, judged on the 5 lobes)",
          "brain2d": "Brain MRI 2D (α by the even labels, judged on the odd ones)"}
YARDSTICKS = (("dice_eval", "eval Dice", ".4f"), ("tre_mm", "TRE (mm)", ".3f"),
              ("field_error_mm", "field error (mm)", ".3f"))


def _by_task(results: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        out[r["task"]].append(r)
    return out


def _columns(entries: list[dict]) -> list[tuple[str, str, str]]:
    return [y for y in YARDSTICKS if all(y[0] in e for e in entries)]


def _cells(entries: list[dict], columns) -> str:
    alphas = ", ".join(f"{e['alpha']:g}" for e in entries)
    values = " | ".join(format(float(np.mean([e[k] for e in entries])), f)
                        for k, _, f in columns)
    return f"{alphas} | {values}"


def rules_table(results: list[dict]) -> str:
    """Per task: each rule's α (per pair) and the yardsticks at it (mean over pairs), then
    the hindsight best α of the grid by each yardstick."""
    parts = []
    for task, pairs in _by_task(results).items():
        names = list(pairs[0]["rules"])
        columns = _columns([pairs[0]["rules"][names[0]]])
        head = " | ".join(label for _, label, _ in columns)
        lines = [f"**{TITLES.get(task, task)}**, {len(pairs)} pairs "
                 f"({', '.join(p['pair'] for p in pairs)}); means over the pairs.", "",
                 f"| rule | α chosen (per pair) | {head} | search (s) |",
                 "|---|---|" + "---|" * len(columns) + "---|"]
        for name in names:
            entries = [p["rules"][name] for p in pairs]
            seconds = np.mean([e["seconds"] for e in entries])
            lines.append(f"| {name} | {_cells(entries, columns)} | {seconds:.2f} |")
        for key, label, fmt in columns:
            best = [p["hindsight"][key] for p in pairs]
            alphas = ", ".join(f"{b['alpha']:g}" for b in best)
            value = format(float(np.mean([b["value"] for b in best])), fmt)
            cells = " | ".join(value if k == key else "" for k, _, _ in columns)
            lines.append(f"| hindsight: best {label} | {alphas} | {cells} | |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def robustness_table(results: list[dict]) -> str:
    """Per task: for each degradation of the selection labels, the α the dice and surface
    rules choose (per pair) and the yardsticks there (mean over pairs)."""
    parts = []
    for task, pairs in _by_task(results).items():
        names = list(pairs[0]["robustness"])
        columns = _columns([pairs[0]["robustness"]["none"]["dice"]])
        head = " | ".join(label for _, label, _ in columns)
        lines = [f"**{TITLES.get(task, task)}**, {len(pairs)} pairs; means over the pairs.", "",
                 f"| selection labels | dice: α | {head} | surface: α | {head} |",
                 "|---|---|" + "---|" * len(columns) + "---|" + "---|" * len(columns)]
        for name in names:
            cells = [_cells([p["robustness"][name][kind] for p in pairs], columns)
                     for kind in ("dice", "surface")]
            lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)
