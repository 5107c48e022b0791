"""The report's figures (matplotlib, Agg canvas; the caller's pyplot state is untouched).

Display convention: 3D images are shown as three central slices. Axial: x (patient left in
LPS) to the right — the radiological view — and y (posterior) downwards, so anterior is at the
top. Coronal and sagittal: superior at the top. Pixels are drawn with their physical aspect
(spacing). 2D images: x to the right, y downwards.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cidir.geometry import Grid


@dataclass(frozen=True)
class SliceView:
    """A 2D view of a (z, y, x) array: how to cut it, and its physical extent."""

    name: str
    cut: tuple  # index expression into the (z, y, x) array
    extent: tuple[float, float, float, float]  # left, right, bottom, top in mm (from index 0)
    origin: str  # "upper" or "lower" for imshow
    transpose: bool = False


def slice_views(grid: Grid) -> list[SliceView]:
    """The central axial, coronal and sagittal views (3D) or the single view (2D)."""
    sp = grid.spacing
    if grid.ndim == 2:
        nx, ny = grid.size
        return [SliceView("image", (slice(None), slice(None)),
                          (0, nx * sp[0], ny * sp[1], 0), "upper")]
    nx, ny, nz = grid.size
    cx, cy, cz = nx // 2, ny // 2, nz // 2
    return [
        SliceView("axial", (cz, slice(None), slice(None)), (0, nx * sp[0], ny * sp[1], 0),
                  "upper"),
        SliceView("coronal", (slice(None), cy, slice(None)), (0, nx * sp[0], 0, nz * sp[2]),
                  "lower"),
        SliceView("sagittal", (slice(None), slice(None), cx), (0, ny * sp[1], 0, nz * sp[2]),
                  "lower"),
    ]


def _new_figure(rows: int, cols: int, width: float = 3.6, height: float = 3.4):
    fig = Figure(figsize=(width * cols, height * rows), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def to_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _show(ax, array: np.ndarray, view: SliceView, **kwargs):
    data = array[view.cut]
    im = ax.imshow(data, extent=view.extent, origin=view.origin, interpolation="nearest",
                   **kwargs)
    ax.set_xlabel("mm")
    ax.set_ylabel("mm")
    return im


def intensity_window(array: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(array, [1, 99])
    return float(lo), float(hi if hi > lo else lo + 1)


def alpha_curves(rows: Sequence[dict], chosen: float) -> bytes:
    """Mean Dice (± standard error), % folding and TRE (if any) against α; chosen α marked."""
    alphas = np.array([r["alpha"] for r in rows])
    has_tre = any(r.get("tre_mm") is not None for r in rows)
    fig, axes = _new_figure(1, 3 if has_tre else 2, width=4.2, height=3.2)
    dice = np.array([r["dice"] for r in rows])
    se = np.array([r.get("dice_se", 0.0) for r in rows])
    ax = axes[0, 0]
    ax.plot(alphas, dice, "o-", color="tab:blue")
    ax.fill_between(alphas, dice - se, dice + se, color="tab:blue", alpha=0.2)
    ax.set_ylabel("mean Dice")
    ax = axes[0, 1]
    ax.plot(alphas, [r["folding_percent"] for r in rows], "o-", color="tab:red")
    ax.set_ylabel("% det J ≤ 0")
    if has_tre:
        ax = axes[0, 2]
        ax.plot(alphas, [r.get("tre_mm") for r in rows], "o-", color="tab:green")
        ax.set_ylabel("mean TRE (mm)")
    for ax in axes[0]:
        ax.axvline(chosen, color="k", linestyle="--", linewidth=1)
        ax.set_xlabel("α")
        ax.annotate(f"chosen α = {chosen:.3g}", xy=(chosen, 0.97),
                    xycoords=("data", "axes fraction"),
                    ha="center", va="top", fontsize=8,
                    bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8})
    return to_png(fig)


def image_panels(grid: Grid, images: dict[str, np.ndarray], window: tuple[float, float],
                 cmap: str = "gray", symmetric: bool = False) -> bytes:
    """One row per image (fixed, moving, warped, ...), one column per view."""
    views = slice_views(grid)
    fig, axes = _new_figure(len(images), len(views))
    for row, (title, array) in enumerate(images.items()):
        for col, view in enumerate(views):
            im = _show(axes[row, col], array, view, cmap=cmap, vmin=window[0], vmax=window[1])
            axes[row, col].set_title(f"{title} — {view.name}", fontsize=9)
        if symmetric:
            fig.colorbar(im, ax=axes[row, -1], fraction=0.046)
    return to_png(fig)


def checkerboard(a: np.ndarray, b: np.ndarray, tiles: int = 8) -> np.ndarray:
    """Alternate tiles of a and b (same shape), ``tiles`` per axis."""
    index = np.indices(a.shape)
    parity = sum((idx * tiles // max(n, 1)) for idx, n in zip(index, a.shape, strict=True)) % 2
    return np.where(parity == 0, a, b)


def jacobian_panel(grid: Grid, det: np.ndarray) -> bytes:
    """log2 det J on a diverging map centred at 0 (det = 1); det ≤ 0 in black."""
    views = slice_views(grid)
    fig, axes = _new_figure(1, len(views))
    with np.errstate(divide="ignore", invalid="ignore"):
        logdet = np.log2(np.where(det > 0, det, np.nan))
    limit = float(np.nanpercentile(np.abs(logdet), 99.5)) if np.isfinite(logdet).any() else 1.0
    limit = max(limit, 1e-3)
    for col, view in enumerate(views):
        ax = axes[0, col]
        im = _show(ax, logdet, view, cmap="coolwarm", vmin=-limit, vmax=limit)
        folded = (det[view.cut] <= 0).astype(float)
        if folded.any():
            ax.imshow(np.ma.masked_where(folded == 0, folded), extent=view.extent,
                      origin=view.origin, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"log2 det J — {view.name}", fontsize=9)
    fig.colorbar(im, ax=axes[0, -1], fraction=0.046, label="log2 det J (0: no volume change)")
    return to_png(fig)


def deformed_grid(grid: Grid, fixed: np.ndarray, field_voxels: np.ndarray,
                  window: tuple[float, float], lines: int = 24) -> bytes:
    """Grid lines of the fixed domain moved by the in-plane displacement, over the fixed slice.

    ``field_voxels``: displacement in voxel units of each axis, (z, y, x, D) with components
    (x, y[, z]) — the in-plane components are drawn at the slice's physical scale.
    """
    views = slice_views(grid)
    fig, axes = _new_figure(1, len(views))
    sp = np.asarray(grid.spacing)
    for col, view in enumerate(views):
        ax = axes[0, col]
        _show(ax, fixed, view, cmap="gray", vmin=window[0], vmax=window[1])
        disp = field_voxels[view.cut]
        # in-plane axes (horizontal, vertical) of this view as voxel-axis numbers
        h_axis, v_axis = {"axial": (0, 1), "coronal": (0, 2), "sagittal": (1, 2),
                          "image": (0, 1)}[view.name]
        rows, cols = disp.shape[:2]
        dh = disp[..., h_axis] * sp[h_axis]
        dv = disp[..., v_axis] * sp[v_axis]
        hh, vv = np.meshgrid(np.arange(cols) * sp[h_axis], np.arange(rows) * sp[v_axis])
        step_r = max(rows // lines, 1)
        step_c = max(cols // lines, 1)
        for r in range(0, rows, step_r):
            ax.plot(hh[r] + dh[r], vv[r] + dv[r], color="yellow", linewidth=0.6)
        for c in range(0, cols, step_c):
            ax.plot(hh[:, c] + dh[:, c], vv[:, c] + dv[:, c], color="yellow", linewidth=0.6)
        ax.set_xlim(view.extent[0], view.extent[1])
        ax.set_ylim(view.extent[2], view.extent[3])
        ax.set_title(f"deformed grid — {view.name}", fontsize=9)
    return to_png(fig)


def label_overlay(grid: Grid, fixed: np.ndarray, fixed_labels: np.ndarray,
                  warped_labels: np.ndarray, window: tuple[float, float]) -> bytes:
    """Fixed-label contours (green) and warped moving-label contours (red) on the fixed slice."""
    views = slice_views(grid)
    fig, axes = _new_figure(1, len(views))
    for col, view in enumerate(views):
        ax = axes[0, col]
        _show(ax, fixed, view, cmap="gray", vmin=window[0], vmax=window[1])
        for labels, color in ((fixed_labels, "lime"), (warped_labels, "red")):
            data = labels[view.cut]
            for value in np.unique(data):
                if value == 0:
                    continue
                ax.contour((data == value).astype(float), levels=[0.5], colors=color,
                           linewidths=0.7, extent=view.extent, origin=view.origin)
        ax.set_title(f"labels: fixed (green) vs warped (red) — {view.name}", fontsize=8)
    return to_png(fig)


def loss_curves(history: Sequence[dict]) -> bytes:
    """Every logged loss term against the iteration."""
    keys = [k for k in history[0] if k not in ("iteration", "seconds")]
    fig, axes = _new_figure(1, len(keys), width=3.2, height=2.8)
    its = [row["iteration"] for row in history]
    for ax, key in zip(axes[0], keys, strict=True):
        ax.plot(its, [row.get(key, np.nan) for row in history])
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("iteration")
        if key not in ("similarity", "total") and all(row.get(key, 0) > 0 for row in history):
            ax.set_yscale("log")
    return to_png(fig)
