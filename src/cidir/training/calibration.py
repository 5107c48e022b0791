"""λ ranges that fit the pair: the pilot calibration (``objective.calibration = "pilot"``).

A short pilot fit without the α-driven regularizers (the ``constant`` ones, e.g. an
anti-folding guard, stay) shows how much the similarity can gain on this pair and how much
regularizer energy that costs. For each α-driven term R_k,

    λ_b,k = (S(identity) − S(pilot)) / R_k(pilot)

is the weight at which the penalty of the unregularized solution equals its gain, in the
units of the pair (image contrast, spacing, motion). The configured λ_min/λ_max of the term
are then read as multiples of λ_b,k, so one range serves brain MRI, lung MRI and CT alike.
Both S and R are averaged over ``CALIBRATION_POINTS`` training points drawn by the pilot's
own generator (deterministic for a seed).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import torch

from cidir.config import RunConfig
from cidir.losses import Objective

if TYPE_CHECKING:
    from cidir.training.trainer import Trainer

CALIBRATION_POINTS = 16384
#: the scale kept when the pilot gains nothing (an already aligned pair) or has no energy
FALLBACK_SCALE = 1.0


def pilot_config(config: RunConfig) -> RunConfig:
    """The pilot's configuration: the run's, without its α-driven regularizers, with
    ``calibration_iterations`` iterations at a constant learning rate."""
    objective = config.objective
    kept = tuple(t for t in objective.regularizers if t.mapping == "constant")
    training = dataclasses.replace(config.training,
                                   iterations=objective.calibration_iterations,
                                   lr_schedule="constant", warmup_iterations=0,
                                   checkpoint_every=0)
    return dataclasses.replace(
        config, objective=dataclasses.replace(objective, regularizers=kept, calibration="none"),
        training=training)


def measure_scales(pilot: Trainer, objective: Objective
                   ) -> tuple[tuple[float, ...], dict[str, Any]]:
    """(λ_b per regularizer term of ``objective``, a record of the measurement) from a
    trained ``pilot``: 1 for the ``constant`` terms; FALLBACK_SCALE where the pilot gained
    no similarity or shows no energy (recorded as ``fallback``)."""
    transform = pilot.transform
    world, fixed = pilot.points.sample(CALIBRATION_POINTS)
    alpha = transform.alpha_tensor(0.0)
    with torch.no_grad():
        before = _similarity(pilot, objective, fixed, transform.apply_init(world))
        after = _similarity(pilot, objective, fixed, transform.map_jet(world, alpha).value)
    order = objective.derivative_order
    head = world[: max(1, CALIBRATION_POINTS // 4)]
    energies = {}
    if order > 0:  # derivatives through the network need autograd, not no_grad
        jet = transform.map_jet(head, alpha, order).u
        energies = {name: float(v.detach().mean())
                    for name, v in objective.regularizer_values(jet.jacobian,
                                                                jet.hessian).items()}
    gain = before - after
    scales: list[float] = []
    terms: dict[str, dict[str, float | bool]] = {}
    record: dict[str, Any] = {"similarity_identity": before, "similarity_pilot": after,
                              "iterations": pilot.iteration, "terms": terms}
    for term in objective.config.regularizers:
        if term.mapping == "constant":
            scales.append(1.0)
            continue
        energy = energies.get(term.name, 0.0)
        ok = gain > 0 and energy > 0
        scale = gain / energy if ok else FALLBACK_SCALE
        scales.append(scale)
        terms[term.name] = {"energy": energy, "lambda_b": scale, "fallback": not ok}
    return tuple(scales), record


def _similarity(pilot: Trainer, objective: Objective, fixed: torch.Tensor,
                moving_points: torch.Tensor) -> float:
    warped = pilot.moving(moving_points).view(1, -1)
    return float(objective.similarity(fixed.view(1, -1), warped).mean())
