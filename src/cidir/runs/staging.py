"""A fit trains into a staging folder and is switched in only when it has succeeded.

``cidir fit`` writes everything into ``RUN/.fit-<run id>/`` (``config.toml``,
``inputs.json``, ``fit.json``, ``init_transform.tfm``, the periodic ``checkpoint.safetensors``,
then ``model.safetensors``, ``loss.csv``, ``metrics.json``); the files already in ``RUN``
stay untouched meanwhile, so an earlier fit stays usable. On success, :func:`commit` writes
the journal ``RUN/.commit.json`` (what to remove, what to move in), removes every file of the
previous fit and everything derived from it (:data:`DERIVED_FILES`), renames the new files
into ``RUN`` (``model.safetensors`` last), deletes the staging folder, then the journal.
:func:`finish` is idempotent: if the process dies mid-way, the next command on the run rolls
the switch forward from the journal. An interrupted fit leaves its staging folder (with its
checkpoint) for ``cidir fit --resume RUN``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

from cidir.errors import InputError
from cidir.io.atomic import write_json

STAGING_PREFIX = ".fit-"
JOURNAL_NAME = ".commit.json"
CHECKPOINT_NAME = "checkpoint.safetensors"
FIT_INFO_NAME = "fit.json"
# written by a fit, in the order they are moved into the run folder (model last)
FIT_FILES = ("config.toml", "inputs.json", "init_transform.tfm", "loss.csv", "metrics.json",
             "fit.log", "model.safetensors")
# made from a fit by later commands: removed when the fit is replaced
DERIVED_FILES = ("alpha_table.csv", "selection.json", "evaluation.json", "report.html",
                 "report", "dirlab.json", CHECKPOINT_NAME)


def staging_folders(run_dir: Path) -> list[Path]:
    """Staging folders of ``run_dir``, the most recently changed first."""
    if not run_dir.is_dir():
        return []
    found = [p for p in run_dir.iterdir() if p.is_dir() and p.name.startswith(STAGING_PREFIX)]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def new_staging(run_dir: Path, run_id: str) -> Path:
    """A fresh staging folder; abandoned ones (the caller holds the lock) are removed."""
    for old in staging_folders(run_dir):
        shutil.rmtree(old, ignore_errors=True)
    path = run_dir / f"{STAGING_PREFIX}{run_id}"
    path.mkdir(parents=True)
    return path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def commit(run_dir: Path, staging: Path) -> None:
    """Replace the run folder's fit by the staged one (see the module docstring)."""
    move = [name for name in FIT_FILES if (staging / name).is_file()]
    remove = [name for name in FIT_FILES + DERIVED_FILES
              if name not in move and (run_dir / name).exists()]
    write_json(run_dir / JOURNAL_NAME, {"staging": staging.name, "remove": remove,
                                        "move": move})
    finish(run_dir)


def pending(run_dir: Path) -> bool:
    """Whether a switch was started and not finished (see :func:`finish`)."""
    return (run_dir / JOURNAL_NAME).is_file()


def finish(run_dir: Path) -> None:
    """Complete the switch recorded in ``RUN/.commit.json`` (no-op without one)."""
    journal = run_dir / JOURNAL_NAME
    if not journal.is_file():
        return
    try:
        plan = json.loads(journal.read_text(encoding="utf-8"))
        staging = run_dir / plan["staging"]
        remove, move = list(plan["remove"]), list(plan["move"])
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        raise InputError(f"{journal}: unreadable; the last fit's switch cannot be completed: "
                         "refit with cidir fit --overwrite") from None
    try:
        for name in remove:
            _remove(run_dir / name)
        for name in move:
            if (staging / name).exists():
                os.replace(staging / name, run_dir / name)
        shutil.rmtree(staging, ignore_errors=True)
        journal.unlink()
    except OSError as exc:
        raise InputError(f"run folder {run_dir}: could not switch in its new fit "
                         f"({exc.strerror or exc}); once that is fixed, any cidir command on "
                         "the run completes the switch") from None
