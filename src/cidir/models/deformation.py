"""The deformation model: network coordinates (and α) → displacement, in network units.

Three kinds share one code path (:class:`~cidir.models.jet_mlp.JetMLP`):

- ``cidir``: sine activations a·sin(b·z + c) + d whose (a, b, c, d) come from the
  :class:`~cidir.models.harmonizer.Harmonizer` of α — one network for every α;
- ``siren``: the unconditioned IDIR baseline, fixed SIREN activations (α is ignored);
- ``relu``: a ReLU MLP baseline (α is ignored).

Inputs and outputs are in the *network* frame of the fixed grid (see
:class:`cidir.geometry.Grid`); :class:`cidir.fields.transform.ConditionedTransform` converts to
world millimetres.
"""

from __future__ import annotations

import torch
from torch import nn

from cidir.config import ModelConfig
from cidir.models.harmonizer import Harmonizer
from cidir.models.jet_mlp import Jet, JetMLP, module_twin


class DeformationModel(nn.Module):
    """u(x; α) with exact input derivatives up to second order."""

    def __init__(self, config: ModelConfig, ndim: int, num_conditions: int = 1) -> None:
        super().__init__()
        self.config = config  # validated at construction
        self.ndim = ndim
        self.num_conditions = num_conditions
        self.mlp = JetMLP(
            ndim,
            config.width,
            config.hidden_layers,
            activation="relu" if config.kind == "relu" else "sine",
            omega_first=config.omega_first,
            omega_hidden=config.omega_hidden,
            output_init_scale=config.output_init_scale,
        )
        self.harmonizer = (
            Harmonizer(num_conditions, config.hidden_layers, config.harmonizer_widths,
                       config.shared_activation)
            if config.kind == "cidir"
            else None
        )

    @property
    def conditioned(self) -> bool:
        return self.harmonizer is not None

    def activation_params(self, alpha: torch.Tensor | None) -> torch.Tensor | None:
        """(G, L, 4) sine parameters for α of shape (G, K); None for unconditioned kinds."""
        if self.harmonizer is None:
            return None
        if alpha is None:
            raise ValueError("the cidir model needs α")
        params: torch.Tensor = self.harmonizer(alpha)
        return params

    def frozen(self, alpha: torch.Tensor) -> DeformationModel:
        """This model at one α (1, K) with the modulation folded into the sine layers
        (:meth:`JetMLP.folded`): the same displacement and derivatives, α ignored; for
        inference only (no gradient reaches this model's parameters). Unconditioned kinds are
        returned as they are."""
        if self.harmonizer is None:
            return self
        with torch.no_grad():
            params = self.harmonizer(alpha)
        if params.shape[0] != 1:
            raise ValueError(f"frozen: expected one α row, found {params.shape[0]}")
        twin = module_twin(self)
        twin.harmonizer = None
        twin.mlp = self.mlp.folded(params[0])
        return twin

    def forward(self, x: torch.Tensor, alpha: torch.Tensor | None = None, order: int = 0,
                repeats: torch.Tensor | None = None) -> Jet:
        """Displacement jet at network points x (B, D).

        alpha: (1, K) for one α for all points, (B, K) per point, or (G, K) with ``repeats``
        (G,) giving how many consecutive points use each α.
        """
        params = self.activation_params(alpha)
        if params is not None and repeats is not None and params.shape[0] > 1:
            params = _repeat_rows(params, repeats)
        if params is not None and params.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"α rows ({params.shape[0]}) must be 1 or the number of points "
                             f"({x.shape[0]})")
        jet: Jet = self.mlp(x, params, order)
        return jet


def _repeat_rows(params: torch.Tensor, repeats: torch.Tensor) -> torch.Tensor:
    """Row g of ``params`` repeated ``repeats[g]`` times (equal counts: expand + reshape, whose
    backward is a plain sum over the repeats; otherwise ``repeat_interleave``)."""
    counts = repeats.tolist()
    if all(c == counts[0] for c in counts):
        g = params.shape[0]
        return params.unsqueeze(1).expand(g, counts[0], *params.shape[1:]).reshape(
            g * counts[0], *params.shape[1:])
    return torch.repeat_interleave(params, repeats, dim=0)
