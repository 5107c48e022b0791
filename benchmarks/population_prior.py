"""A population prior (issue 12 item 3): one network trained on several pairs first, then
fine-tuned per pair — does it cut the per-pair time further than a cold fit, or than a warm
start from one other pair (benchmarks/warm_start.py)? The table of docs/beyond.md.

    python benchmarks/population_prior.py [--tasks brain2d lung-mri phantom]
        [--population 3] [--targets 2]

Per task, the first ``population`` pairs train one shared network: one
:class:`cidir.training.Trainer` per pair (its own λ calibration pilot, point sampler and
fixed grid — each pair in the network frame of its own fixed image), one model and one Adam
optimizer, the pairs taking turns, ``training.iterations`` steps per pair (the cost of
fitting each of them once). The next ``targets`` pairs, never seen by it, are then fitted
three ways with the default configuration: cold, warm from the population network, and warm
from the first population pair's own fit; each network is kept at 50, 100, 200, 400 and 800
iterations, chooses its α by its selection labels and is judged by what the selection never
sees (as in benchmarks/warm_start.py). Pairs: brain 2D, subjects 2 … registered to subject 1
(a template cohort); lung MRI, the benchmark's pairs in order; the phantom, seeds 0, 1, ….
"""

from __future__ import annotations

import json
import sys
import time
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
from benchmarks.warm_start import curve, reached, template_pairs  # noqa: E402
from cidir.config import RunConfig  # noqa: E402
from cidir.fields import ConditionedTransform  # noqa: E402
from cidir.training import Trainer  # noqa: E402


def population_fit(pairs: list[PairData], config: RunConfig) -> tuple[FittedPair, float]:
    """One network trained on every pair in turn (module docstring), and the seconds it took
    (calibration pilots included). The FittedPair binds it to the first pair's grid."""
    first = Trainer(pairs[0].fixed, pairs[0].moving, config, pairs[0].fixed_mask, "cpu",
                    pairs[0].init_matrix)
    model = first.transform.model
    trainers = [first]
    for pair in pairs[1:]:
        shared = ConditionedTransform(model, pair.fixed.grid, pair.init_matrix)
        trainer = Trainer(pair.fixed, pair.moving, config, pair.fixed_mask, "cpu",
                          pair.init_matrix, transform=shared)
        trainer.optimizer = first.optimizer
        trainers.append(trainer)
    start = time.perf_counter()
    if config.objective.calibration == "pilot":
        for trainer in trainers:
            trainer.calibrate()
    model.train()
    for step in range(config.training.iterations * len(trainers)):
        trainer = trainers[step % len(trainers)]
        trainer.iteration = step // len(trainers)  # the learning-rate schedule's position
        trainer.step()
    model.eval()
    seconds = time.perf_counter() - start
    print(f"population of {len(pairs)} trained in {seconds:.0f} s", flush=True)
    return FittedPair(pairs[0], first.transform, config, seconds), seconds


def task_split(task: str, population: int, targets: int, shared: Path
               ) -> tuple[list[PairData], list[PairData]]:
    """(population pairs, target pairs) of a task; both empty when its data is absent."""
    count = population + targets
    if task == "brain2d":
        if not (shared / "mindboggle-2d").is_dir():
            return [], []
        pairs = template_pairs(shared, count)
    else:
        pairs, reason = task_pairs(task, count, shared)
        if reason:
            print(f"{task}: skipped ({reason})")
            return [], []
    return pairs[:population], pairs[population:count]


def run_task(task: str, population: int, targets: int, work: Path, shared: Path) -> list[dict]:
    members, held_out = task_split(task, population, targets, shared)
    if not members:
        return []
    config = RunConfig()
    prior, prior_seconds = population_fit(members, config)
    donor = fitted(members[0], work)  # the default fit, shared with the selection study
    rows = []
    for pair in held_out:
        cold = curve(pair, None, config)
        row = {"task": task, "pair": pair.name, "members": [p.name for p in members],
               "population_seconds": prior_seconds, "donor": donor.pair.name}
        for name, start in (("cold", None), ("population", prior), ("one pair", donor)):
            points = cold if start is None else curve(pair, start, config)
            row[name] = [{k: v for k, v in p.items() if k != "final"} for p in points]
            row[f"{name} reached"] = None if start is None else reached(points, cold[-1])
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def _final(points: list[dict], key: str) -> str:
    return format(points[-1][key], ".3f" if key == "tre_mm" else ".4f")


def _where(got: dict | None) -> str:
    if got is None:
        return "not within 800 it."
    return f"{got['iteration']} it., {got['seconds']:.1f} s"


def table(rows: list[dict]) -> str:
    lines = ["| task | target pair (population) | cold: final score, s | from the population: "
             "final, reaches cold's final at | from one pair: final, reaches at | population "
             "training (s) |", "|---|---|---|---|---|---|"]
    for r in rows:
        key = "tre_mm" if "tre_mm" in r["cold"][-1] else "dice_eval"
        unit = "TRE mm" if key == "tre_mm" else "Dice"
        lines.append(
            f"| {r['task']} ({unit}) | {r['pair']} ({', '.join(r['members'])}) | "
            f"{_final(r['cold'], key)}, {r['cold'][-1]['seconds']:.1f} | "
            f"{_final(r['population'], key)}, {_where(r['population reached'])} | "
            f"{_final(r['one pair'], key)}, {_where(r['one pair reached'])} | "
            f"{r['population_seconds']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = study_parser(__doc__ or "", 2, ["brain2d", "lung-mri", "phantom"],
                     "population_prior.json")
    p.add_argument("--population", type=int, default=3, help="pairs the shared network sees")
    p.add_argument("--targets", type=int, default=2, help="held-out pairs fitted per task")
    p.set_defaults(doc=str(ROOT / "docs" / "beyond.md"))
    args = p.parse_args(argv)
    rows = []
    for task in args.tasks:
        rows += run_task(task, args.population, args.targets, Path(args.work),
                         Path(args.shared_data))
    save_study(args, "benchmarks/population_prior.py", sys.argv[1:], rows,
               {"population-prior": table(rows)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
