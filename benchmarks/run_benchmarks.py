"""Run every method on every task on this machine and write the tables.

    python benchmarks/run_benchmarks.py [--quick] [--tiny] [--resume] [--tasks ...]
        [--methods ...] [--dirlab ROOT] [--shared-data ../shared/data]
        [--out benchmarks/results] [--doc docs/benchmarks.md]

Each (method, pair) runs in its own subprocess (``benchmarks/worker.py``) for isolation and
a per-run peak memory. Writes ``OUT/benchmarks-<mode>.json`` (every figure per pair and
aggregated, the machine, the settings, the code version and the exact command) after every
run, atomically, so an interrupted call keeps what it finished; then ``--doc`` (Markdown
tables of every mode found in OUT). ``--resume`` reuses the finished runs of the same mode
and settings and runs only the missing ones (the full protocol takes hours on 2 cores and
can be completed over several calls). ``--quick`` scales iterations, pairs and weight grids
down (recorded in the output); ``--tiny`` is a seconds-long smoke configuration for tests
(figures meaningless).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import methods as method_registry  # noqa: E402
from benchmarks.report import PROTOCOL_METHODS, aggregate, write_markdown  # noqa: E402
from benchmarks.tasks import TASKS, TaskSpec, build  # noqa: E402

MODES = ("full", "quick", "tiny")
BASELINES_FOR = {"phantom": ("identity",), "phantom-sliding": ("identity",),
                 "lung-mri": ("identity", "affine"),
                 "brain2d": ("identity",), "dirlab": ("identity",)}


def mode_settings(mode: str) -> tuple[dict, TaskSpec]:
    """Method settings and task sizes of a mode (full, quick, tiny)."""
    full_grid = [round(0.1 * i, 1) for i in range(11)]
    if mode == "full":
        return ({"mode": mode, "cidir": {}, "grid_alphas": full_grid, "idir_alpha": 0.5,
                 "conditioning_pairs": 3,
                 "elastix": {"iterations": 256, "resolutions": 4},
                 # antsRegistrationSyN.sh's SyN schedule (shrink 8x4x2x1); the antspyx
                 # default (40, 20, 0) never iterates at full resolution
                 "ants": {"reg_iterations": [100, 70, 50, 20]},
                 "sitk": {"shrink": [4, 2, 1], "iterations": 50}}, TaskSpec())
    if mode == "quick":
        return ({"mode": mode, "cidir": {"training.iterations": 100},
                 "grid_alphas": [0.0, 0.5, 1.0], "conditioning_pairs": 1,
                 "idir_alpha": 0.5, "elastix": {"iterations": 100, "resolutions": 3},
                 "ants": {"reg_iterations": [40, 20, 0]},
                 "sitk": {"shrink": [4, 2, 1], "iterations": 30}},
                TaskSpec(phantom_size="small", phantom_seeds=(0,), lung_pairs=2, brain_pairs=2,
                         dirlab_cases=(1,)))
    if mode == "tiny":
        return ({"mode": mode, "grid_alphas": [0.0, 1.0], "idir_alpha": 0.5,
                 "conditioning_pairs": 1,
                 "cidir": {"training.iterations": 3, "training.batch_size": 256,
                           "model.width": 32, "selection.num_alphas": 3,
                           "selection.sample_points": 2000, "selection.folding_points": 200},
                 "elastix": {"iterations": 5, "resolutions": 1},
                 "ants": {"reg_iterations": [2, 0, 0]},
                 "sitk": {"shrink": [2], "iterations": 2}},
                TaskSpec(phantom_size="small", phantom_seeds=(0,), lung_pairs=1, brain_pairs=1,
                         dirlab_cases=(1,)))
    raise ValueError(mode)


def machine_info() -> dict:
    import torch

    info = {"cpu_cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__,
            "device": "cpu", "threads_per_run": 2, "processor": platform.processor()}
    from importlib import metadata

    for name in ("itk-elastix", "itk", "antspyx", "SimpleITK", "numpy", "scipy"):
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = None
    return info


#: the settings each method's result depends on (a run is reused only if they are unchanged)
METHOD_SETTINGS = {"cidir": ("cidir",), "idir": ("cidir", "idir_alpha"),
                   "idir-grid": ("cidir", "grid_alphas"), "elastix": ("elastix", "grid_alphas"),
                   "idir-at-cidir": ("cidir", "cidir_choice"),
                   "ants": ("ants",), "sitk": ("sitk",)}
#: the methods trained with cidir's RunConfig: their key holds the resolved configuration,
#: so that a change of the library's defaults reruns them
INR_METHODS = ("cidir", "idir", "idir-grid", "idir-at-cidir")


def run_key(mode: str, task: str, pair: str, method: str, settings: dict) -> str:
    """Identity of one (method, pair) run: a result is reused (``--resume``) only under the
    same key, i.e. the same mode, task, pair, method and the settings that method uses (for
    cidir's networks: the resolved configuration, library defaults included)."""
    own = {k: settings.get(k) for k in METHOD_SETTINGS.get(method, ())}
    if method in INR_METHODS:
        from benchmarks.methods.inr import IDIR_TRAINING, config_for

        own["resolved_config"] = hashlib.sha256(
            config_for(settings).to_toml().encode("utf-8")).hexdigest()
        if method != "cidir":  # the SIREN baselines' own schedule
            own["idir_training"] = IDIR_TRAINING
    blob = json.dumps([mode, task, pair, method, own], sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def code_version() -> str | None:
    """The git commit of this checkout, with ``+dirty`` for uncommitted changes to the code
    (src/, benchmarks/ but not its results, pyproject.toml; the doc this runner writes does
    not count), or None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                "src", "benchmarks", "pyproject.toml",
                                ":(exclude)benchmarks/results"],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def run_one(pair_dir: Path, method: str, settings_path: Path, work: Path) -> dict:
    """One worker subprocess; its JSON (or the failure) with the process wall time."""
    out = work / f"{pair_dir.name}.{method}.json"
    cmd = [sys.executable, "-m", "benchmarks.worker", "--pair", str(pair_dir), "--method",
           method, "--settings", str(settings_path), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")])}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.is_file():
        result = json.loads(out.read_text(encoding="utf-8"))
    else:
        result = {"method": method, "ok": False,
                  "error": f"worker exited {proc.returncode}: {proc.stderr[-2000:]}"}
    result["subprocess_seconds"] = wall
    return result


def _pair_settings(method: str, settings: dict, pair_entry: dict,
                   pair_index: int) -> tuple[dict, str | None]:
    """The settings of one run, or the reason it is not run. ``idir-at-cidir`` runs on the
    first ``conditioning_pairs`` pairs of a task, after ``cidir``, with cidir's choice."""
    if method != "idir-at-cidir":
        return settings, None
    if pair_index >= settings.get("conditioning_pairs", 3):
        return settings, f"only on the first {settings.get('conditioning_pairs', 3)} pairs"
    cidir = pair_entry["runs"].get("cidir")
    if not cidir or not cidir.get("ok"):
        return settings, "needs a finished cidir run on the pair (list cidir before it)"
    choice = {"alpha": cidir["choice"]["alpha"],
              "calibration": {"scales": (cidir["choice"].get("calibration") or {}).get(
                  "scales")}}
    return {**settings, "cidir_choice": choice}, None


def results_path(out_dir: Path, mode: str) -> Path:
    """The results JSON of a mode: ``OUT/benchmarks-<mode>.json``."""
    return out_dir / f"benchmarks-{mode}.json"


def load_previous(path: Path) -> dict:
    """The earlier results file of this mode (``--resume``); {} if there is none."""
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"--resume: cannot read {path}: {exc}") from exc


def finished_runs(report: dict) -> dict[str, dict]:
    """The finished runs of a results file by run key."""
    return {run["run_key"]: run for task in report.get("tasks", {}).values()
            for pair in task.get("pairs", {}).values() for run in pair.get("runs", {}).values()
            if run.get("ok") and run.get("run_key")}


def write_outputs(report: dict, out_dir: Path, doc: Path) -> None:
    """Atomically write this mode's JSON, then the Markdown of every mode's JSON in OUT."""
    path = results_path(out_dir, report["mode"])
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1, default=float), encoding="utf-8")
    os.replace(tmp, path)
    reports = [report if m == report["mode"] else json.loads(p.read_text(encoding="utf-8"))
               for m in MODES if (p := results_path(out_dir, m)).is_file()]
    write_markdown(reports, doc, [os.path.relpath(results_path(out_dir, r["mode"]), ROOT)
                                  for r in reports])


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="reduced sizes (< 15 min on 2 cores)")
    p.add_argument("--tiny", action="store_true", help="smoke-test sizes (tests only)")
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    p.add_argument("--methods", nargs="+", default=list(PROTOCOL_METHODS),
                   choices=list(method_registry.METHODS))
    p.add_argument("--dirlab", default=None, help="DIR-LAB image folder (task dirlab)")
    p.add_argument("--shared-data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks.md"))
    p.add_argument("--no-baselines", action="store_true", help="skip identity/affine rows")
    p.add_argument("--resume", action="store_true",
                   help="keep the finished runs of OUT/benchmarks-<mode>.json that have the "
                        "same settings, run only the missing ones, and keep the tasks this "
                        "call does not name")
    return p.parse_args(argv)


@dataclass
class Call:
    """One call of the runner: what every task and pair of it shares."""

    args: argparse.Namespace
    mode: str
    settings: dict
    version: str | None
    previous: dict[str, dict]  # finished runs of earlier calls by run key (--resume)
    old_tasks: dict
    report: dict
    this_call: dict
    skipped_methods: dict
    work: Path
    settings_path: Path
    started: float

    def save(self) -> None:
        """Rewrite the results and the doc (an interrupted call keeps its work)."""
        self.report["total_seconds"] = time.perf_counter() - self.started
        write_outputs(self.report, Path(self.args.out), Path(self.args.doc))


def _new_report(args: argparse.Namespace, mode: str, settings: dict, spec: TaskSpec,
                command: str, old_report: dict, skipped_methods: dict) -> dict:
    """The results of this call: header, the calls so far (this one last), and the tasks in
    the protocol's order (this call's, and with --resume the others kept)."""
    started = dt.datetime.now(dt.timezone.utc).isoformat()
    version = code_version()
    report: dict = {"command": command, "mode": mode, "started_utc": started,
                    "machine": machine_info(), "code_version": version, "settings": settings,
                    "task_spec": spec.__dict__, "skipped_methods": skipped_methods,
                    "complete": False, "tasks": {}}
    this_call = {"command": command, "started_utc": started, "finished_utc": None,
                 "code_version": version, "runs_done": 0, "runs_reused": 0}
    report["calls"] = old_report.get("calls", []) + [this_call]
    old_tasks = old_report.get("tasks", {})
    for task in TASKS:  # a named task keeps its earlier runs until it starts (_run_task)
        if task in old_tasks:
            report["tasks"][task] = old_tasks[task]
        elif task in args.tasks:
            report["tasks"][task] = {"pairs": {}, "skipped": None}
    return report


def _keep_earlier_runs(call: Call, task: str, pairs: list, kept_methods: list[str]) -> None:
    """--resume: every pair starts with its finished runs of the methods this call does not
    name, so that the file written after each run never loses earlier work."""
    entry, old_entry = call.report["tasks"][task], call.old_tasks.get(task, {})
    for pair_index, pair in enumerate(pairs):
        old_pair = old_entry.get("pairs", {}).get(pair.name)
        if old_pair is None:
            continue
        runs = {m: call.previous[key] for m in kept_methods
                if (key := run_key(call.mode, task, pair.name, m, _pair_settings(
                    m, call.settings, old_pair, pair_index)[0])) in call.previous}
        if runs:
            entry["pairs"][pair.name] = {**old_pair, "runs": runs}


def _run_method(call: Call, task: str, pair, pair_index: int, pe: dict, method: str,
                pair_dir: Path | None) -> Path | None:
    """One (method, pair) run, or its reuse; returns the saved pair's folder."""
    method_settings, reason = _pair_settings(method, call.settings, pe, pair_index)
    if reason:
        print(f"[{task} {pair.name}] {method}: not run ({reason})", flush=True)
        return pair_dir
    key = run_key(call.mode, task, pair.name, method, method_settings)
    if key in call.previous:
        pe["runs"][method] = {**call.previous[key], "reused": True}
        call.this_call["runs_reused"] += 1
        print(f"[{task} {pair.name}] {method}: reused from "
              f"{call.previous[key].get('finished_utc', '?')}", flush=True)
        return pair_dir
    if pair_dir is None:
        pair_dir = pair.save(call.work / task / pair.name.replace("<-", "_from_"))
    path = call.settings_path
    if method_settings is not call.settings:
        path = call.work / f"settings-{task}-{pair_index}-{method}.json"
        path.write_text(json.dumps(method_settings), encoding="utf-8")
    r = run_one(pair_dir, method, path, call.work)
    r.update(run_key=key, code_version=call.version, finished_utc=dt.datetime.now(
        dt.timezone.utc).isoformat(timespec="seconds"))
    pe["runs"][method] = r
    call.this_call["runs_done"] += 1
    status = "ok" if r.get("ok") else f"FAILED {r.get('error')}"
    print(f"[{task} {pair.name}] {method}: {status} ({r['subprocess_seconds']:.1f} s)",
          flush=True)
    call.report["tasks"][task]["summary"] = aggregate(call.report["tasks"][task])
    call.save()
    return pair_dir


def _run_task(call: Call, task: str, spec: TaskSpec) -> None:
    """Every planned method on every pair of one task (or the reason it is skipped)."""
    from benchmarks.evaluate import before_registration

    args = call.args
    call.report["tasks"][task] = entry = {"pairs": {}, "skipped": None}
    t_task = time.perf_counter()
    try:
        pairs, reason = build(task, spec, Path(args.shared_data),
                              Path(args.dirlab) if args.dirlab else None)
    except Exception as exc:  # noqa: BLE001 - recorded
        pairs, reason = [], f"could not build the task: {type(exc).__name__}: {exc}"
    if reason:
        entry["skipped"] = reason
        print(f"[skip] task {task}: {reason}", flush=True)
        return
    # the protocol's method order (baselines first; cidir before idir-at-cidir)
    order = list(method_registry.METHODS)
    methods = ([] if args.no_baselines else list(BASELINES_FOR[task])) + sorted(
        (m for m in args.methods if m not in call.skipped_methods), key=order.index)
    kept_methods = [m for m in call.old_tasks.get(task, {}).get("planned_methods", [])
                    if m not in methods]
    entry["planned_pairs"] = [p.name for p in pairs]
    entry["planned_methods"] = sorted(methods + kept_methods, key=order.index)
    _keep_earlier_runs(call, task, pairs, kept_methods)
    for pair_index, pair in enumerate(pairs):
        pe = entry["pairs"].setdefault(pair.name, {"runs": {}})
        pe.update(info=pair.info, before=before_registration(pair))
        pair_dir = None
        for method in methods:
            pair_dir = _run_method(call, task, pair, pair_index, pe, method, pair_dir)
        pe["runs"] = {m: pe["runs"][m] for m in entry["planned_methods"] if m in pe["runs"]}
    entry["pairs"] = {name: entry["pairs"][name] for name in entry["planned_pairs"]
                      if name in entry["pairs"]}
    entry["seconds"] = time.perf_counter() - t_task
    entry["summary"] = aggregate(entry)


def main(argv=None) -> int:
    args = parse_args(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    settings, spec = mode_settings(mode)
    command = "python " + " ".join(shlex.quote(a) for a in
                                   [os.path.relpath(sys.argv[0], ROOT)] + (argv or sys.argv[1:]))
    t_all = time.perf_counter()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    old_report = load_previous(results_path(out_dir, mode)) if args.resume else {}
    skipped_methods = {m: r for m in args.methods if (r := method_registry.available(m))}
    for m, r in skipped_methods.items():
        print(f"[skip] method {m}: {r}", flush=True)
    report = _new_report(args, mode, settings, spec, command, old_report, skipped_methods)
    with tempfile.TemporaryDirectory(prefix="cidir-bench-pairs-") as tmp:
        settings_path = Path(tmp) / "settings.json"
        settings_path.write_text(json.dumps(settings), encoding="utf-8")
        call = Call(args, mode, settings, report["code_version"], finished_runs(old_report),
                    old_report.get("tasks", {}), report, report["calls"][-1],
                    skipped_methods, Path(tmp), settings_path, t_all)
        for task in args.tasks:
            _run_task(call, task, spec)
    report["reused_runs"] = reused = call.this_call["runs_reused"]
    report["finished_utc"] = dt.datetime.now(dt.timezone.utc).isoformat()
    call.this_call["finished_utc"] = report["finished_utc"]
    report["complete"] = True
    call.save()
    print(f"wrote {results_path(out_dir, mode)} and {args.doc} "
          f"({report['total_seconds'] / 60:.1f} min, {reused} runs reused)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
