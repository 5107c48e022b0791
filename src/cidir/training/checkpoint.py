"""Training checkpoints: the complete state of a :class:`~cidir.training.Trainer` in one
safetensors file (never pickle), written atomically.

Tensors: ``model.<name>`` (the network), ``optimizer.<param index>.<key>`` (Adam's moments
and step counts), ``generator`` (the torch Generator state, uint8). Metadata (strings):
``format``, ``iteration`` (iterations completed), ``elapsed_seconds``, ``history`` (the loss
rows so far, JSON), ``calibration`` (the pair's λ scales and their measurement, JSON),
``optimizer`` (param groups and non-tensor state, JSON), any ``extra`` keys of the caller,
and ``sha256`` over all of it, so that a truncated or altered checkpoint is refused rather
than resumed from.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from cidir.errors import InputError
from cidir.io.atomic import atomic_path

FORMAT = "cidir-checkpoint/1"


def _digest(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    for key in sorted(metadata):
        if key != "sha256":
            h.update(f"{key}={metadata[key]}\n".encode())
    return h.hexdigest()


def _flatten(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split a trainer state into tensors and a JSON-able remainder."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in state["model"].items()}
    tensors["generator"] = state["generator"].cpu().contiguous()
    opt_state: dict[str, dict[str, Any]] = {}
    for index, entries in state["optimizer"]["state"].items():
        plain = {}
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain[key] = value
        opt_state[str(index)] = plain
    optimizer = {"param_groups": state["optimizer"]["param_groups"], "state": opt_state}
    return tensors, optimizer


def save_checkpoint(path: str | Path, state: dict[str, Any],
                    extra: dict[str, str] | None = None) -> None:
    """Write a trainer state (:meth:`Trainer.state_dict`) to ``path`` atomically."""
    tensors, optimizer = _flatten(state)
    metadata = {
        "format": FORMAT,
        "iteration": str(int(state["iteration"])),
        "elapsed_seconds": repr(float(state["elapsed_seconds"])),
        "history": json.dumps(state["history"]),
        "calibration": json.dumps(state.get("calibration")),
        "optimizer": json.dumps(optimizer),
        **(extra or {}),
    }
    metadata["sha256"] = _digest(tensors, metadata)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def _unflatten(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> dict[str, Any]:
    optimizer = json.loads(meta["optimizer"])
    opt_state: dict[int, dict[str, Any]] = {}
    for index, plain in optimizer["state"].items():
        opt_state[int(index)] = dict(plain)
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            opt_state.setdefault(int(index), {})[key] = value
    return {
        "model": {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")},
        "optimizer": {"state": opt_state, "param_groups": optimizer["param_groups"]},
        "generator": tensors["generator"],
        "iteration": int(meta["iteration"]),
        "elapsed_seconds": float(meta["elapsed_seconds"]),
        "history": json.loads(meta["history"]),
        "calibration": json.loads(meta.get("calibration", "null")),
    }


def load_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, str]]:
    """(trainer state, metadata) from :func:`save_checkpoint`; InputError when the file is
    missing, truncated, altered or not a cidir checkpoint."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path}: not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"checkpoint {path}: truncated or corrupt ({exc})") from None
    if meta.get("format") != FORMAT:
        raise InputError(f"checkpoint {path}: expected format {FORMAT}, found "
                         f"{meta.get('format')!r}")
    if _digest(tensors, meta) != meta.get("sha256"):
        raise InputError(f"checkpoint {path}: does not match its recorded checksum (altered "
                         "or corrupted after saving)")
    try:
        return _unflatten(tensors, meta), meta
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"checkpoint {path}: malformed ({exc})") from None
