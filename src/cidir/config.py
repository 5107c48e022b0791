"""Run configuration: frozen dataclasses, loaded from TOML, written back resolved.

A run is configured by :class:`RunConfig` = model + objective + training + selection.
Every field has a default; a TOML file sets any subset; command-line overrides use dotted
keys (``training.iterations=500``). Unknown keys and wrong types are errors that name the
key, never silently ignored.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cidir.config_plain import from_plain, to_plain
from cidir.errors import InputError
from cidir.losses.regularizers import REGULARIZERS as REGULARIZER_REGISTRY
from cidir.losses.similarity import SIMILARITIES as SIMILARITY_REGISTRY
from cidir.losses.weights import MAPPINGS as MAPPING_REGISTRY

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# The string choices of the configuration, each defined once. Regularizers, similarities and
# λ mappings are the names of their registries in cidir.losses (which do not import this
# module); the others are read where they are used (models, training prior, α search).
MODEL_KINDS = ("cidir", "siren", "relu")
REGULARIZERS = tuple(REGULARIZER_REGISTRY)
MAPPINGS = tuple(MAPPING_REGISTRY)
SIMILARITIES = tuple(SIMILARITY_REGISTRY)
PRIORS = ("uniform", "fixed")
ALPHA_SAMPLINGS = ("random", "stratified")  # how the α of one iteration's groups are drawn
CALIBRATIONS = ("none", "pilot")  # how the λ ranges are scaled to the pair
LR_SCHEDULES = ("constant", "cosine")
#: what chooses α in the grid search (cidir select --rule)
RULES = ("dice", "surface", "tre", "lcurve")


# ----------------------------------------------------------------------- checks
def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"{name}: expected one of {', '.join(choices)}, found {value!r}")


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise InputError(f"{name}: expected a positive number, found {value}")


def _non_negative(name: str, value: float) -> None:
    if not value >= 0:
        raise InputError(f"{name}: expected a number >= 0, found {value}")


def _positive_int(name: str, value: int) -> None:
    if not value >= 1:
        raise InputError(f"{name}: expected a positive integer, found {value}")


def _unit_interval(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise InputError(f"{name}: expected a value in [0, 1], found {value}")


class _Validated:
    """Frozen config sections validate themselves once, when they are constructed (also by
    ``dataclasses.replace`` and the TOML loader); ``validate()`` raises InputError."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:  # pragma: no cover - every section overrides it
        raise NotImplementedError


@dataclass(frozen=True)
class ModelConfig(_Validated):
    """The deformation network.

    kind: ``cidir`` (sine activations modulated by the harmonizer from α), ``siren``
    (IDIR baseline: fixed SIREN activations, no conditioning), ``relu`` (ReLU MLP baseline).
    """

    kind: str = "cidir"
    hidden_layers: int = 3
    width: int = 128
    omega_first: float = 30.0  # SIREN frequency of the first layer
    omega_hidden: float = 30.0  # SIREN frequency of the other hidden layers
    shared_activation: bool = False  # one (a, b, c, d) for all layers instead of one per layer
    harmonizer_widths: tuple[int, ...] = (128, 64, 32)
    output_init_scale: float = 1e-3  # scale of the output layer's initial weights (u ≈ 0)

    def validate(self) -> None:
        _choice("model.kind", self.kind, MODEL_KINDS)
        _positive_int("model.hidden_layers", self.hidden_layers)
        _positive_int("model.width", self.width)
        for w in self.harmonizer_widths:
            _positive_int("model.harmonizer_widths", w)
        _positive("model.omega_first", self.omega_first)
        _positive("model.omega_hidden", self.omega_hidden)
        _non_negative("model.output_init_scale", self.output_init_scale)


@dataclass(frozen=True)
class RegularizerTerm(_Validated):
    """One regularizer R_k with its weight λ_k(α).

    name: ``jacobian`` |det(I+∇u) − 1|, ``hyperelastic`` (length, area, volume terms),
    ``bending`` Σ‖∂²u/∂x_i∂x_j‖² (mm⁻¹ squared), ``antifolding`` max(0, −det(I+∇u)).
    mapping: ``log`` λ = λ_min·(λ_max/λ_min)^α, ``linear`` λ = λ_max·α,
    ``constant`` λ = λ_max whatever α.
    alpha_index: which entry of the conditioning vector α drives this term.
    """

    name: str = "bending"
    lambda_min: float = 1.0
    lambda_max: float = 10000.0
    mapping: str = "log"
    alpha_index: int = 0

    def validate(self) -> None:
        _choice("objective.regularizers.name", self.name, REGULARIZERS)
        _choice("objective.regularizers.mapping", self.mapping, MAPPINGS)
        _positive("objective.regularizers.lambda_max", self.lambda_max)
        if self.mapping == "log":
            _positive("objective.regularizers.lambda_min", self.lambda_min)
            if self.lambda_min > self.lambda_max:
                raise InputError(
                    f"objective.regularizers ({self.name}): expected lambda_min <= lambda_max, "
                    f"found {self.lambda_min} > {self.lambda_max}"
                )
        if self.alpha_index < 0:
            raise InputError(f"objective.regularizers.alpha_index: expected >= 0, "
                             f"found {self.alpha_index}")


@dataclass(frozen=True)
class ObjectiveConfig(_Validated):
    """loss = S(F(x), M(φ(x))) + Σ_k λ_k(α)·R_k(u)(x), averaged over the batch.

    calibration: ``none`` uses λ_min/λ_max as written; ``pilot`` first fits the pair without
    its α-driven regularizers (``calibration_iterations`` Adam steps) and measures
    λ_b = (S(identity) − S(pilot)) / R_k(pilot), the weight at which the regularizer's
    penalty of the unregularized solution equals its similarity gain; the λ_min/λ_max of
    every term whose mapping is not ``constant`` are then multiples of that pair's λ_b.
    """

    similarity: str = "ncc"  # ncc (global), mse, or mi (Parzen mutual information)
    mi_bins: int = 32  # histogram bins of each image for similarity "mi" (see docs)
    # bending over five decades around the pair's λ_b (calibration "pilot"), and a constant
    # guard against folding (see docs/method-choices.md for the measurements)
    regularizers: tuple[RegularizerTerm, ...] = (
        RegularizerTerm("bending", 1e-4, 10.0, "log", 0),
        RegularizerTerm("antifolding", 10.0, 10.0, "constant", 0),
    )
    regularizer_fraction: float = 0.25  # fraction of the batch where R is evaluated
    hyperelastic_length: float = 1.0
    hyperelastic_area: float = 1.0
    hyperelastic_volume: float = 1.0
    calibration: str = "pilot"
    calibration_iterations: int = 100

    def validate(self) -> None:
        _choice("objective.similarity", self.similarity, SIMILARITIES)
        _choice("objective.calibration", self.calibration, CALIBRATIONS)
        _positive_int("objective.calibration_iterations", self.calibration_iterations)
        if self.mi_bins < 4:
            raise InputError(f"objective.mi_bins: expected an integer >= 4, found "
                             f"{self.mi_bins}")
        for term in self.regularizers:
            if not isinstance(term, RegularizerTerm):
                raise InputError(f"objective.regularizers: expected regularizer terms, found "
                                 f"{term!r}")
        if not 0.0 < self.regularizer_fraction <= 1.0:
            raise InputError(
                "objective.regularizer_fraction: expected a value in (0, 1], "
                f"found {self.regularizer_fraction}"
            )
        for name in ("hyperelastic_length", "hyperelastic_area", "hyperelastic_volume"):
            _non_negative(f"objective.{name}", getattr(self, name))

    @property
    def num_conditions(self) -> int:
        """Length of the conditioning vector α."""
        return 1 + max((t.alpha_index for t in self.regularizers), default=0)

    @property
    def derivative_order(self) -> int:
        """Highest derivative of u the regularizers need (0, 1 or 2)."""
        return max((REGULARIZER_REGISTRY[t.name].order for t in self.regularizers), default=0)


@dataclass(frozen=True)
class TrainingConfig(_Validated):
    """Per-pair optimization: Adam over points drawn inside the fixed mask grown by
    ``mask_margin_mm`` (mm).

    lr_schedule: ``constant``, or ``cosine`` (linear warm-up over ``warmup_iterations``, at
    most half the iterations, then cosine decay from learning_rate to
    final_lr_fraction·learning_rate at the last iteration).
    """

    # Adam at 10⁻³ with a cosine decay over 400 iterations: better or level against the
    # paper's 10⁻⁴ constant over 800 on every ablation task, in half the iterations
    # (docs/method-choices.md)
    iterations: int = 400
    batch_size: int = 4000
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"
    warmup_iterations: int = 10
    final_lr_fraction: float = 0.1
    mask_margin_mm: float = 0.0
    alpha_prior: str = "uniform"  # uniform on [alpha_low, alpha_high], or fixed
    alpha_low: float = 0.0
    alpha_high: float = 1.0
    alpha_fixed: float = 0.5  # α used by the prior "fixed" and by the siren/relu baselines
    endpoint_probability: float = 0.0  # chance that a drawn α is exactly alpha_low or alpha_high
    alphas_per_iteration: int = 1  # the batch is split between this many α draws
    alpha_sampling: str = "random"  # or "stratified": one α per 1/alphas_per_iteration stratum
    seed: int = 0
    # iterations between checkpoints for --resume (0: only on Ctrl-C); 200 costs < 0.1% of a
    # CPU fit at the defaults (7 ms per save vs 130 ms per iteration)
    checkpoint_every: int = 200
    log_every: int = 10  # iterations between rows of loss.csv

    def validate(self) -> None:
        _positive_int("training.iterations", self.iterations)
        _positive_int("training.batch_size", self.batch_size)
        _positive("training.learning_rate", self.learning_rate)
        _choice("training.lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _unit_interval("training.final_lr_fraction", self.final_lr_fraction)
        _non_negative("training.mask_margin_mm", self.mask_margin_mm)
        if self.warmup_iterations < 0:
            raise InputError("training.warmup_iterations: expected an integer >= 0, found "
                             f"{self.warmup_iterations}")
        _choice("training.alpha_prior", self.alpha_prior, PRIORS)
        _choice("training.alpha_sampling", self.alpha_sampling, ALPHA_SAMPLINGS)
        for name in ("alpha_low", "alpha_high", "alpha_fixed", "endpoint_probability"):
            _unit_interval(f"training.{name}", getattr(self, name))
        if self.alpha_low > self.alpha_high:
            raise InputError(
                f"training: expected alpha_low <= alpha_high, found {self.alpha_low} > "
                f"{self.alpha_high}"
            )
        _positive_int("training.alphas_per_iteration", self.alphas_per_iteration)
        if self.alphas_per_iteration > self.batch_size:
            raise InputError("training.alphas_per_iteration: expected <= batch_size, found "
                             f"{self.alphas_per_iteration} > {self.batch_size}")
        if self.checkpoint_every < 0 or self.log_every < 1:
            raise InputError("training.checkpoint_every must be >= 0 and log_every >= 1")


@dataclass(frozen=True)
class SelectionConfig(_Validated):
    """Choosing α at inference by a grid search over α on sampled points."""

    num_alphas: int = 21  # grid 0, 1/(n-1), ..., 1 (several conditions: the finest step)
    coarse_alphas: int = 6  # several conditions: the first product grid, values per axis
    sample_points: int = 20000  # voxels of the labels' region where Dice is estimated
    folding_points: int = 2000  # of those, where det J is evaluated (folding %)
    region_margin_mm: float = 10.0  # margin around the labels where points are drawn
    tie_tolerance: float = 0.0  # Dice within this of the best is a tie (0: the gap std. error)
    seed: int = 0

    def validate(self) -> None:
        if self.num_alphas < 2:
            raise InputError(f"selection.num_alphas: expected >= 2, found {self.num_alphas}")
        if self.coarse_alphas < 2:
            raise InputError(f"selection.coarse_alphas: expected >= 2, found "
                             f"{self.coarse_alphas}")
        _positive_int("selection.sample_points", self.sample_points)
        _positive_int("selection.folding_points", self.folding_points)
        if self.region_margin_mm < 0 or self.tie_tolerance < 0:
            raise InputError("selection.region_margin_mm and tie_tolerance must be >= 0")


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)

    def __post_init__(self) -> None:
        for name, cls in (("model", ModelConfig), ("objective", ObjectiveConfig),
                          ("training", TrainingConfig), ("selection", SelectionConfig)):
            if not isinstance(getattr(self, name), cls):
                raise InputError(f"{name}: expected a {cls.__name__}, found "
                                 f"{type(getattr(self, name)).__name__}")

    def validate(self) -> RunConfig:
        """The config itself: every section was validated when it was constructed."""
        return self

    @property
    def num_conditions(self) -> int:
        return self.objective.num_conditions

    # --------------------------------------------------------------- (de)serialization
    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> RunConfig:
        return from_plain(cls, data, source)

    @classmethod
    def from_toml(cls, text: str, source: str = "config",
                  base: RunConfig | None = None) -> RunConfig:
        """The config of a TOML text; keys it does not set keep ``base``'s values (default:
        the library defaults)."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{source}: not valid TOML ({exc})") from None
        if base is not None:
            data = _merged(base.to_dict(), data)
        return cls.from_dict(data, source)

    @classmethod
    def load(cls, path: str | Path, base: RunConfig | None = None) -> RunConfig:
        """The config of a TOML file on top of ``base`` (default: the library defaults)."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"config file {path}: not found")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InputError(f"config file {path}: expected TOML text, found binary data"
                             ) from None
        except OSError as exc:
            raise InputError(f"config file {path}: cannot read it ({exc.strerror or exc})"
                             ) from None
        return cls.from_toml(text, str(path), base)

    @classmethod
    def from_preset(cls, name: str) -> RunConfig:
        """A named configuration shipped with cidir (:mod:`cidir.presets`), e.g. ``paper``."""
        from cidir.presets import preset_text

        return cls.from_toml(preset_text(name), f"preset {name}")

    def with_overrides(self, overrides: dict[str, Any]) -> RunConfig:
        """A copy with dotted keys replaced, e.g. ``{"training.iterations": 500}``."""
        data = self.to_dict()
        for key, value in overrides.items():
            node = data
            parts = key.split(".")
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    raise InputError(f"override {key}: unknown section {part!r}")
                node = node[part]
            if parts[-1] not in node:
                raise InputError(f"override {key}: unknown key {parts[-1]!r}")
            node[parts[-1]] = value
        return RunConfig.from_dict(data, "overrides")


def _merged(base: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """``base`` with the tables of ``data`` merged in (key by key; other values replaced)."""
    out = dict(base)
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out
