"""The ablation table (Markdown) from benchmarks/results/ablation.json, written between the
``<!-- ablation:start -->`` and ``<!-- ablation:end -->`` markers of docs/method-choices.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np

START, END = "<!-- ablation:start -->", "<!-- ablation:end -->"
#: task -> (metric key, column title, format)
QUALITY = {"brain2d": ("dice_eval", "brain Dice", "{:.3f}"),
           "lung-mri": ("dice_eval", "lung MRI lobe Dice", "{:.3f}"),
           "phantom": ("tre_mm", "phantom TRE mm", "{:.2f}"),
           "phantom-sliding": ("tre_mm", "sliding TRE mm", "{:.2f}")}


def _cell(runs: list[dict], task: str) -> str:
    key, _, fmt = QUALITY[task]
    ok = [r for r in runs if r.get("ok")]
    if not ok:
        return "—"
    quality = fmt.format(np.mean([r["metrics"][key] for r in ok]))
    fold = np.mean([r["metrics"]["folding_percent"] for r in ok])
    seconds = np.mean([r["register_seconds"] + r["select_seconds"] for r in ok])
    rss = np.mean([r["delta_rss_mb"] for r in ok])
    return f"{quality} · {fold:.2f}% · {seconds:.0f} s · {rss:.0f} MB"


def table(report: dict, variants: dict[str, tuple[str, dict]]) -> str:
    """One row per variant, one column per task: quality · folding · s per pair · ΔRSS."""
    runs = list(report.get("runs", {}).values())
    tasks = [t for t in QUALITY if any(r["task"] == t for r in runs)]
    pairs = {t: sorted({r["pair"] for r in runs if r["task"] == t}) for t in tasks}
    head = "| variant | change | " + " | ".join(
        f"{QUALITY[t][1]} ({len(pairs[t])})" for t in tasks) + " |"
    lines = [head, "|" + "---|" * (2 + len(tasks))]
    for name, (what, _) in variants.items():
        cells = [_cell([r for r in runs if r["task"] == t and r["variant"] == name], t)
                 for t in tasks]
        if all(c == "—" for c in cells):
            continue
        lines.append(f"| {name} | {what} | " + " | ".join(cells) + " |")
    machine = report.get("machine", {})
    lines.append("")
    lines.append(f"Each cell: mean over the pairs (count in the header) of the quality, folding "
                 f"(% det ≤ 0), seconds per pair (fit + α search; the pairs run one at a time "
                 f"on an otherwise idle machine) and ΔRSS; {machine.get('cpu_cores')} CPU "
                 f"cores, torch {machine.get('torch')}; each run's commit is its `code_version` in "
                 "benchmarks/results/ablation.json. "
                 "Calls: " + "; ".join(f"`{c}`" for c in report.get("commands", [])) + ".")
    return "\n".join(lines)


def write_table(report: dict, variants: dict[str, tuple[str, dict]], doc: Path) -> None:
    """The ablation table between the ``ablation`` markers of ``doc``."""
    write_block(doc, START, END, table(report, variants))


def write_block(doc: Path, start: str, end: str, body: str) -> None:
    """Replace the text between the markers ``start`` and ``end`` of ``doc`` by ``body``
    (appended with the markers if they are absent)."""
    text = doc.read_text(encoding="utf-8") if doc.is_file() else ""
    block = f"{start}\n{body}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text, encoding="utf-8")
