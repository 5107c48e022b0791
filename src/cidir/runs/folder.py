"""The run folder: every file a run reads and writes, by name, in one place.

A run is one folder::

    config.toml        the resolved configuration (every value, defaults included)
    model.safetensors  the trained network + config + fixed grid + initial affine
    inputs.json        absolute paths of the inputs (images, masks, labels, points, init)
    metrics.json       fit metrics (time, iterations, final loss, machine)
    loss.csv           the loss terms every ``training.log_every`` iterations
    init_transform.tfm the initial affine (ITK format), when one was used
    alpha_table.csv    one row per α: Dice ± se, folding %, TRE, per-label Dice
    selection.json     the chosen α and how it was chosen
    evaluation.json    TRE / Dice / folding at an α (``cidir evaluate``)
    report.html        with report/*.png (``cidir report``)

Every file is written atomically (:mod:`cidir.io.atomic`).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import torch

from cidir.config import RunConfig
from cidir.errors import InputError
from cidir.fields import ConditionedTransform
from cidir.io.atomic import write_json, write_text
from cidir.io.model_store import load_model, save_model


class RunFolder:
    """Paths and readers/writers of one run's files."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

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

    # ------------------------------------------------------------------ checks
    def require_trained(self) -> None:
        """InputError unless the folder holds a trained model and its config."""
        if not self.path.is_dir():
            raise InputError(f"run folder {self.path}: not found (create it with `cidir fit`)")
        for p in (self.model_path, self.config_path):
            if not p.is_file():
                raise InputError(f"run folder {self.path}: {p.name} is missing "
                                 "(was `cidir fit` completed?)")

    # ------------------------------------------------------------------ readers
    def load_config(self) -> RunConfig:
        return RunConfig.load(self.config_path)

    def load_transform(self, device: torch.device | str = "cpu") -> ConditionedTransform:
        """The trained transform; refused when the model does not match config.toml."""
        self.require_trained()
        transform, _ = load_model(self.model_path, device, expected_config=self.load_config())
        return transform

    def read_json(self, path: Path) -> dict[str, Any]:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{path}: not found") from None
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON ({exc})") from None

    def inputs(self) -> dict[str, Any]:
        return self.read_json(self.inputs_path) if self.inputs_path.is_file() else {}

    def selected_alpha(self) -> float:
        """The α chosen by ``cidir select``; InputError when there is none yet."""
        if not self.selection_path.is_file():
            raise InputError(f"run {self.path}: no selection.json; run `cidir select` first "
                             "or pass --alpha")
        return float(self.read_json(self.selection_path)["alpha"])

    def selection(self) -> dict[str, Any] | None:
        return self.read_json(self.selection_path) if self.selection_path.is_file() else None

    def loss_history(self) -> list[dict[str, float]]:
        if not self.loss_path.is_file():
            return []
        with open(self.loss_path, encoding="utf-8") as f:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]

    # ------------------------------------------------------------------ writers
    def save_model(self, transform: ConditionedTransform, config: RunConfig) -> None:
        save_model(self.model_path, transform, config)

    def write_config(self, config: RunConfig) -> None:
        write_text(self.config_path, config.to_toml())

    def write_json(self, path: Path, data: dict[str, Any]) -> None:
        write_json(path, data)

    def update_inputs(self, **paths: Any) -> None:
        data = self.inputs()
        data.update({k: v for k, v in paths.items() if v is not None})
        write_json(self.inputs_path, data)

    def write_csv(self, path: Path, rows: list[dict[str, Any]]) -> None:
        if not rows:
            write_text(path, "")
            return
        buffer = io.StringIO()
        fields = list(rows[0].keys())
        for row in rows[1:]:
            fields += [k for k in row if k not in fields]
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text(path, buffer.getvalue())
