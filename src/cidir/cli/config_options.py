"""Command-line options generated from the config dataclasses, so the CLI mirrors them.

Every scalar field ``section.name`` becomes ``--section-name`` (e.g. ``--training-iterations``,
``--model-width``); booleans get ``--x`` / ``--no-x``; ``--regularizer
NAME:LAMBDA_MIN:LAMBDA_MAX[:MAPPING[:ALPHA_INDEX]]`` (repeatable) replaces the regularizer
list; ``--set section.key=value`` sets anything. Precedence: defaults < ``--preset NAME`` <
``--config FILE`` < ``--set`` < options.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from cidir.config import (
    MAPPINGS,
    REGULARIZERS,
    ModelConfig,
    ObjectiveConfig,
    RegularizerTerm,
    RunConfig,
    SelectionConfig,
    TrainingConfig,
    tomllib,
)
from cidir.config_help import CHOICES, option_help
from cidir.errors import InputError

SECTIONS = {
    "model": ModelConfig,
    "objective": ObjectiveConfig,
    "training": TrainingConfig,
    "selection": SelectionConfig,
}


def _dest(section: str, name: str) -> str:
    return f"cfg__{section}__{name}"


def add_config_options(parser: argparse.ArgumentParser, sections: tuple[str, ...]) -> None:
    """Add ``--preset``, ``--config``, ``--set`` and one option per scalar field of the given
    sections."""
    from cidir.presets import names

    parser.add_argument("--preset", metavar="NAME",
                        help=f"a named configuration ({', '.join(names())}; 'paper': the "
                             "paper's settings) that --config and the options below override")
    parser.add_argument("--config", metavar="FILE.toml",
                        help="configuration file (TOML); options below override it")
    parser.add_argument("--set", metavar="SECTION.KEY=VALUE", action="append", default=[],
                        help="set any configuration value (repeatable), e.g. "
                             "--set training.learning_rate=3e-4")
    for section in sections:
        cls = SECTIONS[section]
        group = parser.add_argument_group(f"{section} configuration ([{section}] in the file)")
        hints = typing.get_type_hints(cls)
        defaults = cls()
        for f in dataclasses.fields(cls):
            _add_field_option(group, section, f.name, hints[f.name], getattr(defaults, f.name))


def _add_field_option(group: argparse._ArgumentGroup, section: str, name: str, hint: Any,
                      default: Any) -> None:
    """``--section-name`` for one config field, its help from :mod:`cidir.config_help`."""
    key, flag, dest = f"{section}.{name}", f"--{section}-{name.replace('_', '-')}", \
        _dest(section, name)
    if name == "regularizers":
        group.add_argument(
            "--regularizer", dest=dest, action="append",
            metavar="NAME:LMIN:LMAX[:MAPPING[:INDEX]]",
            help="a regularizer and its weight range λ(α) (repeatable; replaces the list); "
                 f"NAME one of {', '.join(REGULARIZERS)}; MAPPING one of "
                 f"{', '.join(MAPPINGS)} (log: λ = LMIN·(LMAX/LMIN)^α, linear: λ = LMAX·α, "
                 "constant: λ = LMAX); INDEX: the entry of α driving it (default 0); λ in "
                 "units of the pair's λ_b when objective.calibration is pilot; default "
                 + ", ".join(f"{t.name}:{t.lambda_min:g}:{t.lambda_max:g}:{t.mapping}"
                             for t in default))
    elif hint is bool:
        group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction,
                           default=None, help=_escaped(option_help(key, default)))
    elif typing.get_origin(hint) is tuple:
        group.add_argument(flag, dest=dest, metavar="N,N,...",
                           help=_escaped("comma-separated; " + option_help(key, default)))
    else:
        group.add_argument(flag, dest=dest, type=hint, default=None,
                           choices=CHOICES.get(key),
                           metavar=None if key in CHOICES else hint.__name__.upper(),
                           help=_escaped(option_help(key, default)))


def _escaped(text: str) -> str:
    """argparse formats help with %: a literal % is written %%."""
    return text.replace("%", "%%")


def parse_regularizer(text: str) -> dict[str, Any]:
    parts = text.split(":")
    if not 3 <= len(parts) <= 5:
        raise InputError(f"--regularizer {text!r}: expected NAME:LAMBDA_MIN:LAMBDA_MAX"
                         "[:MAPPING[:ALPHA_INDEX]]")
    out: dict[str, Any] = {"name": parts[0]}
    try:
        out["lambda_min"] = float(parts[1])
        out["lambda_max"] = float(parts[2])
        if len(parts) > 3:
            out["mapping"] = parts[3]
        if len(parts) > 4:
            out["alpha_index"] = int(parts[4])
    except ValueError:
        raise InputError(f"--regularizer {text!r}: LAMBDA_MIN, LAMBDA_MAX must be numbers and "
                         "ALPHA_INDEX an integer") from None
    RegularizerTerm(**out)  # validates the values
    return out


def _parse_set(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise InputError(f"--set {item!r}: expected SECTION.KEY=VALUE")
    key, value = item.split("=", 1)
    try:  # TOML value syntax: numbers, booleans, strings, arrays
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.strip(), parsed


def config_from_args(args: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
    """The resolved config: defaults (or ``base``), then ``--preset``, ``--config``, ``--set``
    and the options."""
    if base is None:
        preset = getattr(args, "preset", None)
        base = RunConfig.from_preset(preset) if preset else RunConfig()
        if getattr(args, "config", None):
            base = RunConfig.load(args.config, base)
    config = base
    overrides: dict[str, Any] = dict(_parse_set(s) for s in getattr(args, "set", []) or [])
    for key, value in vars(args).items():
        if not key.startswith("cfg__") or value is None:
            continue
        _, section, name = key.split("__")
        if name == "regularizers":
            value = [parse_regularizer(v) for v in value]
        elif isinstance(value, str) and typing.get_origin(
                typing.get_type_hints(SECTIONS[section])[name]) is tuple:
            try:
                value = [int(v) for v in value.split(",") if v.strip()]
            except ValueError:
                raise InputError(f"--{section}-{name.replace('_', '-')}: expected "
                                 f"comma-separated integers, found {value!r}") from None
        overrides[f"{section}.{name}"] = value
    return config.with_overrides(overrides) if overrides else config
