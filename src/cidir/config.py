"""Run configuration: frozen dataclasses, loaded from TOML, written back resolved.

A run is configured by :class:`RunConfig` = model + objective + training + selection.
Every field has a default; a TOML file sets any subset; command-line overrides use dotted
keys (``training.iterations=500``). Unknown keys and wrong types are errors that name the
key, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
CRITERIA = ("dice", "tre")  # what chooses α in the grid search


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
    width: int = 256
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
    """loss = S(F(x), M(φ(x))) + Σ_k λ_k(α)·R_k(u)(x), averaged over the batch."""

    similarity: str = "ncc"
    regularizers: tuple[RegularizerTerm, ...] = (
        RegularizerTerm("bending", 1.0, 10000.0, "log", 0),
    )
    regularizer_fraction: float = 0.25  # fraction of the batch where R is evaluated
    hyperelastic_length: float = 1.0
    hyperelastic_area: float = 1.0
    hyperelastic_volume: float = 1.0

    def validate(self) -> None:
        _choice("objective.similarity", self.similarity, SIMILARITIES)
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
    """Per-pair optimization: Adam over points drawn inside the fixed mask."""

    iterations: int = 800
    batch_size: int = 4000
    learning_rate: float = 1e-4
    alpha_prior: str = "uniform"  # uniform on [alpha_low, alpha_high], or fixed
    alpha_low: float = 0.0
    alpha_high: float = 1.0
    alpha_fixed: float = 0.5  # α used by the prior "fixed" and by the siren/relu baselines
    endpoint_probability: float = 0.0  # chance that a drawn α is exactly alpha_low or alpha_high
    alphas_per_iteration: int = 1  # the batch is split between this many α draws
    seed: int = 0
    # iterations between checkpoints for --resume (0: only on Ctrl-C); 200 costs < 0.1% of a
    # CPU fit at the defaults (7 ms per save vs 130 ms per iteration)
    checkpoint_every: int = 200
    log_every: int = 10  # iterations between rows of loss.csv

    def validate(self) -> None:
        _positive_int("training.iterations", self.iterations)
        _positive_int("training.batch_size", self.batch_size)
        _positive("training.learning_rate", self.learning_rate)
        _choice("training.alpha_prior", self.alpha_prior, PRIORS)
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

    num_alphas: int = 21  # grid 0, 1/(n-1), ..., 1
    sample_points: int = 30000  # voxels of the labels' region where Dice is estimated
    folding_points: int = 5000  # of those, where det J is evaluated (folding %)
    region_margin_mm: float = 10.0  # margin around the labels where points are drawn
    tie_tolerance: float = 0.0  # Dice within this of the best is a tie (0: the gap std. error)
    seed: int = 0

    def validate(self) -> None:
        if self.num_alphas < 2:
            raise InputError(f"selection.num_alphas: expected >= 2, found {self.num_alphas}")
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
        return _to_plain(self)

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> RunConfig:
        return _from_plain(cls, data, source)

    @classmethod
    def from_toml(cls, text: str, source: str = "config") -> RunConfig:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{source}: not valid TOML ({exc})") from None
        return cls.from_dict(data, source)

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
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
        return cls.from_toml(text, str(path))

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


# ----------------------------------------------------------------------- helpers
def _to_plain(obj):
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [_to_plain(v) for v in obj]
    return obj


def _from_plain(cls, data, where: str):
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a table, found {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                         f"expected some of {', '.join(sorted(known))}")
    kwargs = {name: _convert(hints[name], value, f"{where}.{name}")
              for name, value in data.items()}
    return cls(**kwargs)


def _convert(hint, value, where: str):
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _from_plain(hint, value, where)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise InputError(f"{where}: expected a list, found {value!r}")
        return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        raise TypeError("unions are not used in configs")
    if hint is bool:
        if not isinstance(value, bool):
            raise InputError(f"{where}: expected true or false, found {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str):
                try:
                    return int(value)
                except ValueError:
                    pass
            raise InputError(f"{where}: expected an integer, found {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool):
            raise InputError(f"{where}: expected a number, found {value!r}")
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise InputError(f"{where}: expected a number, found {value!r}") from None
        if not math.isfinite(out):
            raise InputError(f"{where}: expected a finite number, found {value!r}")
        return out
    if hint is str:
        if not isinstance(value, str):
            raise InputError(f"{where}: expected a string, found {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint} at {where}")
