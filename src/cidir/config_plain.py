"""Config dataclasses to and from plain data (dicts, lists, scalars), checking types.

Unknown keys and wrong types raise :class:`~cidir.errors.InputError` naming the dotted key.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from cidir.errors import InputError


def to_plain(obj: Any) -> Any:
    """Dataclasses as nested dicts, tuples as lists (what TOML and JSON hold)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [to_plain(v) for v in obj]
    return obj


def from_plain(cls: Any, data: Any, where: str) -> Any:
    """An instance of the dataclass ``cls`` from plain data; errors name the key."""
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
        return from_plain(hint, value, where)
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
