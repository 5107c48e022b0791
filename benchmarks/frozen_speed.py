"""The network at one α, modulated against folded: the cost of evaluating φ and det ∇φ
(docs/selection.md, "Speed of the search").

    python benchmarks/frozen_speed.py [--points 30000] [--jet-points 2000] [--repeats 20]

The default 3D model (:class:`cidir.config.ModelConfig`) with a random harmonizer head (so
that a, b, c, d differ from 1, 1, 0, 0; the cost does not depend on the weights) is evaluated
at α = 0.3 on random world points: φ alone (``map_world``) and with the Jacobian
(``map_jet`` order 1), by the conditioned network and by its folded twin
(``ConditionedTransform.frozen``), the two timed in turn in each of ``--repeats`` repeats
after a warm-up: median seconds and the median of the per-repeat speed-ups; and the largest
difference between the two results. Writes benchmarks/results/frozen_speed.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.selection_fits import study_record  # noqa: E402
from cidir.config import RunConfig  # noqa: E402
from cidir.fields import ConditionedTransform  # noqa: E402
from cidir.geometry import Grid  # noqa: E402
from cidir.models import DeformationModel  # noqa: E402


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _paired(slow, fast, repeats: int) -> dict[str, float]:
    """Median seconds of each and the median of the per-repeat ratios, the two timed in
    turn in every repeat (machine noise then hits both alike)."""
    slow(), fast()
    pairs = [(_seconds(slow), _seconds(fast)) for _ in range(repeats)]
    return {"modulated_s": statistics.median(a for a, _ in pairs),
            "folded_s": statistics.median(b for _, b in pairs),
            "speedup": statistics.median(a / b for a, b in pairs)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--points", type=int, default=30000)
    p.add_argument("--jet-points", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "frozen_speed.json"))
    args = p.parse_args(argv)
    torch.manual_seed(0)
    model = DeformationModel(RunConfig().model, 3)
    assert model.harmonizer is not None
    with torch.no_grad():
        model.harmonizer.head.weight.normal_(0.0, 0.3)
        model.harmonizer.head.bias.normal_(0.0, 0.3)
    transform = ConditionedTransform(model, Grid.from_shape((100, 256, 256), (1.25, 1.25, 2.5)))
    at = transform.alpha_tensor(0.3)
    folded = transform.frozen(at)
    world = (torch.rand(args.points, 3) - 0.5) * 300.0
    head = world[: args.jet_points]
    with torch.no_grad():
        out = {"map_world": _paired(lambda: transform.map_world(world, at),
                                    lambda: folded.map_world(world, at), args.repeats),
               "jacobian": _paired(lambda: transform.map_jet(head, at, order=1),
                                   lambda: folded.map_jet(head, at, order=1), args.repeats),
               "max_difference_mm": float((transform.map_world(world, at)
                                           - folded.map_world(world, at)).abs().max())}
    report = {**study_record("benchmarks/frozen_speed.py", sys.argv[1:]), **vars(args), **out}
    Path(args.out).write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
