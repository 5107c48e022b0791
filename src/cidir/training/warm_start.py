"""Warm start: a new pair's network starts from another pair's trained network.

Geometry, explicitly: the network maps *network* coordinates of its own fixed grid (the grid
centred and scaled by its half-extent, :class:`cidir.geometry.Grid`) to a displacement in
the same units. Copying the weights therefore starts the new pair from the other pair's
field read in the new fixed image's own frame — position for position relative to each
image's centre and extent, the displacement scaled with the extent. Neither the initial
affine (each pair has its own) nor the λ calibration (measured on the new pair by its pilot)
is copied. What must match: the dimension, the model configuration (kind, width, layers,
activations, harmonizer) and the number of conditioning values; anything else (objective,
training, selection) may differ.
"""

from __future__ import annotations

import dataclasses

from cidir.config import RunConfig
from cidir.errors import InputError
from cidir.fields import ConditionedTransform


def check_compatible(source: ConditionedTransform, source_config: RunConfig, config: RunConfig,
                     ndim: int, what: str) -> None:
    """InputError naming ``what`` (the source) when its network cannot start this fit."""
    if source.ndim != ndim:
        raise InputError(f"{what}: its network is {source.ndim}D, this pair is {ndim}D")
    if source_config.model != config.model:
        theirs, ours = dataclasses.asdict(source_config.model), dataclasses.asdict(config.model)
        differ = ", ".join(f"model.{k} {theirs[k]!r} there, {ours[k]!r} here"
                           for k in ours if theirs[k] != ours[k])
        raise InputError(f"{what}: trained with another model configuration ({differ}); a "
                         "warm start needs the same network")
    if source.model.num_conditions != config.num_conditions:
        raise InputError(f"{what}: conditioned on {source.model.num_conditions} value(s) of α, "
                         f"this configuration on {config.num_conditions}")


def load_weights(target: ConditionedTransform, source: ConditionedTransform) -> None:
    """Copy ``source``'s network weights into ``target`` (checked compatible)."""
    target.model.load_state_dict(
        {k: v.to(target.device) for k, v in source.model.state_dict().items()}, strict=True)
