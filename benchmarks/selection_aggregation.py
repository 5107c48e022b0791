"""Can another way of reading the Dice table make the choice robust to poor labels? The
"Aggregation" table of docs/selection.md (issue 11 item 4).

    python benchmarks/selection_aggregation.py [--tasks lung-mri brain2d] [--pairs 2]

For each pair (trained once, :mod:`benchmarks.selection_fits`) and each degradation of the
selection labels (:mod:`benchmarks.selection_degrade`), one Dice search scores the 21-α grid
(mean and per-label Dice); five ways of choosing from that same table are compared:

- ``mean, ties to largest`` (cidir's rule): the largest α within the gap's standard error of
  the best mean Dice;
- ``mean, ties to median``: the middle α of that tied set;
- ``mean, strict best``: the α of the best mean Dice, no ties;
- ``median of labels``: the α maximizing the median over labels of each label's Dice minus
  its own best (a label that prefers another α weighs no more than one vote);
- ``labels that agree``: the mean Dice over the labels whose own best α lies within the
  interquartile range of the labels' best α (every label when none does).

Each choice is judged by the evaluation labels (:mod:`benchmarks.selection_judge`). Results:
benchmarks/results/selection_aggregation.json and the block between the
``selection-aggregation`` markers of docs/selection.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.selection_degrade import degradations  # noqa: E402
from benchmarks.selection_fits import FittedPair, each_fitted, save_study, study_parser  # noqa: E402
from benchmarks.selection_judge import Judge  # noqa: E402
from benchmarks.selection_tables import TITLES  # noqa: E402
from cidir.selection import AlphaRow, search_alpha  # noqa: E402

WAYS = ("mean, ties to largest", "mean, ties to median", "mean, strict best",
        "median of labels", "labels that agree")


def _tied(rows: list[AlphaRow]) -> list[int]:
    mean = np.array([r.dice for r in rows])
    return [i for i, r in enumerate(rows) if mean[i] >= mean.max() - r.dice_gap_se]


def choose(rows: list[AlphaRow], way: str) -> float:
    """The α that ``way`` (module docstring) picks from one search's rows."""
    alphas = np.array([r.alpha for r in rows])
    if way.startswith("mean"):
        tied = _tied(rows)
        pick = {"mean, ties to largest": max(tied), "mean, ties to median": tied[len(tied) // 2],
                "mean, strict best": int(np.argmax([r.dice for r in rows]))}[way]
        return float(alphas[pick])
    labels = list(rows[0].dice_per_label)
    per = np.array([[r.dice_per_label[v] for v in labels] for r in rows])  # (α, label)
    per = per[:, np.isfinite(per).all(axis=0)]
    if way == "median of labels":
        return float(alphas[int(np.argmax(np.median(per - per.max(axis=0), axis=1)))])
    preferred = alphas[np.argmax(per, axis=0)]
    low, high = np.percentile(preferred, [25, 75])
    keep = (preferred >= low) & (preferred <= high)
    if not keep.any():  # e.g. two labels that disagree: no middle, keep both
        keep[:] = True
    return float(alphas[int(np.argmax(per[:, keep].mean(axis=1)))])


def study_pair(fp: FittedPair) -> dict:
    pair, judge = fp.pair, Judge(fp)
    out: dict = {"task": pair.task, "pair": pair.name, "degradations": {}}
    for name, degrade in degradations().items():
        fixed, moving = degrade(pair.fixed_sel, pair.moving_sel, pair.sel_labels)
        labels = [v for v in pair.sel_labels if (fixed.array == v).any()
                  and (moving.array == v).any()]
        rows = search_alpha(fp.transform, fixed, moving, fp.config.selection,
                            labels=labels).rows
        out["degradations"][name] = {way: {"alpha": a, **judge.at(a)}
                                     for way in WAYS for a in [choose(rows, way)]}
        print(f"[{pair.task} {pair.name}] {name}: "
              f"{ {w: v['alpha'] for w, v in out['degradations'][name].items()} }", flush=True)
    return out


def table(results: list[dict]) -> str:
    """Per task and way: eval Dice undegraded, mean and worst over every degradation and pair."""
    lines = ["| task | way of choosing | eval Dice, labels as given | mean over degradations "
             "| worst |", "|---|---|---|---|---|"]
    for task in dict.fromkeys(r["task"] for r in results):
        pairs = [r for r in results if r["task"] == task]
        for way in WAYS:
            clean = [p["degradations"]["none"][way]["dice_eval"] for p in pairs]
            every = [d[way]["dice_eval"] for p in pairs for d in p["degradations"].values()]
            lines.append(f"| {TITLES.get(task, task).split(' (')[0]} | {way} | "
                         f"{np.mean(clean):.4f} | {np.mean(every):.4f} | {np.min(every):.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = study_parser(__doc__ or "", 2, ["lung-mri", "brain2d"],
                        "selection_aggregation.json").parse_args(argv)
    results = [study_pair(fp) for fp in each_fitted(args)]
    save_study(args, "benchmarks/selection_aggregation.py", sys.argv[1:], results,
               {"selection-aggregation": table(results)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
