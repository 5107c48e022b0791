"""Warm starts across patients: iterations and seconds to reach a from-scratch fit's result,
warm against cold — the tables of docs/beyond.md (issue 12 item 2).

    python benchmarks/warm_start.py [--tasks phantom lung-mri brain2d] [--targets 2]

Per task, with the library's default configuration (800 iterations):

- ``phantom``: the seed-0 pair's network (from :mod:`benchmarks.selection_fits`) starts the
  fits of seeds 1, 2, …; judged by the TRE at the α chosen by Dice;
- ``lung-mri``: the first pair's network starts the next pairs (other subjects, other fixed
  grids); judged by lobe Dice at the α chosen by lung-mask Dice;
- ``brain2d``: a cohort registered to one template (fixed subject 1, moving subjects 2, 3,
  …), each fit started from the previous subject's (chaining; the first from scratch);
  judged by odd-label Dice at the α chosen by the even labels.

Each target is fitted cold (fresh network) and warm (``init_model``); the network is kept at
iterations 50, 100, 200, 400 and 800, and each kept network chooses its α and is judged
there (:mod:`benchmarks.selection_judge`). "Reached" is the first kept iteration whose score
is within 0.005 Dice (0.02 mm TRE) of the cold fit's final score, with the training seconds
up to it (the λ calibration pilot included). Results: benchmarks/results/warm_start.json and
the block between the ``warm-start`` markers of docs/beyond.md.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.pairs import PairData  # noqa: E402
from benchmarks.selection_fits import (  # noqa: E402
    FittedPair,
    fitted,
    save_study,
    study_parser,
    task_pairs,
)
from benchmarks.selection_judge import Judge  # noqa: E402
from cidir import api  # noqa: E402
from cidir.config import RunConfig  # noqa: E402
from cidir.selection import search_alpha  # noqa: E402
from cidir.training import TrainingHook  # noqa: E402

KEEP = (50, 100, 200, 400, 800)
TOLERANCE = {"dice_eval": 0.005, "tre_mm": 0.02}


class Keep(TrainingHook):
    """Copies of the transform (and the training seconds so far) at the KEEP iterations."""

    def __init__(self) -> None:
        self.kept: list[tuple[int, float, object]] = []

    def on_step(self, state) -> None:
        if state.iteration in KEEP or state.iteration == state.iterations:
            self.kept.append((state.iteration, state.elapsed_seconds,
                              copy.deepcopy(state.transform)))


def _score(pair: PairData, transform, config: RunConfig, seconds: float) -> dict:
    choice = search_alpha(transform, pair.fixed_sel, pair.moving_sel, config.selection,
                          labels=pair.sel_labels)
    judged = Judge(FittedPair(pair, transform, config, seconds)).at(choice.alpha)
    return {"alpha": choice.alpha, **judged}


def curve(pair: PairData, init: FittedPair | None, config: RunConfig) -> list[dict]:
    """The kept networks of one fit (cold without ``init``), each chosen and judged."""
    keep = Keep()
    trainer = api.start_fit(pair.fixed, pair.moving, config, fixed_mask=pair.fixed_mask,
                            init_matrix=pair.init_matrix,
                            init_model=None if init is None else (init.transform, init.config))
    result = trainer.run([keep])
    out = [{"iteration": it, "seconds": s, **_score(pair, t, config, s)}
           for it, s, t in keep.kept]
    out[-1]["final"] = FittedPair(pair, result.transform, config, result.seconds)
    return out


def reached(warm: list[dict], cold_final: dict) -> dict | None:
    """The first kept point of ``warm`` within TOLERANCE of the cold fit's final score."""
    key = "tre_mm" if "tre_mm" in cold_final else "dice_eval"
    for point in warm:
        if key == "tre_mm" and point[key] <= cold_final[key] + TOLERANCE[key] or \
                key == "dice_eval" and point[key] >= cold_final[key] - TOLERANCE[key]:
            return {"iteration": point["iteration"], "seconds": point["seconds"], "key": key}
    return None


def _public(points: list[dict]) -> list[dict]:
    return [{k: v for k, v in p.items() if k != "final"} for p in points]


def template_pairs(shared: Path, count: int) -> list[PairData]:
    """Brain 2D: moving subjects 2 … count+1 registered to subject 1 (the template), labels
    as in the benchmark's brain task (even ids choose α, odd ids judge)."""
    from cidir.evaluation.metrics import foreground_labels
    from cidir.io.images import read_image, read_label_map

    base = shared / "mindboggle-2d"

    def load(i: int):
        return (read_image(base / "images" / f"OASIS-TRT-20-{i}_slice118.nii.gz"),
                read_label_map(base / "labels" /
                               f"OASIS-TRT-20-{i}_DKT31_CMA_labels_slice118.nii.gz"))

    fi, fl = load(1)
    pairs = []
    for m in range(2, count + 2):
        mi, ml = load(m)
        common = foreground_labels(fl.array, ml.array)
        pairs.append(PairData(task="brain2d", name=f"1<-{m}", fixed=fi, moving=mi,
                              fixed_sel=fl, moving_sel=ml,
                              sel_labels=[v for v in common if v % 2 == 0], fixed_eval=fl,
                              moving_eval=ml, eval_labels=[v for v in common if v % 2 == 1],
                              fold_mask=fl.with_array(fl.array > 0)))
    return pairs


def _row(task: str, pair: PairData, cold: list[dict], warm: list[dict] | None,
         source: str | None) -> dict:
    return {"task": task, "pair": pair.name, "source": source, "cold": _public(cold),
            "warm": None if warm is None else _public(warm),
            "reached": None if warm is None else reached(warm, cold[-1])}


def run_task(task: str, targets: int, work: Path, shared: Path) -> list[dict]:
    """Cold and warm fits of ``targets`` pairs of ``task`` (module docstring)."""
    config = RunConfig()
    if task == "brain2d":
        if not (shared / "mindboggle-2d").is_dir():
            return []
        chain, rows, donor = template_pairs(shared, targets + 1), [], None
        for pair in chain:
            cold = curve(pair, None, config)
            warm = None if donor is None else curve(pair, donor, config)
            rows.append(_row(task, pair, cold, warm, None if donor is None else
                             donor.pair.name))
            donor = (warm or cold)[-1]["final"]  # the next subject starts from this one
            print(json.dumps(rows[-1]), flush=True)
        return rows
    pairs, reason = task_pairs(task, targets + 1, shared)
    if reason:
        print(f"{task}: skipped ({reason})")
        return []
    donor = fitted(pairs[0], work)
    rows = []
    for pair in pairs[1:]:
        rows.append(_row(task, pair, curve(pair, None, config), curve(pair, donor, config),
                         donor.pair.name))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _scores(points: list[dict] | None, key: str) -> str:
    fmt = ".3f" if key == "tre_mm" else ".4f"
    return "—" if points is None else " / ".join(format(p[key], fmt) for p in points)


def table(rows: list[dict]) -> str:
    lines = ["| task | pair (started from) | cold: score at 50 / 100 / 200 / 400 / 800 it. | "
             "warm: the same | warm reaches cold's final at | cold fit (s) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        key = "tre_mm" if "tre_mm" in r["cold"][-1] else "dice_eval"
        got = r["reached"]
        where = ("—" if r["warm"] is None else "not within 800 it." if got is None else
                 f"{got['iteration']} it., {got['seconds']:.1f} s")
        unit = "TRE mm" if key == "tre_mm" else "Dice"
        lines.append(f"| {r['task']} ({unit}) | {r['pair']} ({r['source'] or 'scratch'}) | "
                     f"{_scores(r['cold'], key)} | {_scores(r['warm'], key)} | {where} | "
                     f"{r['cold'][-1]['seconds']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = study_parser(__doc__ or "", 2, ["phantom", "lung-mri", "brain2d"], "warm_start.json")
    p.add_argument("--targets", type=int, default=2, help="pairs started warm per task")
    p.set_defaults(doc=str(ROOT / "docs" / "beyond.md"))
    args = p.parse_args(argv)
    rows = []
    for task in args.tasks:
        rows += run_task(task, args.targets, Path(args.work), Path(args.shared_data))
    save_study(args, "benchmarks/warm_start.py", sys.argv[1:], rows, {"warm-start": table(rows)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
