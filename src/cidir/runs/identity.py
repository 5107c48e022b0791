"""Run identity: which fit a file belongs to.

Every fit draws a run id (a random UUID, 32 hex digits) when it starts. The id is written
into the model file's metadata (``run_id``, next to ``sha256``, the checksum of its
tensors), into ``config.toml`` (a first comment line ``# cidir run <id>``), and as
``run_id`` + ``model_sha256`` into every JSON file of the run (``inputs.json``,
``metrics.json``, ``selection.json``, ``evaluation.json``, ``dirlab.json``). CSV files are
covered by the SHA-256 that the JSON written with them records (``metrics.json`` →
``loss.csv``, ``selection.json`` → ``alpha_table.csv``); ``report.html`` carries a
``<meta name="cidir-run-id">``; images written by ``apply``/``export`` carry it in their
header (``cidir_run_id`` in MHA/NRRD, ``descrip`` in NIfTI), elastix parameter files in a
comment. Readers compare a file's id with the model's and refuse a file of another fit.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cidir.errors import InputError

CONFIG_TAG = "# cidir run "
_ID = re.compile(r"^[0-9a-f]{32}$")


def new_run_id() -> str:
    return uuid.uuid4().hex


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def config_text(toml: str, run_id: str) -> str:
    """``config.toml``'s text: the id as a comment line, then the resolved config."""
    return f"{CONFIG_TAG}{run_id}\n{toml}"


def config_run_id(text: str) -> str | None:
    """The run id of a ``config.toml`` text (None when it has none: written before ids)."""
    first = text.split("\n", 1)[0]
    if first.startswith(CONFIG_TAG):
        return first[len(CONFIG_TAG):].strip()
    return None


@dataclass(frozen=True)
class RunIdentity:
    """The fit a run folder holds: its id and the SHA-256 of its model's tensors."""

    run_id: str
    model_sha256: str

    def stamp(self) -> dict[str, str]:
        """The keys every JSON file of this fit starts with."""
        return {"run_id": self.run_id, "model_sha256": self.model_sha256}

    def short(self) -> str:
        return self.run_id[:8]

    def check_id(self, found: str | None, path: Path, remedy: str) -> None:
        """InputError unless ``found`` (the id a file records) is this run's."""
        if found == self.run_id:
            return
        what = f"run {found[:8]}" if found else "no run id"
        raise InputError(f"{path}: belongs to another fit ({what}; this run's model.safetensors "
                         f"is run {self.short()}); {remedy}")

    def check_json(self, data: dict[str, Any], path: Path, remedy: str) -> None:
        """Check a JSON file's ``run_id`` and, when present, ``model_sha256``."""
        self.check_id(data.get("run_id"), path, remedy)
        sha = data.get("model_sha256")
        if sha is not None and sha != self.model_sha256:
            raise InputError(f"{path}: was made with another model (sha256 {str(sha)[:12]}, "
                             f"model.safetensors has {self.model_sha256[:12]}); {remedy}")

    def check_file_sha(self, data: dict[str, Any], path: Path, remedy: str) -> None:
        """Check ``path`` against the SHA-256 that ``data["files"][path.name]`` records."""
        expected = (data.get("files") or {}).get(path.name)
        if expected is not None and path.is_file() and sha256_file(path) != expected:
            raise InputError(f"{path}: does not match the checksum its run recorded (changed "
                             f"or left from another fit); {remedy}")


def is_run_id(value: Any) -> bool:
    return isinstance(value, str) and bool(_ID.match(value))
