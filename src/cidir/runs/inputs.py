"""The run's record of its input files (``inputs.json``), portable and checksummed.

Format ``cidir-inputs/2``::

    {"format": "cidir-inputs/2", "run_id": ..., "model_sha256": ...,
     "inputs": {"fixed": {"path": ..., "from_run": ..., "sha256": ..., "bytes": ...}, ...,
                "init": {"method": "rigid"}}}

``path`` is relative to the run folder (POSIX separators) when the file lies inside it, else
absolute; ``from_run`` is the path relative to the run folder also for files outside it
(``../data/fixed.nii.gz``), so that moving the run folder together with its inputs keeps
them found. A DICOM series folder is checksummed over its files (names and contents). When
an input is missing at both places, or its checksum differs, readers stop with
``input fixed image moved or deleted (expected at ..., sha256 ...)`` or ``... changed since
the fit``. Files of the older format (plain absolute paths) are still read, unchecked.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from cidir.alignment.initial import METHODS as INIT_METHODS
from cidir.errors import InputError
from cidir.runs.identity import sha256_file

FORMAT = "cidir-inputs/2"
WHAT = {"fixed": "fixed image", "moving": "moving image", "fixed_mask": "fixed mask",
        "moving_mask": "moving mask", "init": "initial transform",
        "fixed_labels": "fixed labels", "moving_labels": "moving labels",
        "fixed_points": "fixed points", "moving_points": "moving points"}


def path_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a folder's files (sorted names and their digests)."""
    if not path.is_dir():
        return sha256_file(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f.relative_to(path).as_posix().encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def record(path: str | os.PathLike, run_dir: Path) -> dict[str, Any]:
    """The entry of one input file: its paths (see the module docstring) and checksum."""
    p = Path(path).absolute()
    run = run_dir.absolute()
    entry: dict[str, Any] = {}
    try:
        entry["path"] = p.relative_to(run).as_posix()
    except ValueError:
        entry["path"] = str(p.resolve())
        try:
            entry["from_run"] = Path(os.path.relpath(p.resolve(), run.resolve())).as_posix()
        except ValueError:  # another drive (Windows)
            pass
    entry["sha256"] = path_sha256(p)
    entry["bytes"] = _size(p)
    return entry


def record_init(init: str, run_dir: Path) -> dict[str, Any]:
    key = init.strip().lower()
    if key in INIT_METHODS:
        return {"method": key}
    return {"method": "file", **record(init, run_dir)}


def resolve(entry: Any, run_dir: Path, name: str) -> Path:
    """The path of a recorded input, found and checked (InputError when moved or changed)."""
    what = WHAT.get(name, name)
    if isinstance(entry, str):  # older inputs.json: an absolute path, no checksum
        return Path(entry)
    if not isinstance(entry, dict) or "path" not in entry:
        raise InputError(f"{run_dir / 'inputs.json'}: entry {name!r} is malformed; refit")
    recorded = Path(entry["path"])
    candidates = [recorded if recorded.is_absolute() else run_dir / recorded]
    if entry.get("from_run"):
        candidates.append(run_dir / entry["from_run"])
    sha = entry.get("sha256")
    for path in candidates:
        if not path.exists():
            continue
        if sha and path_sha256(path) != sha:
            raise InputError(f"input {what} {path}: changed since the fit (sha256 "
                             f"{path_sha256(path)[:12]}, recorded {sha[:12]}); restore it or "
                             "refit")
        return path
    raise InputError(f"input {what} moved or deleted (expected at {candidates[0]}, sha256 "
                     f"{str(sha)[:12]}); put it back, or move the run folder together with "
                     "its inputs")


def init_label(entry: Any) -> str:
    """``none``/``moments``/``rigid``/``affine`` or ``file`` (also for older records)."""
    if isinstance(entry, dict):
        return str(entry.get("method", "none"))
    return entry if entry in INIT_METHODS else "file"
