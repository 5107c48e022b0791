"""Core speed figures at the default settings: ms per training iteration (similarity only,
+ Jacobian, + bending energy) and the α-search time on a lung-sized mask.

Training steps are timed with the default config (3×256 network, default batch and
regularizer fraction) on the breathing phantom (``small``); the α search runs the default
21-value grid with lung labels on the ``dirlab``-size phantom (256×256×100; the lung voxel
count is written out) with a freshly initialized model (the cost does not depend on training).

Run:  .venv/bin/python benchmarks/core_speed.py [--device cpu] [--steps 20]
Writes benchmarks/results/core_speed.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from cidir.config import RegularizerTerm, RunConfig
from cidir.data.phantom import make_phantom
from cidir.selection import search_alpha
from cidir.training import Trainer, build_transform


def time_steps(trainer: Trainer, steps: int) -> float:
    trainer.step()  # warm-up
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.step()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" /
                                             "core_speed.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    base = RunConfig()
    small = make_phantom("small", 0)
    out = {"machine": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                       "device": str(device), "platform": platform.platform()},
           "batch_size": base.training.batch_size,
           "regularizer_fraction": base.objective.regularizer_fraction,
           "width": base.model.width, "hidden_layers": base.model.hidden_layers,
           "ms_per_iteration": {}}
    variants = {"similarity_only": (),
                "jacobian": (RegularizerTerm("jacobian", 0.01, 10.0),),
                "bending": (RegularizerTerm("bending", 1.0, 10000.0),)}
    for name, terms in variants.items():
        config = base.with_overrides({"objective.regularizers": [
            {"name": t.name, "lambda_min": t.lambda_min, "lambda_max": t.lambda_max}
            for t in terms]})
        trainer = Trainer(small.inhale, small.exhale, config, small.inhale_lung_mask, device)
        out["ms_per_iteration"][name] = time_steps(trainer, args.steps)
        if device.type == "cuda":
            torch.cuda.synchronize()

    big = make_phantom("dirlab", 0)
    lungs = np.isin(big.inhale_labels.array, (1, 2)).sum()
    transform = build_transform(base, big.inhale, device)
    result = search_alpha(transform, big.inhale_labels, big.exhale_labels, base.selection,
                          labels=[1, 2])
    out["alpha_search"] = {"grid": big.grid.to_dict(), "lung_voxels": int(lungs),
                           "alphas": len(result.rows), "sample_points": result.sample_points,
                           "region_voxels": result.region_voxels, "seconds": result.seconds,
                           "dice_se": result.chosen.dice_se}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
