"""The implicit neural representations of cidir: ``cidir`` (conditioned, one training, α by
Dice), ``idir`` (unconditioned SIREN at α_fixed = 0.5, i.e. λ = λ(0.5)), ``idir-grid``
(one SIREN training per α of a grid, best by the same Dice rule) and ``idir-at-cidir``
(one SIREN training at the α cidir chose on the pair, with cidir's calibrated λ scale: the
same absolute weights, so that the gap to ``cidir`` is the cost of conditioning).

All train with ``cidir.training.fit`` on the pair's fixed mask with the common initial
affine, and are turned into the common field with ``cidir.fields.displacement_field``.
"""

from __future__ import annotations

import dataclasses
import time

from benchmarks.methods import MethodResult, weight_choice
from benchmarks.pairs import PairData
from cidir.config import RunConfig
from cidir.fields import displacement_field
from cidir.selection import search_alpha
from cidir.training import fit

#: the unconditioned SIREN baselines train at IDIR's own learning rate (10⁻⁴, constant, 800
#: iterations): at cidir's 10⁻³ with the cosine decay the plain SIREN diverged (brain pair
#: 2 ← 11: the loss rose from −0.95 to −0.31 within 90 iterations, Dice stayed at identity's),
#: so the baselines keep the schedule under which they register (docs/benchmarks.md)
IDIR_TRAINING = {"training.learning_rate": 1e-4, "training.lr_schedule": "constant",
                 "training.warmup_iterations": 0, "training.iterations": 800}


def config_for(settings: dict, **overrides) -> RunConfig:
    """The library's default RunConfig (or the preset named by settings["cidir"]["preset"])
    with the benchmark's overrides (the rest of settings["cidir"])."""
    own = dict(settings.get("cidir", {}))
    preset = own.pop("preset", None)
    base = RunConfig.from_preset(preset) if preset else RunConfig()
    return base.with_overrides({**own, **overrides})


def _fit(pair: PairData, config: RunConfig):
    return fit(pair.fixed, pair.moving, config, fixed_mask=pair.fixed_mask, device="cpu",
               init_matrix=pair.init_matrix)


def _select(result, pair: PairData, config: RunConfig, alphas=None):
    return search_alpha(result.transform, pair.fixed_sel, pair.moving_sel, config.selection,
                        labels=pair.sel_labels, alphas=alphas)


def run_cidir(pair: PairData, settings: dict) -> MethodResult:
    config = config_for(settings)
    t0 = time.perf_counter()
    result = _fit(pair, config)
    t1 = time.perf_counter()
    sel = _select(result, pair, config)
    t2 = time.perf_counter()
    field = displacement_field(result.transform, sel.alpha).astype(float)
    table = [{"alpha": r.alpha, "dice_sel_estimate": r.dice, "folding_percent_sampled":
              r.folding_percent} for r in sel.rows]
    return MethodResult(field, t1 - t0, t2 - t1,
                        {"alpha": sel.alpha, "table": table, "iterations": result.iterations,
                         "warning": sel.warning, "calibration": result.calibration})


def run_idir(pair: PairData, settings: dict) -> MethodResult:
    alpha = float(settings.get("idir_alpha", 0.5))
    config = config_for(settings, **{"model.kind": "siren", "training.alpha_fixed": alpha},
                        **IDIR_TRAINING)
    t0 = time.perf_counter()
    result = _fit(pair, config)
    t1 = time.perf_counter()
    field = displacement_field(result.transform, alpha).astype(float)
    return MethodResult(field, t1 - t0, 0.0, {"alpha": alpha})


def run_idir_grid(pair: PairData, settings: dict) -> MethodResult:
    alphas = [float(a) for a in settings["grid_alphas"]]
    fit_s = sel_s = 0.0
    scores, transforms, table = [], [], []
    for a in alphas:
        config = config_for(settings, **{"model.kind": "siren", "training.alpha_fixed": a},
                            **IDIR_TRAINING)
        t0 = time.perf_counter()
        result = _fit(pair, config)
        t1 = time.perf_counter()
        sel = _select(result, pair, config, alphas=[a])
        sel_s += time.perf_counter() - t1
        fit_s += t1 - t0
        scores.append(sel.rows[0].dice)
        transforms.append(result.transform)
        table.append({"alpha": a, "dice_sel_estimate": sel.rows[0].dice,
                      "fit_seconds": round(t1 - t0, 2)})
    best = weight_choice(alphas, scores)
    field = displacement_field(transforms[best], alphas[best]).astype(float)
    return MethodResult(field, fit_s, sel_s, {"alpha": alphas[best], "table": table,
                                              "trainings": len(alphas)})


def run_idir_at_cidir(pair: PairData, settings: dict) -> MethodResult:
    """IDIR retrained at cidir's choice: settings["cidir_choice"] holds cidir's α and its
    calibration (λ scales per regularizer) on this pair. The λ range of every α-driven term
    is multiplied by cidir's scale and calibration switched off, so λ(α) is cidir's λ."""
    choice = settings["cidir_choice"]
    alpha = float(choice["alpha"])
    base = config_for(settings)
    scales = (choice.get("calibration") or {}).get("scales") or [1.0] * len(
        base.objective.regularizers)
    terms = [{**dataclasses.asdict(term), "lambda_min": term.lambda_min * scale,
              "lambda_max": term.lambda_max * scale}
             for term, scale in zip(base.objective.regularizers, scales, strict=True)]
    config = base.with_overrides({"model.kind": "siren", "training.alpha_fixed": alpha,
                                  "objective.calibration": "none",
                                  "objective.regularizers": terms, **IDIR_TRAINING})
    t0 = time.perf_counter()
    result = _fit(pair, config)
    t1 = time.perf_counter()
    field = displacement_field(result.transform, alpha).astype(float)
    return MethodResult(field, t1 - t0, 0.0, {"alpha": alpha, "lambda_scales": scales})
