"""Speed of one regularized training step: forward derivative propagation vs nested autograd.

The reference (IDIR's approach) obtains ∇u and ∂²u/∂x² by nested ``torch.autograd.grad``
calls; cidir propagates input derivatives through the layers (``cidir.models.jet_mlp``).
Both are timed on the same network (the cidir model, 3×256 by default) and the same points,
for a full training step (forward, loss, backward), and their values are checked equal.

Run:  .venv/bin/python benchmarks/regularizer_speed.py [--points 10000] [--repeats 5]
Writes benchmarks/results/regularizer_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from cidir.config import ModelConfig
from cidir.losses import regularizers as R
from cidir.models import DeformationModel, pair_indices


def nested_autograd_derivatives(model: DeformationModel, x: torch.Tensor, alpha: torch.Tensor,
                                order: int):
    """Reference: u, ∇u (B, D, D) and second derivatives (B, D, P) by nested autograd."""
    x = x.detach().requires_grad_(True)
    params = model.activation_params(alpha)
    u = model.mlp(x, params, order=0).value
    d = x.shape[1]
    rows = [torch.autograd.grad(u[:, i].sum(), x, create_graph=True)[0] for i in range(d)]
    jac = torch.stack(rows, dim=1)  # (B, D_out, D)
    if order < 2:
        return u, jac, None
    first, second = pair_indices(d)
    hess = []
    for i in range(d):
        cols = {}
        for j in range(d):
            cols[j] = torch.autograd.grad(jac[:, i, j].sum(), x, create_graph=True)[0]
        pairs = zip(first, second, strict=True)
        hess.append(torch.stack([cols[j][:, k] for j, k in pairs], dim=-1))
    return u, jac, torch.stack(hess, dim=1)


def jet_derivatives(model: DeformationModel, x: torch.Tensor, alpha: torch.Tensor, order: int):
    jet = model(x, alpha, order)
    return jet.value, jet.jacobian, jet.hessian


def step_loss(u, jac, hess, term: str) -> torch.Tensor:
    loss = (u**2).mean()
    if term == "bending":
        loss = loss + R.bending_energy(hess).mean()
    elif term == "jacobian":
        loss = loss + R.jacobian_penalty(jac).mean()
    return loss


def _one_step(fn, model, x, alpha, order, term) -> tuple[float, float]:
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    u, jac, hess = fn(model, x, alpha, order)
    loss = step_loss(u, jac, hess, term)
    loss.backward()
    return time.perf_counter() - start, float(loss.detach())


def time_pair(model, x, alpha, order, term, repeats) -> tuple[float, float, float, float]:
    """Median step times of the reference and of cidir, *interleaved* (ref, jet, ref, jet,
    ...) so that load from other processes affects both alike; plus their losses."""
    ref_times, jet_times = [], []
    for i in range(repeats + 1):
        t_ref, ref_loss = _one_step(nested_autograd_derivatives, model, x, alpha, order, term)
        t_jet, jet_loss = _one_step(jet_derivatives, model, x, alpha, order, term)
        if i:  # the first round warms up
            ref_times.append(t_ref)
            jet_times.append(t_jet)
    return (statistics.median(ref_times), statistics.median(jet_times), ref_loss, jet_loss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=10000)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"
                                             / "regularizer_speed.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = DeformationModel(ModelConfig(width=args.width, hidden_layers=args.layers), 3).to(device)
    with torch.no_grad():  # move away from the SIREN start so that every term is non-trivial
        model.harmonizer.head.weight.normal_(0, 0.05)
        model.mlp.output.weight.mul_(100)
    x = torch.rand(args.points, 3, device=device) * 2 - 1
    alpha = torch.tensor([[0.3]], device=device)

    results = {"command": " ".join(sys.argv),
               "machine": {"cpu_threads": torch.get_num_threads(), "torch": torch.__version__,
                           "device": str(device), "platform": platform.platform(),
                           "load_average_1min": os.getloadavg()[0]},
               "points": args.points, "width": args.width, "layers": args.layers, "terms": {}}
    # value check: both paths give the same derivatives
    u1, j1, h1 = (t.detach() for t in nested_autograd_derivatives(model, x[:512], alpha, 2))
    u2, j2, h2 = (t.detach() for t in jet_derivatives(model, x[:512], alpha, 2))
    results["max_abs_diff"] = {"jacobian": float((j1 - j2).abs().max()),
                               "second_derivatives": float((h1 - h2).abs().max())}
    results["max_abs_value"] = {"jacobian": float(j1.abs().max()),
                                "second_derivatives": float(h1.abs().max())}
    assert torch.allclose(j1, j2, rtol=1e-4, atol=1e-4 * float(j1.abs().max())), "Jacobians differ"
    assert torch.allclose(h1, h2, rtol=1e-3, atol=1e-4 * float(h1.abs().max())), "Hessians differ"

    with torch.no_grad():
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            model(x, alpha, 0)
        forward_only = (time.perf_counter() - t0) / args.repeats
    sim_time = statistics.median(
        _one_step(jet_derivatives, model, x, alpha, 0, "none")[0] for _ in range(args.repeats))
    results["terms"]["similarity_only"] = {"jet_s": sim_time,
                                           "forward_only_no_grad_s": forward_only}
    for term, order in (("jacobian", 1), ("bending", 2)):
        ref, jet, ref_loss, jet_loss = time_pair(model, x, alpha, order, term, args.repeats)
        results["terms"][term] = {"nested_autograd_s": ref, "jet_s": jet, "speedup": ref / jet,
                                  "loss_nested": ref_loss, "loss_jet": jet_loss}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
