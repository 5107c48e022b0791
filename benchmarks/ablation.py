"""The engine's levers, one at a time, on the shared pairs: the ablation table of
docs/method-choices.md.

    python benchmarks/ablation.py [--tasks brain2d lung-mri phantom phantom-sliding]
        [--variants default paper ...] [--pairs 3] [--shared-data ../shared/data]

Each variant is the library's default configuration with a few overrides (``VARIANTS``);
each (variant, pair) runs cidir in its own worker subprocess (fit, α search, dense field at
the chosen α; the same code and metrics as ``make benchmarks``) and is judged on the task's
evaluation labels / landmarks. Results go to benchmarks/results/ablation.json after every
run (a rerun reuses the runs whose overrides are unchanged), then the table is written
between the ``ablation`` markers of docs/method-choices.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.ablation_report import write_table  # noqa: E402
from benchmarks.run_benchmarks import code_version, machine_info, run_one  # noqa: E402
from benchmarks.tasks import TaskSpec, build  # noqa: E402

#: the calibrated range first tried as the default, one decade above today's
RANGE_1E3 = [{"name": "bending", "lambda_min": 1e-3, "lambda_max": 1e2},
             {"name": "antifolding", "lambda_min": 10.0, "lambda_max": 10.0,
              "mapping": "constant"}]
#: the 10 mm mask margin, a default during the first round of the ablation
M10 = {"training.mask_margin_mm": 10.0}
#: the learning-rate round: a constant rate, or a cosine decay to a tenth after a 10-step warm-up
CONSTANT = {"training.lr_schedule": "constant", "training.warmup_iterations": 0}
COSINE = {"training.lr_schedule": "cosine", "training.warmup_iterations": 10}


def _lr(rate: float, iterations: int, schedule: dict, batch: int | None = None) -> dict:
    """Overrides of the training schedule (and of the batch size when given)."""
    more = {} if batch is None else {"training.batch_size": batch}
    return {"training.learning_rate": rate, "training.iterations": iterations, **schedule,
            **more}


#: the training schedule of the defaults before the learning-rate round (Adam lr 10⁻⁴ at a
#: constant rate, 800 iterations): every variant measured on those defaults pins it, so that
#: its resolved configuration (and a rerun) stays the one measured
OLD = _lr(1e-4, 800, CONSTANT)


#: name -> (what it changes, overrides of the default RunConfig); a run is reused only while
#: its resolved configuration is unchanged
VARIANTS: dict[str, tuple[str, dict]] = {
    "default": ("the library's defaults: width 128, bending on λ_b·[10⁻⁴, 10] (pilot), "
                "anti-folding 10, no mask margin, Adam lr 10⁻³ with cosine decay, "
                "400 iterations", {}),
    "paper": ("the paper's configuration (`--preset paper`: width 256, fixed λ range "
              "[1, 10⁴], no anti-folding term, no calibration, lr 10⁻⁴ constant, 800 "
              "iterations)", {"preset": "paper"}),
    # the learning-rate round (the pilot keeps its 100 steps, at the run's rate)
    "lr 1e-4 · 800 it (before)": ("the defaults before this round: lr 10⁻⁴ constant, 800 "
                                  "iterations", OLD),
    "lr 4e-4 · 400 it": ("Adam lr 4·10⁻⁴, 400 iterations, constant rate",
                         _lr(4e-4, 400, CONSTANT)),
    "lr 4e-4 · 200 it · cos": ("lr 4·10⁻⁴, 200 iterations, cosine decay",
                               _lr(4e-4, 200, COSINE)),
    "lr 1e-3 · 800 it · cos": ("lr 10⁻³, 800 iterations, cosine decay",
                               _lr(1e-3, 800, COSINE)),
    "lr 1e-3 · 800 it · cos · batch 2000": ("lr 10⁻³, 800 iterations of 2000 points, cosine",
                                            _lr(1e-3, 800, COSINE, batch=2000)),
    "lr 1e-3 · 200 it · cos · batch 8000": ("lr 10⁻³, 200 iterations of 8000 points, cosine",
                                            _lr(1e-3, 200, COSINE, batch=8000)),
    "lr 2e-3 · 400 it · cos": ("lr 2·10⁻³, 400 iterations, cosine decay",
                               _lr(2e-3, 400, COSINE)),
    "lr 1e-3 · 200 it · cos": ("lr 10⁻³, 200 iterations, cosine decay",
                               _lr(1e-3, 200, COSINE)),
    "lr 1e-3 · 100 it · cos": ("lr 10⁻³, 100 iterations, cosine decay",
                               _lr(1e-3, 100, COSINE)),
    # on the defaults before the learning-rate round (lr 10⁻⁴ constant, 800 iterations)
    "margin 10 mm": ("before: training points inside the fixed mask grown by 10 mm",
                     {**OLD, **M10}),
    "400 iterations": ("before: half the iterations (lr 10⁻⁴)",
                       {**OLD, "training.iterations": 400}),
    "width 64": ("before: MLP width 64", {**OLD, "model.width": 64}),
    "4 α per iteration": ("before: the batch split between 4 stratified α draws per iteration",
                          {**OLD, "training.alphas_per_iteration": 4,
                           "training.alpha_sampling": "stratified"}),
    # the first round, around the candidate default of then: λ_b·[10⁻³, 10²], margin 10 mm
    "range ×[1e-3, 100]": ("before: calibrated range one decade higher, λ_b·[10⁻³, 10²]; "
                           "margin 10 mm", {**OLD, "objective.regularizers": RANGE_1E3, **M10}),
    "  … no anti-folding": ("λ_b·[10⁻³, 10²] without the anti-folding term; margin 10 mm", {
        **OLD, "objective.regularizers": RANGE_1E3[:1], **M10}),
    "  … no margin": ("λ_b·[10⁻³, 10²], margin 0", {**OLD,
                                                     "objective.regularizers": RANGE_1E3}),
    "  … cosine lr": ("λ_b·[10⁻³, 10²], lr 10⁻⁴ with cosine decay after a 50-iteration "
                      "warm-up; margin 10 mm", {**OLD, "objective.regularizers": RANGE_1E3,
                                                **M10, "training.lr_schedule": "cosine",
                                                "training.warmup_iterations": 50}),
    "  … 400 iterations": ("λ_b·[10⁻³, 10²], half the iterations; margin 10 mm",
                           {**OLD, "objective.regularizers": RANGE_1E3, **M10,
                            "training.iterations": 400}),
    "fixed range": ("before: no pilot, bending λ on the fixed range [10⁻², 10²]; margin 10 mm",
                    {**OLD, "objective.calibration": "none", **M10,
                     "objective.regularizers": [
                         {"name": "bending", "lambda_min": 1e-2, "lambda_max": 1e2},
                         {"name": "antifolding", "lambda_min": 10.0, "lambda_max": 10.0,
                          "mapping": "constant"}]}),
}
#: the names runs were first recorded under (benchmarks/results/ablation.json) while the
#: defaults moved: bending range λ_b·[10⁻³, 10²] → [10⁻⁴, 10], then margin 10 mm → 0, then
#: lr 10⁻⁴ constant over 800 iterations → lr 10⁻³ cosine over 400
RENAMED = {"default": "range ×[1e-3, 100]", "range ×[1e-4, 10]": "default",
           "no anti-folding": "  … no anti-folding", "no margin": "  … no margin",
           "cosine lr": "  … cosine lr", "400 iterations": "  … 400 iterations"}
RENAMED_2 = {"default": "margin 10 mm", "no margin": "default"}
RENAMED_3 = {"default": "lr 1e-4 · 800 it (before)", "lr 1e-3 · 400 it · cos": "default"}
TASK_ORDER = ("brain2d", "lung-mri", "phantom", "phantom-sliding")


def settings_for(overrides: dict) -> dict:
    return {"mode": "ablation", "cidir": overrides}


def config_digest(overrides: dict) -> str:
    """SHA-256 of the resolved configuration of a variant (what a reused run must match)."""
    from benchmarks.methods.inr import config_for

    text = json.dumps(config_for(settings_for(overrides)).to_dict(), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="+", default=list(TASK_ORDER), choices=TASK_ORDER)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--pairs", type=int, default=3, help="pairs (phantom: seeds) per task")
    p.add_argument("--phantom-size", default="dirlab")
    p.add_argument("--shared-data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ablation.json"))
    p.add_argument("--doc", default=str(ROOT / "docs" / "method-choices.md"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    report = open_report(out, "benchmarks/ablation.py", argv)
    spec = TaskSpec(phantom_size=args.phantom_size,
                    phantom_seeds=tuple(range(args.pairs)), lung_pairs=args.pairs,
                    brain_pairs=args.pairs)
    with tempfile.TemporaryDirectory(prefix="cidir-ablation-") as tmp:
        work = Path(tmp)
        for task in args.tasks:
            pairs, reason = build(task, spec, Path(args.shared_data), None)
            if reason:
                print(f"[skip] {task}: {reason}", flush=True)
                continue
            for pair in pairs:
                pair_dir = pair.save(work / task / pair.name.replace("<-", "_from_"))
                for variant in args.variants:
                    run_variant(report, out, work, pair_dir, task=task, pair=pair.name,
                                variant=variant, overrides=VARIANTS[variant][1])
    write_table(report, VARIANTS, Path(args.doc))
    print(f"wrote {out} and {args.doc}")
    return 0


def run_variant(report: dict, out: Path, work: Path, pair_dir: Path, *, task: str, pair: str,
                variant: str, overrides: dict, **extra) -> None:
    """cidir with ``overrides`` on the pair saved in ``pair_dir``, in a worker subprocess,
    recorded in ``report["runs"]["task|pair|variant"]`` and saved to ``out`` at once;
    skipped when a successful run of the same resolved configuration is recorded."""
    key = f"{task}|{pair}|{variant}"
    old = report["runs"].get(key)
    digest = config_digest(overrides)
    if old and old.get("ok") and old.get("config_sha") == digest:
        return
    settings_path = work / "settings.json"
    settings_path.write_text(json.dumps(settings_for(overrides)), encoding="utf-8")
    run = run_one(pair_dir, "cidir", settings_path, work)
    run.update(task=task, pair=pair, variant=variant, overrides=overrides, config_sha=digest,
               **extra)
    report["runs"][key] = run
    _save(report, out)
    m = run.get("metrics", {})
    tre = f" tre {m['tre_mm']}" if m.get("tre_mm") is not None else ""
    print(f"[{task} {pair}] {variant}: dice {m.get('dice_eval')}{tre} "
          f"({run['subprocess_seconds']:.0f} s)"
          + ("" if run.get("ok") else f" FAILED {run.get('error')}"), flush=True)


def open_report(out: Path, script: str, argv: list[str] | None) -> dict:
    """The results file ``out`` of a variant study (``{"runs": {}}`` when new), with this
    call's command added to its ``commands``, the machine and the code version."""
    report = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {}
    report.setdefault("runs", {})
    command = f"python {script} " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    report.update(machine=machine_info(), code_version=code_version())
    report.pop("command", None)
    report["commands"] = [c for c in report.get("commands", []) if c != command] + [command]
    return report


def _save(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1, default=float), encoding="utf-8")
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
