"""The run folder: every file a run reads and writes, by name, in one place.

A run is one folder::

    config.toml        the resolved configuration (every value, defaults included); its
                       first line ``# cidir run <id>`` names the fit
    model.safetensors  the trained network + config + fixed grid + initial affine + run id,
                       checksummed (tensors and metadata)
    inputs.json        the inputs (images, masks, init; labels and points from ``select``):
                       path relative to the run folder when inside it, else absolute, the
                       path from the run folder, SHA-256 and size (:mod:`cidir.runs.inputs`)
    metrics.json       fit metrics (time, iterations, final loss, machine), SHA-256 of
                       loss.csv and init_transform.tfm
    loss.csv           the loss terms every ``training.log_every`` iterations
    fit.log            the fit's course in plain text: inputs' grids, device, calibration,
                       the loss every 1/20 of the iterations, interruptions, resumptions
                       (appended as it goes, not atomic: a log; :mod:`cidir.runs.fit_log`)
    init_transform.tfm the initial affine (ITK format), when one was used
    alpha_table.csv    one row per α: Dice ± se, folding %, TRE, per-label Dice
    selection.json     the chosen α and how it was chosen (SHA-256 of alpha_table.csv)
    evaluation.json    TRE / Dice / folding at an α (``cidir evaluate``)
    report.html        with report/*.png (``cidir report``)
    .cidir.lock        while a command writes into the run (:mod:`cidir.runs.lock`)
    .fit-<id>/         a fit in progress or interrupted (:mod:`cidir.runs.staging`):
                       its files, fit.json and checkpoint.safetensors (for ``--resume``)
    .commit.json       while a finished fit is being switched in

Every JSON file records the fit it belongs to (``run_id``, ``model_sha256``) and readers
refuse files of another fit (:mod:`cidir.runs.identity`). Every file but fit.log is written
atomically (:mod:`cidir.io.atomic`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from cidir.config import RunConfig
from cidir.errors import InputError
from cidir.fields import ConditionedTransform
from cidir.geometry import Grid, Image
from cidir.io.atomic import write_json, write_text
from cidir.io.model_store import load_model, read_metadata
from cidir.runs import inputs as input_records
from cidir.runs import staging
from cidir.runs.identity import RunIdentity, config_run_id, sha256_file
from cidir.runs.lock import RunLock
from cidir.runs.lock import holder as lock_holder
from cidir.selection.alpha_space import Alpha, as_alpha

REFIT = "refit with cidir fit --overwrite"


class RunFolder:
    """Paths and readers/writers of one run's files."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock: RunLock | None = None

    config_path = property(lambda self: self.path / "config.toml")
    model_path = property(lambda self: self.path / "model.safetensors")
    inputs_path = property(lambda self: self.path / "inputs.json")
    metrics_path = property(lambda self: self.path / "metrics.json")
    loss_path = property(lambda self: self.path / "loss.csv")
    init_path = property(lambda self: self.path / "init_transform.tfm")
    alpha_table_path = property(lambda self: self.path / "alpha_table.csv")
    selection_path = property(lambda self: self.path / "selection.json")
    evaluation_path = property(lambda self: self.path / "evaluation.json")
    report_path = property(lambda self: self.path / "report.html")

    # ------------------------------------------------------------------ locking
    @contextlib.contextmanager
    def locked(self, command: str) -> Iterator[RunFolder]:
        """Hold the run's lock (InputError at once when another process holds it)."""
        lock = RunLock(self.path, command).acquire()
        self._lock = lock
        try:
            staging.finish(self.path)
            yield self
        finally:
            self._lock = None
            lock.release()

    def settle(self) -> None:
        """Complete a fit's switch that a killed process left half done."""
        if not staging.pending(self.path):
            return
        if self._lock is not None:
            staging.finish(self.path)
            return
        with RunLock(self.path, "cidir (completing a fit)"):
            staging.finish(self.path)

    # ------------------------------------------------------------------ checks
    def require_trained(self) -> None:
        """InputError unless the folder holds a finished fit whose files agree."""
        if not self.path.is_dir():
            raise InputError(f"run folder {self.path}: not found (create it with `cidir fit`)")
        self.settle()
        if not self.model_path.is_file():
            busy = lock_holder(self.path)
            if busy:
                raise InputError(f"run folder {self.path} is in use by {busy}: its fit has not "
                                 "finished; wait for it")
            interrupted = self.interrupted()
            if interrupted:
                raise InputError(f"run folder {self.path}: its fit was interrupted at "
                                 f"iteration {interrupted}; resume it with: cidir fit "
                                 f"--resume {self.path}")
        for p in (self.model_path, self.config_path):
            if not p.is_file():
                raise InputError(f"run folder {self.path}: {p.name} is missing "
                                 "(was `cidir fit` completed?)")
        self.check_consistent()

    def interrupted(self) -> str | None:
        """``"N/M"`` when the folder holds an interrupted fit with a checkpoint, else None."""
        for folder in staging.staging_folders(self.path):
            checkpoint = folder / staging.CHECKPOINT_NAME
            if checkpoint.is_file():
                try:
                    with safe_open(str(checkpoint), framework="pt") as f:
                        meta = f.metadata() or {}
                    return f"{meta['iteration']}/{meta['iterations']}"
                except (SafetensorError, OSError, KeyError):
                    return "? (unreadable checkpoint)"
        return None

    def identity(self) -> RunIdentity | None:
        """The model's run id and tensor checksum (None for runs written before run ids)."""
        meta = read_metadata(self.model_path)
        if "run_id" not in meta:
            return None
        return RunIdentity(meta["run_id"], meta["sha256"])

    def require_fit(self, run_id: str, what: str) -> None:
        """InputError unless the run holds the fit ``run_id`` (e.g. the one a caller just
        trained and keeps in memory): another process may have refitted it since."""
        ident = self.identity()
        if ident is None or ident.run_id != run_id:
            raise InputError(f"run folder {self.path}: refitted by another process during "
                             f"{what}; run it again")

    def ndim(self) -> int:
        """The dimension (2 or 3) of the run's fixed grid, from the model file."""
        value = read_metadata(self.model_path).get("ndim")
        if value not in ("2", "3"):
            raise InputError(f"{self.model_path}: malformed metadata (ndim {value!r})")
        return int(value)

    def num_conditions(self) -> int:
        """How many hyperparameters the run's model is conditioned on (values of α), from
        the model file."""
        value = read_metadata(self.model_path).get("num_conditions", "1")
        if not value.isdigit() or int(value) < 1:
            raise InputError(f"{self.model_path}: malformed metadata (num_conditions {value!r})")
        return int(value)

    def check_consistent(self) -> None:
        """InputError when config.toml or inputs.json belong to another fit than the model."""
        ident = self.identity()
        if ident is None:
            return
        text = self._read_text(self.config_path)
        ident.check_id(config_run_id(text), self.config_path, REFIT)
        if self.inputs_path.is_file():
            ident.check_json(self.read_json(self.inputs_path), self.inputs_path, REFIT)

    # ------------------------------------------------------------------ readers
    def _read_text(self, path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{path}: expected text, found binary data") from None

    def load_config(self) -> RunConfig:
        return RunConfig.load(self.config_path)

    def load_transform(self, device: torch.device | str = "cpu") -> ConditionedTransform:
        """The trained transform; refused when the model does not match config.toml."""
        self.require_trained()
        transform, _ = load_model(self.model_path, device, expected_config=self.load_config())
        return transform

    def read_json(self, path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{path}: not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise InputError(f"{path}: expected a JSON object, found {type(data).__name__}")
        return data

    def read_derived(self, path: Path, remedy: str) -> dict[str, Any] | None:
        """A JSON file of this fit (None when absent); InputError when of another fit."""
        if not path.is_file():
            return None
        data = self.read_json(path)
        ident = self.identity()
        if ident is not None:
            ident.check_json(data, path, remedy)
        return data

    def inputs(self) -> dict[str, Any]:
        """The recorded inputs by name (entries of :mod:`cidir.runs.inputs`)."""
        if not self.inputs_path.is_file():
            return {}
        data = self.read_json(self.inputs_path)
        if data.get("format") == input_records.FORMAT:
            return dict(data.get("inputs") or {})
        return {k: v for k, v in data.items() if k != "run_id"}  # older: name → path

    def fixed_mask(self, reference: Grid) -> Image | None:
        """The fit's fixed mask (from inputs.json) on ``reference``, None without one."""
        from cidir.io.images import read_mask

        path = self.input_path("fixed_mask")
        return None if path is None else read_mask(path, "fixed mask (from inputs.json)",
                                                   reference=reference)

    def input_path(self, name: str) -> Path | None:
        """A recorded input, found and checked (None when none was recorded)."""
        entry = self.inputs().get(name)
        if entry is None or name == "init":
            return None
        return input_records.resolve(entry, self.path, name)

    def selected_alpha(self) -> Alpha:
        """The α chosen by ``cidir select`` (a float, or a tuple for a model conditioned on
        several hyperparameters); InputError when there is none yet."""
        selection = self.selection()
        if selection is None:
            raise InputError(f"run {self.path}: no selection.json; run `cidir select` first "
                             "or pass --alpha")
        try:
            return as_alpha(selection["alpha"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{self.selection_path}: no valid 'alpha'; rerun cidir select"
                             ) from None

    def selection(self) -> dict[str, Any] | None:
        data = self.read_derived(self.selection_path, "rerun cidir select")
        ident = self.identity()
        if data is not None and ident is not None:
            ident.check_file_sha(data, self.alpha_table_path, "rerun cidir select")
        return data

    def metrics(self) -> dict[str, Any]:
        return self.read_derived(self.metrics_path, REFIT) or {}

    def loss_history(self) -> list[dict[str, float]]:
        if not self.loss_path.is_file():
            return []
        ident = self.identity()
        if ident is not None:
            ident.check_file_sha(self.metrics(), self.loss_path, REFIT)
        try:
            with open(self.loss_path, encoding="utf-8") as f:
                return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            raise InputError(f"{self.loss_path}: malformed ({exc})") from None

    # ------------------------------------------------------------------ writers
    def write_json(self, path: Path, data: dict[str, Any]) -> None:
        """Write a JSON file of this fit, stamped with its identity."""
        ident = self.identity() if self.model_path.is_file() else None
        write_json(path, {**(ident.stamp() if ident else {}), **data})

    def update_inputs(self, **paths: Any) -> None:
        """Record more inputs (labels, points) in inputs.json, with their checksums."""
        data = self.read_json(self.inputs_path) if self.inputs_path.is_file() else {}
        if data.get("format") != input_records.FORMAT:
            data = {"format": input_records.FORMAT, "inputs": self.inputs()}
        for name, path in paths.items():
            if path is not None:
                data["inputs"][name] = input_records.record(path, self.path)
        self.write_json(self.inputs_path, data)

    def write_csv(self, path: Path, rows: list[dict[str, Any]]) -> str:
        """Write rows as CSV atomically; returns the file's SHA-256."""
        write_text(path, csv_text(rows))
        return sha256_file(path)


def csv_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buffer = io.StringIO()
    fields = list(rows[0].keys())
    for row in rows[1:]:
        fields += [k for k in row if k not in fields]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
