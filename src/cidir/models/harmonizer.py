"""The harmonizer: α → the sine-activation parameters (a, b, c, d) of the deformation MLP.

A small MLP (default widths 128 → 64 → 32, each Linear → LayerNorm → SiLU) maps the
conditioning vector α ∈ [0, 1]^K to one (a, b, c, d) per hidden layer of the deformation
network (or one set shared by all layers). a = exp(â) and b = exp(b̂) stay positive. The head
starts at zero, so at initialization a = b = 1 and c = d = 0 for every α: a plain SIREN.
"""

from __future__ import annotations

import torch
from torch import nn


class Harmonizer(nn.Module):
    """α (G, K) → activation parameters (G, L, 4) ordered (a, b, c, d)."""

    def __init__(self, num_conditions: int, num_layers: int,
                 widths: tuple[int, ...] = (128, 64, 32), shared: bool = False) -> None:
        super().__init__()
        self.num_conditions = num_conditions
        self.num_layers = num_layers
        self.shared = shared
        blocks: list[nn.Module] = []
        width_in = num_conditions
        for width in widths:
            blocks += [nn.Linear(width_in, width), nn.LayerNorm(width), nn.SiLU()]
            width_in = width
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(width_in, 4 * (1 if shared else num_layers))
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, alpha: torch.Tensor) -> torch.Tensor:
        if alpha.ndim != 2 or alpha.shape[1] != self.num_conditions:
            raise ValueError(f"harmonizer: expected α of shape (G, {self.num_conditions}), "
                             f"found {tuple(alpha.shape)}")
        raw = self.head(self.body(alpha)).view(alpha.shape[0], -1, 4)
        if self.shared:
            raw = raw.expand(-1, self.num_layers, -1)
        a = torch.exp(raw[..., 0])
        b = torch.exp(raw[..., 1])
        return torch.stack([a, b, raw[..., 2], raw[..., 3]], dim=-1)
