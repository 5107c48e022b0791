"""The α search's time and its accuracy against an exhaustive dense evaluation: the "Speed"
table of docs/selection.md (issue 11 item 1).

    python benchmarks/selection_speed.py [--tasks phantom lung-mri] [--pairs 1]

For each pair (trained once, :mod:`benchmarks.selection_fits`) and each search setting
(sampled points for Dice, points where det ∇φ is evaluated), the Dice rule's search over the
21-value α grid is timed twice in a row (the default setting's first call is the process's
first search: torch's one-time start-up included), and its chosen
α is judged by the exact Dice of the moving selection labels warped densely (every voxel of
the fixed grid, nearest label) at each α of the grid: the gap is the best dense Dice minus the
dense Dice at the chosen α (≤ 0.005 is the issue's bar). Results:
benchmarks/results/selection_speed.json and the block between the ``selection-speed`` markers
of docs/selection.md.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.selection_fits import (  # noqa: E402
    FittedPair,
    each_fitted,
    save_study,
    study_parser,
)
from cidir.config import SelectionConfig  # noqa: E402
from cidir.evaluation.metrics import dice_per_label, mean_dice  # noqa: E402
from cidir.fields import warp_labels  # noqa: E402
from cidir.selection import search_alpha  # noqa: E402

#: (Dice points, det ∇φ points) of each setting; the default first, so that its first call
#: is the process's first search (the cold start a user's `cidir select` pays)
SETTINGS = [(20000, 2000), (30000, 5000), (30000, 2000), (20000, 1000), (10000, 1000)]


def dense_dice(fp: FittedPair, alphas: list[float]) -> tuple[list[float], float]:
    """Exact mean Dice of the selection labels at every α, and the seconds it took."""
    pair, start = fp.pair, time.perf_counter()
    out = []
    for a in alphas:
        warped = warp_labels(fp.transform, pair.moving_sel, a).array
        out.append(mean_dice(dice_per_label(pair.fixed_sel.array, warped, pair.sel_labels)))
    return out, time.perf_counter() - start


def timed_search(fp: FittedPair, points: int, folding: int) -> dict:
    config = SelectionConfig(sample_points=points, folding_points=folding)
    pair = fp.pair
    seconds = []
    for _ in range(2):
        result = search_alpha(fp.transform, pair.fixed_sel, pair.moving_sel, config,
                              labels=pair.sel_labels)
        seconds.append(result.seconds)
    return {"sample_points": points, "folding_points": folding, "seconds": seconds[1],
            "first_call_seconds": seconds[0],
            "alpha": result.alpha, "region_voxels": result.region_voxels,
            "sampled_dice": result.chosen.dice, "tied_alphas": result.tied_alphas}


def measure_pair(fp: FittedPair) -> dict:
    alphas = [round(a, 10) for a in np.linspace(0, 1, 21)]
    dense, dense_seconds = dense_dice(fp, alphas)
    best = max(dense)
    searches = []
    for points, folding in SETTINGS:
        s = timed_search(fp, points, folding)
        s["dense_dice_at_choice"] = dense[alphas.index(s["alpha"])]
        s["gap_to_best_dense"] = best - s["dense_dice_at_choice"]
        searches.append(s)
        print(f"[{fp.pair.task} {fp.pair.name}] {points}/{folding}: {s['seconds']:.2f} s, "
              f"α {s['alpha']}, gap {s['gap_to_best_dense']:.4f}", flush=True)
    return {"task": fp.pair.task, "pair": fp.pair.name, "grid": fp.pair.fixed.grid.to_dict(),
            "alphas": alphas, "dense_dice": dense, "dense_seconds": dense_seconds,
            "best_dense_alpha": alphas[int(np.argmax(dense))], "searches": searches}


def table(results: list[dict]) -> str:
    lines = ["| pair | Dice points / det J points | search (s): first, second call | chosen α "
             "| dense Dice there | best dense Dice (α) | gap |", "|---|---|---|---|---|---|---|"]
    for r in results:
        best = max(r["dense_dice"])
        for s in r["searches"]:
            lines.append(
                f"| {r['task']} {r['pair']} | {s['sample_points']} / {s['folding_points']} | "
                f"{s['first_call_seconds']:.2f}, {s['seconds']:.2f} | {s['alpha']:g} | "
                f"{s['dense_dice_at_choice']:.4f} | "
                f"{best:.4f} ({r['best_dense_alpha']:g}) | {s['gap_to_best_dense']:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = study_parser(__doc__ or "", 1, ["phantom", "lung-mri"],
                        "selection_speed.json").parse_args(argv)
    results = [measure_pair(fp) for fp in each_fitted(args)]
    save_study(args, "benchmarks/selection_speed.py", sys.argv[1:], results,
               {"selection-speed": table(results)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
