"""Run one method on one pair in its own process and write its figures as JSON.

    python -m benchmarks.worker --pair PAIR_DIR --method NAME --settings S.json --out R.json

Isolation: one process per (method, pair), so that peak memory is the method's own:
``peak_rss_mb`` is this process's peak RSS (VmHWM) right after the method (before evaluation),
``baseline_rss_mb`` the same after imports and data loading; ``delta_rss_mb`` their
difference. Thread counts are pinned (torch, ITK, ANTs, elastix) to ``--threads``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pair", required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--settings", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    for var in ("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    from cidir.runtime import peak_rss_mb, prefer_passive_waiting

    prefer_passive_waiting()  # as the cidir command does, before torch is imported
    t_start = time.perf_counter()
    out: dict = {"method": args.method, "ok": False}
    try:
        import torch

        torch.set_num_threads(args.threads)
        import SimpleITK as sitk

        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
        from benchmarks import methods
        from benchmarks.evaluate import evaluate_field
        from benchmarks.pairs import load_pair

        if args.method in methods.REQUIRES:  # import the peer before the baseline is taken
            __import__(methods.REQUIRES[args.method][0])
        with open(args.settings, encoding="utf-8") as fh:
            settings = json.load(fh)
        pair = load_pair(args.pair)
        out["baseline_rss_mb"] = peak_rss_mb()
        t0 = time.perf_counter()
        result = methods.get(args.method)(pair, settings)
        out["method_wall_seconds"] = time.perf_counter() - t0
        out["peak_rss_mb"] = peak_rss_mb()
        out["delta_rss_mb"] = out["peak_rss_mb"] - out["baseline_rss_mb"]
        out["register_seconds"] = result.register_seconds
        out["select_seconds"] = result.select_seconds
        out["choice"] = result.choice
        t1 = time.perf_counter()
        out["metrics"] = evaluate_field(pair, result.field)
        out["evaluate_seconds"] = time.perf_counter() - t1
        out["ok"] = True
    except Exception as exc:  # noqa: BLE001 - recorded, the runner goes on
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["traceback"] = traceback.format_exc(limit=8)
    out["process_seconds"] = time.perf_counter() - t_start
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=1, default=float)
    os.replace(tmp, args.out)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
