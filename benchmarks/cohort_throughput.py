"""Pairs per hour of ``cidir cohort`` on the shipped lung MRI manifest: the local backend
with 1 and 2 workers and a local Ray instance, one after the other on this machine.

    python benchmarks/cohort_throughput.py [--manifest examples/lung-mri-cohort.csv]
        [--setups local-1 local-2 ray-2] [--set training.iterations=100]
    python benchmarks/cohort_throughput.py --phantom-dirlab 4 --setups local-2 \
        --out benchmarks/results/cohort_phantom_dirlab.json

``--phantom-dirlab N`` replaces the manifest by N phantom 4D-CT pairs of DIR-LAB size
(``cidir phantom --size dirlab --seed 0..N-1``: 256×256×100 voxels, inhale ← exhale, lung
mask, labels 1-5 for α, landmarks for TRE), generated first and not timed: the per-pair
cost of a 4D-CT study.

Each setup runs ``cidir cohort`` in a subprocess into a fresh folder (nothing reused) and
records its wall time, the pairs finished and failed, the mean of the pairs' own seconds
(whole pair and fit), their peak memory, and the figures of the summary (Dice and TRE after,
α); results go to ``benchmarks/results/cohort_throughput.json`` (``--out``) with the machine
and the command. Without ``--phantom-dirlab``, skipped with a message when the manifest's
data (``../shared/data``) is absent.
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
                  mean_fit_seconds=round(sum(p["fit_seconds"] for p in ok) /
                                         max(len(ok), 1), 1),
                  dice_after=[p.get("dice_after") for p in ok],
                  tre_after_mm=[p.get("tre_after_mm") for p in ok],
                  alpha=[p.get("alpha") for p in ok])
    return result


def cpu_model() -> str:
    """The CPU's model name (Linux), else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def phantom_manifest(count: int, folder: Path) -> Path:
    """``count`` DIR-LAB-size phantom pairs (seeds 0..count-1) and their manifest."""
    from cidir.data.phantom import make_phantom, write_phantom

    rows = ["id,fixed,moving,fixed_mask,fixed_labels,moving_labels,fixed_points,moving_points"]
    for seed in range(count):
        f = write_phantom(make_phantom("dirlab", seed, "smooth"), folder / f"seed{seed}")
        rows.append(",".join([f"phantom-seed{seed}", *(str(f[k]) for k in (
            "inhale", "exhale", "inhale_lungmask", "inhale_labels", "exhale_labels",
            "inhale_points", "exhale_points"))]))
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", default=str(ROOT / "examples" / "lung-mri-cohort.csv"))
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--phantom-dirlab", type=int, metavar="N",
                        help="N DIR-LAB-size phantom pairs instead of the manifest")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                             "cohort_throughput.json"))
    args = parser.parse_args(argv)
    data = ROOT.parent / "shared" / "data" / "lung-mri-lobes"
    if args.phantom_dirlab is None and not data.is_dir():
        print(f"skipped: {data} is absent (the manifest's images)")
        return 0
    extra = [a for item in args.set for a in ("--set", item)]
    results = []
    with tempfile.TemporaryDirectory(prefix="cidir-cohort-") as tmp:
        manifest = (phantom_manifest(args.phantom_dirlab, Path(tmp) / "phantoms")
                    if args.phantom_dirlab else Path(args.manifest).resolve())
        for name in args.setups:
            results.append(run_setup(name, manifest, extra, Path(tmp)))
            print(json.dumps(results[-1]), flush=True)
            shutil.rmtree(Path(tmp) / name, ignore_errors=True)
    report = {"command": "python " + " ".join([os.path.relpath(sys.argv[0], ROOT),
                                               *(argv or sys.argv[1:])]),
              "machine": {"cpu_cores": os.cpu_count(), "platform": platform.platform(),
                          "cpu_model": cpu_model()},
              "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "results": results}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
