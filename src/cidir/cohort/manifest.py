"""The cohort manifest: one CSV row per image pair, validated whole before anything runs.

Columns: ``id``, ``fixed``, ``moving`` (required) and optionally ``fixed_mask``,
``moving_mask``, ``fixed_labels``, ``moving_labels``, ``fixed_points``, ``moving_points``,
``init`` (none | moments | rigid | affine | an ITK transform file), ``init_model`` (a run
folder whose trained network starts the pair's fit: a warm start, e.g. the previous scan of
the same patient; docs/beyond.md) and ``set`` (per-pair configuration overrides,
``section.key=value;section.key=value``). Paths are relative to the
manifest's folder unless absolute; an empty cell means "not given".

Every problem of the manifest (unknown or missing column, empty or duplicate id, an id that
cannot name a folder, a missing file, a label or point file without its partner, an unknown
init, a bad override) is collected and reported in one :class:`~cidir.errors.InputError`
naming the row and column of each, before any pair is run or anything is written.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cidir.config import RunConfig, tomllib
from cidir.errors import InputError

REQUIRED = ("id", "fixed", "moving")
PATH_COLUMNS = ("fixed", "moving", "fixed_mask", "moving_mask", "fixed_labels",
                "moving_labels", "fixed_points", "moving_points")
COLUMNS = (*REQUIRED, *PATH_COLUMNS[2:], "init", "init_model", "set")
INIT_METHODS = ("none", "moments", "rigid", "affine")
PARTNERS = (("fixed_labels", "moving_labels"), ("fixed_points", "moving_points"))
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class PairSpec:
    """One row of the manifest, resolved: absolute paths (None when not given)."""

    id: str
    row: int  # 1-based data row (the header is row 0)
    paths: dict[str, Path | None]
    init: str = "none"  # a method name or an absolute transform-file path
    overrides: dict[str, Any] = field(default_factory=dict)
    init_model: Path | None = None  # a run folder whose network starts the fit

    def path(self, name: str) -> Path | None:
        return self.paths.get(name)


def parse_overrides(text: str) -> dict[str, Any]:
    """``section.key=value;...`` → {key: value}; values in TOML syntax (else strings)."""
    out: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        if "=" not in item:
            raise InputError(f"expected SECTION.KEY=VALUE, found {item!r}")
        key, value = (s.strip() for s in item.split("=", 1))
        try:
            out[key] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = value
    return out


def read_manifest(path: str | Path, config: RunConfig) -> list[PairSpec]:
    """The manifest's pairs; InputError listing every problem (row and column of each)."""
    path = Path(path)
    rows = _read_rows(path)
    problems: list[str] = []
    pairs: list[PairSpec] = []
    first_row: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        where = f"row {number}" + (f" (id {row.get('id')})" if row.get("id") else "")
        found = _check_row(row, path.parent, config, where, problems)
        ident = (row.get("id") or "").strip()
        if ident in first_row:
            problems.append(f"{where}, column id: duplicate id {ident!r} (first in row "
                            f"{first_row[ident]})")
        elif ident:
            first_row[ident] = number
        if found is not None:
            paths, init, overrides, init_model = found
            pairs.append(PairSpec(ident, number, paths, init, overrides, init_model))
    if problems:
        raise InputError(f"manifest {path}: {len(problems)} problem(s): " + "; ".join(problems))
    return pairs


def _read_rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            raw = list(reader)
    except FileNotFoundError:
        raise InputError(f"manifest {path}: not found") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"manifest {path}: not a readable CSV file ({exc})") from None
    unknown = [h for h in header if h not in COLUMNS]
    missing = [c for c in REQUIRED if c not in header]
    if unknown or missing:
        parts = ([f"unknown column(s) {unknown}"] if unknown else []) + (
            [f"missing column(s) {missing}"] if missing else [])
        raise InputError(f"manifest {path}, header: {'; '.join(parts)} (columns: "
                         f"{', '.join(COLUMNS)})")
    extra = [n for n, r in enumerate(raw, start=1) if None in r]
    if extra:
        raise InputError(f"manifest {path}, row {extra[0]}: more cells than the header has "
                         f"columns ({len(header)})")
    rows = [{k.strip(): (v or "").strip() for k, v in r.items()} for r in raw]
    if not rows:
        raise InputError(f"manifest {path}: no pairs (expected one row per pair)")
    return rows


def _check_row(row: dict[str, str], root: Path, config: RunConfig, where: str,
               problems: list[str]
               ) -> tuple[dict[str, Path | None], str, dict, Path | None] | None:
    """The row's resolved paths, init, overrides and init model; problems appended (None if
    any)."""
    before = len(problems)
    ident = row.get("id", "")
    if not ident:
        problems.append(f"{where}, column id: empty (every pair needs an id)")
    elif not ID_PATTERN.match(ident):
        problems.append(f"{where}, column id: {ident!r} cannot name a folder (letters, digits, "
                        "'.', '_', '-'; up to 128 characters)")
    paths: dict[str, Path | None] = {}
    for column in PATH_COLUMNS:
        value = row.get(column, "")
        if not value:
            paths[column] = None
            if column in REQUIRED:
                problems.append(f"{where}, column {column}: empty (required)")
            continue
        resolved = _resolved(root, value)
        paths[column] = resolved
        if not resolved.exists():
            problems.append(f"{where}, column {column}: no such file {resolved}")
    for a, b in PARTNERS:
        if (paths[a] is None) != (paths[b] is None):
            given, other = (a, b) if paths[a] is not None else (b, a)
            problems.append(f"{where}, column {other}: empty while {given} is given (they go "
                            "together)")
    init = _check_init(row.get("init", ""), root, where, problems)
    overrides = _check_overrides(row.get("set", ""), config, where, problems)
    init_model = _check_init_model(row.get("init_model", ""), root, where, problems)
    return (paths, init, overrides, init_model) if len(problems) == before else None


def _resolved(root: Path, value: str) -> Path:
    """A manifest cell's path: relative to the manifest's folder ``root`` unless absolute."""
    return (root / value).resolve() if not Path(value).is_absolute() else Path(value)


def _check_init(value: str, root: Path, where: str, problems: list[str]) -> str:
    if not value or value in INIT_METHODS:
        return value or "none"
    resolved = _resolved(root, value)
    if not resolved.is_file():
        problems.append(f"{where}, column init: expected {'|'.join(INIT_METHODS)} or a "
                        f"transform file, found {value!r} (no such file {resolved})")
    return str(resolved)


def _check_init_model(value: str, root: Path, where: str, problems: list[str]) -> Path | None:
    """The run folder of column ``init_model`` (None when empty); whether its network fits
    the pair's configuration is checked when the pair is fitted (the pair then fails with
    the reason, before anything is written)."""
    if not value:
        return None
    resolved = _resolved(root, value)
    if not (resolved / "model.safetensors").is_file():
        problems.append(f"{where}, column init_model: expected a run folder with a trained "
                        f"model (model.safetensors), found none in {resolved}")
    return resolved


def _check_overrides(value: str, config: RunConfig, where: str,
                     problems: list[str]) -> dict[str, Any]:
    try:
        overrides = parse_overrides(value)
        if overrides:
            config.with_overrides(overrides)
    except InputError as exc:
        problems.append(f"{where}, column set: {exc}")
        return {}
    return overrides
