"""One registration pair as the benchmark sees it, stored as a folder of NIfTI files + JSON.

Every image keeps its grid (mm, LPS). Frames and conventions:

- ``init_matrix``: (D+1)×(D+1) homogeneous matrix, FIXED world (mm) → MOVING world (mm),
  the common initial alignment given to every method (identity when not needed);
- ``fixed_points`` / ``moving_points``: (N, D) world mm, corresponding landmarks;
- ``gt_field``: ground-truth displacement, grid.shape + (D,), mm, fixed → moving (phantom);
- selection labels choose α / the weight; evaluation labels judge the result (they may be
  the same label maps with other label ids).

Folders are written by the parent process and read by each worker subprocess (no pickle).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cidir.geometry import Image
from cidir.io.images import (
    read_image,
    read_label_map,
    read_vector_image,
    write_image,
    write_vector_image,
)

_IMAGES = ("fixed", "moving")
_LABEL_MAPS = ("fixed_mask", "moving_mask", "fixed_sel", "moving_sel", "fixed_eval",
               "moving_eval", "fold_mask")


@dataclass(eq=False)
class PairData:
    """A benchmark pair (see the module docstring for frames)."""

    task: str
    name: str
    fixed: Image
    moving: Image
    fixed_sel: Image
    moving_sel: Image
    sel_labels: list[int]
    fixed_eval: Image
    moving_eval: Image
    eval_labels: list[int]
    fixed_mask: Image | None = None  # where cidir samples points, elastix/ANTs metric mask
    moving_mask: Image | None = None
    fold_mask: Image | None = None  # where folding % is counted (fixed grid)
    init_matrix: np.ndarray | None = None
    fixed_points: np.ndarray | None = None
    moving_points: np.ndarray | None = None
    gt_field: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    @property
    def ndim(self) -> int:
        return self.fixed.ndim

    @property
    def init(self) -> np.ndarray:
        """The initial fixed → moving matrix (identity when none)."""
        d = self.ndim
        return np.eye(d + 1) if self.init_matrix is None else np.asarray(self.init_matrix)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"task": self.task, "name": self.name, "sel_labels": self.sel_labels,
                "eval_labels": self.eval_labels, "info": self.info, "files": []}
        for key in _IMAGES:
            write_image(getattr(self, key), folder / f"{key}.nii.gz", dtype=np.float32)
            meta["files"].append(key)
        for key in _LABEL_MAPS:
            img = getattr(self, key)
            if img is not None:
                write_image(img.with_array(np.asarray(img.array).astype(np.int32)),
                            folder / f"{key}.nii.gz", dtype=np.int32)
                meta["files"].append(key)
        if self.init_matrix is not None:
            meta["init_matrix"] = np.asarray(self.init_matrix).tolist()
        for key in ("fixed_points", "moving_points"):
            pts = getattr(self, key)
            if pts is not None:
                meta[key] = np.asarray(pts, float).tolist()
        if self.gt_field is not None:
            write_vector_image(np.asarray(self.gt_field, np.float64), self.fixed.grid,
                               folder / "gt_field.nii.gz")
            meta["files"].append("gt_field")
        (folder / "pair.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        return folder


def load_pair(folder: str | Path) -> PairData:
    """Read a folder written by :meth:`PairData.save`."""
    folder = Path(folder)
    meta = json.loads((folder / "pair.json").read_text(encoding="utf-8"))
    files = set(meta["files"])
    kw: dict = {}
    for key in _IMAGES:
        kw[key] = read_image(folder / f"{key}.nii.gz", key)
    for key in _LABEL_MAPS:
        kw[key] = read_label_map(folder / f"{key}.nii.gz", key) if key in files else None
    for key in ("fixed_points", "moving_points", "init_matrix"):
        kw[key] = np.asarray(meta[key], float) if key in meta else None
    kw["gt_field"] = (read_vector_image(folder / "gt_field.nii.gz")[0].astype(np.float64)
                      if "gt_field" in files else None)
    return PairData(task=meta["task"], name=meta["name"], sel_labels=meta["sel_labels"],
                    eval_labels=meta["eval_labels"], info=meta.get("info", {}), **kw)
