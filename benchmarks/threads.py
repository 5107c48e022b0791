"""Two cidir fits side by side on one machine: the oversubscription trap and its remedy.

For each thread setting, the same short fit (the small phantom, the library's default
configuration, ``--iterations`` iterations, training time only) runs once alone and then
twice at the same time; the slowdown is (time side by side) / (time alone). Settings:
torch's default OpenMP waiting (idle threads spin), ``OMP_WAIT_POLICY=PASSIVE`` (cidir's choice, see
:mod:`cidir.runtime`), a short spin (``GOMP_SPINCOUNT``) and one thread per process.
Writes benchmarks/results/threads.json. Run alone on an otherwise idle machine:

    python benchmarks/threads.py [--iterations 40]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
#: name -> (environment, threads or None for all cores)
SETTINGS: dict[str, tuple[dict[str, str], int | None]] = {
    "torch default": ({}, None),
    "passive (cidir)": ({"OMP_WAIT_POLICY": "PASSIVE"}, None),
    "spin 10k": ({"GOMP_SPINCOUNT": "10000"}, None),
    "1 thread": ({"OMP_WAIT_POLICY": "PASSIVE"}, 1),
}


def worker(iterations: int, threads: int | None) -> None:
    """One fit; prints its training seconds."""
    import time

    import torch

    from cidir.config import RunConfig
    from cidir.data.phantom import make_phantom
    from cidir.training import Trainer

    if threads:
        torch.set_num_threads(threads)
    p = make_phantom("small", 0)
    # the default network and batch; no calibration pilot, so that every run times the same
    # ``iterations`` training steps
    config = RunConfig().with_overrides({"training.iterations": iterations,
                                         "objective.calibration": "none"})
    trainer = Trainer(p.inhale, p.exhale, config, p.inhale_lung_mask)
    t0 = time.perf_counter()
    trainer.run()
    print(json.dumps({"seconds": time.perf_counter() - t0}))


def launch(env_extra: dict[str, str], threads: int | None, iterations: int, copies: int
           ) -> list[float]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")}
    env.update(env_extra)
    cmd = [sys.executable, str(Path(__file__)), "--worker", "--iterations", str(iterations)]
    if threads:
        cmd += ["--threads", str(threads)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True,
                              cwd=ROOT.parent) for _ in range(copies)]
    times = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"worker failed ({proc.returncode})")
        times.append(json.loads(out.strip().splitlines()[-1])["seconds"])
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(ROOT / "results" / "threads.json"))
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.iterations, args.threads)
        return 0
    rows = []
    fastest_alone = None
    for name, (env, threads) in SETTINGS.items():
        alone = launch(env, threads, args.iterations, 1)[0]
        pair = launch(env, threads, args.iterations, 2)
        fastest_alone = alone if fastest_alone is None else min(fastest_alone, alone)
        rows.append({"setting": name, "env": env, "threads": threads or os.cpu_count(),
                     "alone_s": round(alone, 2), "side_by_side_s": [round(t, 2) for t in pair],
                     "slowdown": round(max(pair) / alone, 2)})
        print(rows[-1], flush=True)
    for row in rows:
        row["slowdown_vs_fastest_alone"] = round(max(row["side_by_side_s"]) / fastest_alone, 2)
    Path(args.out).write_text(json.dumps({"iterations": args.iterations, "cpu": _cpu(),
                                          "rows": rows}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{os.cpu_count()} cores"


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT.parent))
    sys.exit(main())
