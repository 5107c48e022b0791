"""An MLP that propagates input derivatives forward alongside its activations.

For regularizers we need u(x), ∇u(x) and ∂²u/∂x_i∂x_j at every batch point. Nested
``torch.autograd.grad`` calls (IDIR's approach) cost one backward pass per output component
and derivative order. Here each layer carries a *jet* — the value h, its first derivatives
∂h/∂x_i (D of them) and its second derivatives ∂²h/∂x_i∂x_j (i ≤ j, D(D+1)/2 of them) —
through one stacked matrix product per layer, with the chain rule for the activation σ:

    ∂σ(z)/∂x_i = σ'(z)·∂z/∂x_i,
    ∂²σ(z)/∂x_i∂x_j = σ''(z)·∂z/∂x_i·∂z/∂x_j + σ'(z)·∂²z/∂x_i∂x_j.

The result is exact (no finite differences), differentiable for training, and needs no
autograd graph at inference (fields, Jacobian maps under ``torch.no_grad``).

Activations: modulated sine a·sin(b·ω(Wh + β) + c) + d (SIREN when a = b = 1, c = d = 0),
or ReLU. Derivatives are with respect to the network input (normalized coordinates).
"""

from __future__ import annotations

import copy
import math
from typing import TypeVar, cast

import torch
from torch import nn

from cidir.geometry.kinematics import Jet, pair_indices

__all__ = ["Jet", "JetMLP", "module_twin", "pair_indices"]

M = TypeVar("M", bound=nn.Module)


class JetMLP(nn.Module):
    """Coordinates (B, D) → displacement (B, D) with optional exact input derivatives."""

    def __init__(self, ndim: int, width: int, hidden_layers: int, activation: str = "sine",
                 omega_first: float = 30.0, omega_hidden: float = 30.0,
                 output_init_scale: float = 1e-3) -> None:
        super().__init__()
        if activation not in ("sine", "relu"):
            raise ValueError(f"activation: expected sine or relu, found {activation!r}")
        self.ndim = ndim
        self.activation = activation
        self.hidden = nn.ModuleList(
            [nn.Linear(ndim if i == 0 else width, width) for i in range(hidden_layers)]
        )
        self.output = nn.Linear(width, ndim)
        if activation == "sine":
            self.omegas = [omega_first] + [omega_hidden] * (hidden_layers - 1)
            self._siren_init()
        else:
            self.omegas = [1.0] * hidden_layers
        with torch.no_grad():
            bound = output_init_scale * math.sqrt(6.0 / width)
            self.output.weight.uniform_(-bound, bound)
            self.output.bias.zero_()
        first, second = pair_indices(ndim)
        self._pairs = list(zip(first, second, strict=True))

    def _hidden_layers(self) -> list[nn.Linear]:
        return [cast(nn.Linear, layer) for layer in self.hidden]

    def _siren_init(self) -> None:
        """SIREN initialization (Sitzmann et al. 2020)."""
        with torch.no_grad():
            for i, layer in enumerate(self._hidden_layers()):
                fan_in = layer.weight.shape[1]
                bound = 1.0 / fan_in if i == 0 else math.sqrt(6.0 / fan_in) / self.omegas[i]
                layer.weight.uniform_(-bound, bound)

    @torch.no_grad()
    def folded(self, params: torch.Tensor) -> JetMLP:
        """A plain-SIREN twin computing the same function as this network with the fixed
        activation parameters ``params`` (L, 4) = (a, b, c, d) per hidden layer.

        b·ω(Wh + β) + c is one affine map of h, and the next layer's W'(a·s + d) + β' one of
        s = sin(·): both fold into the weights (computed in float64), so a fixed-α evaluation
        costs one matrix product and one sine per layer — no modulation passes (φ about 1.5×,
        det ∇φ about 1.2× faster on 2 CPU cores: benchmarks/frozen_speed.py). The twin's
        activations are sin (ω = 1) and it takes no params."""
        if self.activation != "sine":
            raise ValueError("only a sine network has activation parameters to fold")
        p = params.detach().double().reshape(len(self.hidden), 4).cpu()
        layers: list[nn.Linear] = []
        scale_in, shift_in = 1.0, 0.0  # the true layer input is scale_in·s + shift_in
        for k, layer in enumerate(self._hidden_layers()):
            a, b, c, d = (float(v) for v in p[k])
            weight = layer.weight.double().cpu() * self.omegas[k]
            bias = layer.bias.double().cpu() * self.omegas[k] + shift_in * weight.sum(dim=1)
            layers.append(_linear(b * scale_in * weight, b * bias + c, layer.weight))
            scale_in, shift_in = a, d
        weight = self.output.weight.double().cpu()
        output = _linear(scale_in * weight, self.output.bias.double().cpu()
                         + shift_in * weight.sum(dim=1), self.output.weight)
        twin = module_twin(self)
        twin.hidden = nn.ModuleList(layers)
        twin.output = output
        twin.omegas = [1.0] * len(layers)
        return twin

    def _activate(self, z: torch.Tensor, params: torch.Tensor | None, layer: int, order: int
                  ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """σ(z), σ'(z), σ''(z) (the latter two None when not needed)."""
        if self.activation == "relu":
            d1 = (z > 0).to(z.dtype) if order >= 1 else None
            d2 = torch.zeros_like(z) if order >= 2 else None  # piecewise linear
            return torch.relu(z), d1, d2
        if params is None:  # plain SIREN
            s = torch.sin(z)
            d1 = torch.cos(z) if order >= 1 else None
            d2 = -s if order >= 2 else None
            return s, d1, d2
        p = params[:, layer]  # (G or B, 4)
        a, b, c, d = (p[:, k : k + 1] for k in range(4))
        arg = b * z + c
        s = torch.sin(arg)
        value = a * s + d
        d1 = a * b * torch.cos(arg) if order >= 1 else None
        d2 = -(a * b * b) * s if order >= 2 else None
        return value, d1, d2

    def forward(self, x: torch.Tensor, params: torch.Tensor | None = None, order: int = 0) -> Jet:
        """Evaluate at points x (B, D).

        params: activation parameters (1 or B, L, 4) from the harmonizer, or None for fixed
        SIREN / ReLU activations. order: 0 (value), 1 (+ Jacobian), 2 (+ second derivatives).
        """
        if x.ndim != 2 or x.shape[1] != self.ndim:
            raise ValueError(f"expected points of shape (B, {self.ndim}), found {tuple(x.shape)}")
        if order not in (0, 1, 2):
            raise ValueError(f"order: expected 0, 1 or 2, found {order}")
        ndim = self.ndim
        h = x
        dh: torch.Tensor | None = None  # (D, B, W)
        d2h: torch.Tensor | None = None  # (P, B, W)
        for layer_index, layer in enumerate(self._hidden_layers()):
            omega = self.omegas[layer_index]
            weight = layer.weight * omega if omega != 1.0 else layer.weight
            bias = layer.bias * omega if omega != 1.0 else layer.bias
            if layer_index == 0:
                z = torch.addmm(bias, h, weight.t())
                dz = weight.t().unsqueeze(1) if order >= 1 else None  # (D, 1, W), constant
                d2z = None  # the first layer is affine in x
            else:
                parts = [h.unsqueeze(0)]
                if order >= 1:
                    parts.append(cast(torch.Tensor, dh))
                if order >= 2:
                    parts.append(cast(torch.Tensor, d2h))
                stacked = torch.cat(parts, dim=0) if len(parts) > 1 else parts[0]
                out = stacked @ weight.t()
                z = out[0] + bias
                dz = out[1 : 1 + ndim] if order >= 1 else None
                d2z = out[1 + ndim :] if order >= 2 else None
            h, s1, s2 = self._activate(z, params, layer_index, order)
            if order >= 2:
                assert s1 is not None and s2 is not None and dz is not None
                # basic indexing per pair: the backward of advanced indexing (index_put_ with
                # accumulate) is not deterministic across runs on multi-threaded CPUs
                d2h = s2 * torch.stack([dz[i] * dz[j] for i, j in self._pairs])
                if d2z is not None:
                    d2h = d2h + s1 * d2z
            if order >= 1:
                assert s1 is not None and dz is not None
                dh = s1 * dz
        value: torch.Tensor = self.output(h)
        jacobian = hessian = None
        if order >= 1:
            assert dh is not None
            jacobian = (dh @ self.output.weight.t()).permute(1, 2, 0)  # (B, D_out, D)
        if order >= 2:
            assert d2h is not None
            hessian = (d2h @ self.output.weight.t()).permute(1, 2, 0)  # (B, D_out, P)
        return Jet(value, jacobian, hessian)


def module_twin(module: M) -> M:
    """A shallow copy of ``module`` with its own tables of submodules, parameters and
    buffers: replacing a submodule of the twin leaves the original untouched, and nothing is
    copied or initialized (cheap, no RNG)."""
    twin = copy.copy(module)
    twin.__dict__ = {**module.__dict__, "_modules": dict(module._modules),
                     "_parameters": dict(module._parameters), "_buffers": dict(module._buffers)}
    return twin


def _linear(weight: torch.Tensor, bias: torch.Tensor, like: torch.Tensor) -> nn.Linear:
    """A Linear layer holding ``weight`` and ``bias`` with the dtype and device of ``like``
    (built without random initialization: the global RNG is not touched)."""
    layer = cast(nn.Linear, nn.utils.skip_init(  # type: ignore[no-untyped-call]
        nn.Linear, weight.shape[1], weight.shape[0], dtype=like.dtype, device=like.device))
    layer.weight.copy_(weight)
    layer.bias.copy_(bias)
    return layer
