"""Saving and loading trained models as safetensors (never pickle).

The file holds the network's tensors and, as string metadata, everything needed to rebuild
the transform: the format version, the resolved run config (TOML), the fixed grid, the
initial affine, the run id (``run_id``, see :mod:`cidir.runs.identity`), a SHA-256 of the
tensors (``sha256``) and one of the metadata (``metadata_sha256``), so that a tampered or
corrupted file is refused, whichever part was changed. Files of format ``cidir-model/1``
(without ``metadata_sha256``) are still read.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from cidir.config import RunConfig
from cidir.errors import InputError
from cidir.fields import ConditionedTransform
from cidir.geometry import Grid
from cidir.io.atomic import atomic_path
from cidir.models import DeformationModel

FORMAT = "cidir-model/2"
FORMATS_READ = ("cidir-model/1", FORMAT)


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(str(t.dtype).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _metadata_digest(metadata: dict[str, str]) -> str:
    h = hashlib.sha256()
    for key in sorted(metadata):
        if key != "metadata_sha256":
            h.update(f"{key}={metadata[key]}\n".encode())
    return h.hexdigest()


def save_model(path: str | Path, transform: ConditionedTransform, config: RunConfig,
               extra: dict[str, str] | None = None) -> None:
    """Write the transform's model, config and geometry to ``path`` (atomic)."""
    tensors = {k: v.detach().cpu().contiguous()
               for k, v in transform.model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "config": config.to_toml(),
        "grid": transform.grid.to_json(),
        "init_matrix": json.dumps(transform.init_matrix.tolist()),
        "ndim": str(transform.ndim),
        "num_conditions": str(transform.model.num_conditions),
        "sha256": _digest(tensors),
        **(extra or {}),
    }
    metadata["metadata_sha256"] = _metadata_digest(metadata)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a cidir model file (checked to be one)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file {path}: not found")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"model file {path}: not a readable safetensors file ({exc})") from None
    if metadata.get("format") not in FORMATS_READ:
        raise InputError(f"model file {path}: expected format {FORMAT}, found "
                         f"{metadata.get('format')!r}")
    if metadata["format"] != FORMATS_READ[0] and \
            metadata.get("metadata_sha256") != _metadata_digest(metadata):
        raise InputError(f"model file {path}: its metadata do not match their recorded "
                         "checksum (modified or corrupted after saving)")
    return metadata


def load_model(path: str | Path, device: str | torch.device = "cpu",
               expected_config: RunConfig | None = None) -> tuple[ConditionedTransform, RunConfig]:
    """Rebuild the transform saved by :func:`save_model`.

    Raises InputError when the file is truncated or corrupt, its tensors do not match their
    recorded checksum (tampered), or ``expected_config`` is given and differs from the file's.
    """
    path = Path(path)
    metadata = read_metadata(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"model file {path}: truncated or corrupt ({exc})") from None
    if _digest(tensors) != metadata.get("sha256"):
        raise InputError(f"model file {path}: tensors do not match their recorded checksum "
                         "(modified or corrupted after saving)")
    config = RunConfig.from_toml(metadata.get("config", ""), f"{path} (embedded config)")
    if expected_config is not None and expected_config.to_dict() != config.to_dict():
        raise InputError(f"model file {path}: trained with a different config than "
                         "the run's config.toml")
    try:
        grid = Grid.from_dict(json.loads(metadata["grid"]))
        ndim, conditions = int(metadata["ndim"]), int(metadata["num_conditions"])
        init = np.asarray(json.loads(metadata["init_matrix"]), float)
        if grid.ndim != ndim or init.shape != (ndim + 1, ndim + 1) or \
                not np.all(np.isfinite(init)):
            raise ValueError(f"grid {grid.ndim}D, ndim {ndim}, init matrix {init.shape}")
        model = DeformationModel(config.model, ndim, conditions)
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"model file {path}: malformed metadata ({exc})") from None
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise InputError(f"model file {path}: tensors do not fit the recorded config "
                         f"({str(exc).splitlines()[0]})") from None
    model.eval()
    return ConditionedTransform(model.to(device), grid, init), config
