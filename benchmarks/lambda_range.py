"""Landmark TRE against α for a regularizer weight range, on the breathing phantom.

Trains the default model (bending energy with the given λ range, other settings from
``RunConfig``) on the ``small`` phantom (inhale ← exhale, inside the inhale lung mask) and
prints the continuous TRE at α = 0, 0.25, 0.5, 0.75, 1 — how the default λ range was chosen
(docs/method-choices.md).

Run:  .venv/bin/python benchmarks/lambda_range.py --lambda-min 1 --lambda-max 10000
Appends a row to benchmarks/results/lambda_range.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from cidir.config import RunConfig
from cidir.data.phantom import make_phantom
from cidir.training import fit

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lambda-min", type=float, required=True)
    parser.add_argument("--lambda-max", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" /
                                             "lambda_range.json"))
    args = parser.parse_args()
    phantom = make_phantom("small", args.seed)
    config = RunConfig().with_overrides({"objective.regularizers": [
        {"name": "bending", "lambda_min": args.lambda_min, "lambda_max": args.lambda_max}]})
    start = time.perf_counter()
    result = fit(phantom.inhale, phantom.exhale, config, phantom.inhale_lung_mask)
    row = {"lambda_min": args.lambda_min, "lambda_max": args.lambda_max, "seed": args.seed,
           "fit_seconds": round(time.perf_counter() - start, 1),
           "tre_before_mm": float(np.linalg.norm(phantom.inhale_points - phantom.exhale_points,
                                                 axis=1).mean()),
           "tre_mm": {str(a): float(np.linalg.norm(
               result.transform.map_points(phantom.inhale_points, a) - phantom.exhale_points,
               axis=1).mean()) for a in ALPHAS}}
    out = Path(args.out)
    rows = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else []
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows + [row], indent=2) + "\n", encoding="utf-8")
    print(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
