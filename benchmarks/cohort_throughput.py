"""Pairs per hour of ``cidir cohort`` on the shipped lung MRI manifest: the local backend
with 1 and 2 workers and a local Ray instance, one after the other on this machine.

    python benchmarks/cohort_throughput.py [--manifest examples/lung-mri-cohort.csv]
        [--setups local-1 local-2 ray-2] [--set training.iterations=100]

Each setup runs ``cidir cohort`` in a subprocess into a fresh folder (nothing reused) and
records its wall time, the pairs finished and failed, the mean of the pairs' own seconds
and peak memory, and the lobe-free figures of the summary (lung Dice after); results go to
``benchmarks/results/cohort_throughput.json`` with the machine and the command. Skipped, with
a message, when the manifest's data (``../shared/data``) is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUPS = {"local-1": ["--workers", "1"], "local-2": ["--workers", "2"],
          "ray-2": ["--workers", "2", "--backend", "ray"]}


def run_setup(name: str, manifest: Path, extra: list[str], work: Path) -> dict:
    out = work / name
    cmd = [sys.executable, "-m", "cidir.cli.main", "cohort", str(manifest), "--out", str(out),
           "--quiet", *SETUPS[name], *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    result = {"setup": name, "command": " ".join(cmd[2:]), "exit_status": proc.returncode,
              "wall_seconds": round(wall, 1)}
    summary_path = out / "cohort.json"
    if not summary_path.is_file():
        result["error"] = proc.stderr[-2000:]
        return result
    pairs = json.loads(summary_path.read_text())["pairs"]
    ok = [p for p in pairs if p["status"] == "ok"]
    result.update(pairs_ok=len(ok), pairs_failed=len(pairs) - len(ok),
                  pairs_per_hour=round(3600.0 * len(ok) / wall, 2),
                  mean_pair_seconds=round(sum(p["seconds"] for p in ok) / max(len(ok), 1), 1),
                  max_peak_rss_mb=max((p["peak_rss_mb"] or 0 for p in ok), default=None),
                  dice_after=[p.get("dice_after") for p in ok],
                  alpha=[p.get("alpha") for p in ok])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", default=str(ROOT / "examples" / "lung-mri-cohort.csv"))
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                             "cohort_throughput.json"))
    args = parser.parse_args(argv)
    manifest = Path(args.manifest).resolve()
    data = ROOT.parent / "shared" / "data" / "lung-mri-lobes"
    if not data.is_dir():
        print(f"skipped: {data} is absent (the manifest's images)")
        return 0
    extra = [a for item in args.set for a in ("--set", item)]
    results = []
    with tempfile.TemporaryDirectory(prefix="cidir-cohort-") as tmp:
        for name in args.setups:
            results.append(run_setup(name, manifest, extra, Path(tmp)))
            print(json.dumps(results[-1]), flush=True)
            shutil.rmtree(Path(tmp) / name, ignore_errors=True)
    report = {"command": "python " + " ".join([os.path.relpath(sys.argv[0], ROOT),
                                               *(argv or sys.argv[1:])]),
              "machine": {"cpu_cores": os.cpu_count(), "platform": platform.platform(),
                          "processor": platform.processor()},
              "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "results": results}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
