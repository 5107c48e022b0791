"""The report's figures (matplotlib ``Figure`` + Agg canvas; pyplot and the caller's backend are
never touched). Every function returns PNG bytes.

Display convention (3D): three slices through the grid centre, on the anatomical axes nearest
to the voxel axes (from the direction cosines, LPS):

- axial: patient left on the viewer's right (radiological view: LPS +x to the right), anterior
  at the top (+y, posterior, downwards);
- coronal: patient left on the right, superior (+z) at the top;
- sagittal: anterior on the left, posterior on the right, superior at the top.

Pixels are drawn with their physical size (spacing), and axis ticks give the position in mm
from the grid's first voxel along each voxel axis; a voxel axis that runs against its
anatomical direction is shown with a reversed axis, never by flipping data. 2D images: x to
the right, y downwards.

All slice arrays are 2D, indexed [vertical, horizontal] voxel index of their :class:`SliceView`.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from cidir.geometry import Grid

DPI = 90


# ---------------------------------------------------------------------------------- views
@dataclass(frozen=True)
class SliceView:
    """A 2D view of a grid: which voxel axis is cut where, and how the other two are shown.

    Voxel axes are numbered in (x, y, z) order. ``axis`` is None in 2D.
    """

    name: str
    axis: int | None
    index: int
    h: int  # voxel axis shown horizontally
    v: int  # voxel axis shown vertically
    h_size: int
    v_size: int
    h_spacing: float
    v_spacing: float
    h_reversed: bool  # voxel index increases to the left
    v_down: bool  # voxel index increases downwards
    h_label: str
    v_label: str

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """imshow extent (origin 'lower'): voxel i's centre at i·spacing mm on each axis."""
        return (-0.5 * self.h_spacing, (self.h_size - 0.5) * self.h_spacing,
                -0.5 * self.v_spacing, (self.v_size - 0.5) * self.v_spacing)

    def orient_axes(self, ax) -> None:
        """Set limits (their order gives the display direction), labels and equal aspect."""
        left, right, bottom, top = self.extent
        ax.set_xlim((right, left) if self.h_reversed else (left, right))
        ax.set_ylim((top, bottom) if self.v_down else (bottom, top))
        ax.set_aspect("equal")
        ax.set_xlabel(self.h_label, fontsize=8)
        ax.set_ylabel(self.v_label, fontsize=8)
        ax.tick_params(labelsize=7)

    def cut(self, array: np.ndarray) -> np.ndarray:
        """This view's slice of a full (z, y, x[, C]) / (y, x[, C]) array → [vertical, horizontal
        (, C)]."""
        if self.axis is not None:
            array = np.take(array, self.index, axis=2 - self.axis)
        return self._in_plane(array)

    def arrange(self, plane: np.ndarray) -> np.ndarray:
        """An array on :meth:`slice_grid` ((z, y, x[, C]) with the cut axis of size 1, or
        (y, x[, C]) in 2D) → [vertical, horizontal(, C)]."""
        if self.axis is not None:
            plane = np.take(plane, 0, axis=2 - self.axis)
        return self._in_plane(plane)

    def _in_plane(self, plane: np.ndarray) -> np.ndarray:
        # the two remaining voxel axes are in (z, y, x) order: descending voxel-axis number
        return plane if self.v > self.h else np.swapaxes(plane, 0, 1)

    def slice_grid(self, grid: Grid) -> Grid:
        """The grid of this slice's voxels (size 1 along the cut axis), same world positions."""
        if self.axis is None:
            return grid
        size = list(grid.size)
        size[self.axis] = 1
        start = [0] * grid.ndim
        start[self.axis] = self.index
        return grid.region(tuple(start), tuple(size))


def slice_views(grid: Grid) -> list[SliceView]:
    """Central axial, coronal and sagittal views (3D, see the module docstring), or the 2D view."""
    sp, n = grid.spacing, grid.size
    if grid.ndim == 2:
        return [SliceView("image", None, 0, 0, 1, n[0], n[1], sp[0], sp[1], False, True,
                          "x (mm)", "y (mm)")]
    world, sign = grid.nearest_world_axes()
    vox = {int(w): j for j, w in enumerate(world)}  # world axis → voxel axis
    positive = {w: sign[vox[w]] > 0 for w in range(3)}

    def view(name: str, cut_w: int, h_w: int, v_w: int, h_right: bool, v_down: bool,
             h_label: str, v_label: str) -> SliceView:
        k, h, v = vox[cut_w], vox[h_w], vox[v_w]
        # h_right / v_down: the world axis' positive direction goes right / down
        return SliceView(name, k, n[k] // 2, h, v, n[h], n[v], sp[h], sp[v],
                         h_reversed=positive[h_w] != h_right,
                         v_down=positive[v_w] == v_down, h_label=h_label, v_label=v_label)

    x_label = "x (mm), patient right → left"
    z_label = "z (mm), superior ↑"
    return [
        view("axial", 2, 0, 1, True, True, x_label, "y (mm), posterior ↓"),
        view("coronal", 1, 0, 2, True, False, x_label, z_label),
        view("sagittal", 0, 1, 2, True, False, "y (mm), anterior → posterior", z_label),
    ]


# ---------------------------------------------------------------------------------- helpers
def _new_figure(rows: int, cols: int, width: float = 3.6, height: float = 3.4):
    """A Figure on its own Agg canvas and a rows × cols array of axes."""
    fig = Figure(figsize=(width * cols, height * rows), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def to_png(fig: Figure, title: str | None = None) -> bytes:
    """Lay out, render and encode a figure."""
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _show(ax, plane: np.ndarray, view: SliceView, **kwargs):
    """imshow a [vertical, horizontal] plane in physical coordinates."""
    im = ax.imshow(plane, extent=view.extent, origin="lower", interpolation="nearest",
                   **kwargs)
    view.orient_axes(ax)
    return im


def intensity_window(array: np.ndarray, max_samples: int = 1_000_000) -> tuple[float, float]:
    """1st and 99th percentiles of (a regular subsample of) the finite values."""
    flat = np.asarray(array, dtype=np.float64).ravel()
    if flat.size > max_samples:
        flat = flat[:: flat.size // max_samples + 1]
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(flat, [1, 99])
    return float(lo), float(hi if hi > lo else lo + 1.0)


def symmetric_limit(planes: Sequence[np.ndarray], percentile: float = 99.0) -> float:
    """A symmetric colour limit: the percentile of |values| over all planes (> 0)."""
    values = np.abs(np.concatenate([np.ravel(p) for p in planes]))
    values = values[np.isfinite(values)]
    limit = float(np.percentile(values, percentile)) if values.size else 0.0
    return limit if limit > 0 else 1.0


# ---------------------------------------------------------------------------------- figures
def image_panels(views: Sequence[SliceView], rows: Mapping[str, Sequence[np.ndarray]],
                 limits: tuple[float, float], title: str, cmap: str = "gray",
                 colorbar_label: str | None = None,
                 outlines: Sequence[np.ndarray] | None = None) -> bytes:
    """One row per named image (its planes, one per view), one column per view; a single
    view (2D) is laid out side by side instead, one column per named image. One shared
    intensity scale, with a colour bar per row when ``colorbar_label`` is given (one in all
    for a single view). ``outlines``: a boolean plane per view (the fixed mask), its outline
    drawn dashed on every panel of that view."""
    side = len(views) == 1
    fig, axes = _new_figure(1, len(rows)) if side else _new_figure(len(rows), len(views))
    for r, (name, planes) in enumerate(rows.items()):
        im = ax = None
        for c, (view, plane) in enumerate(zip(views, planes, strict=True)):
            ax = axes[0, r] if side else axes[r, c]
            im = _show(ax, plane, view, cmap=cmap, vmin=limits[0], vmax=limits[1])
            ax.set_title(name if side else f"{name} — {view.name}", fontsize=9)
            if outlines is not None:
                _outline(ax, outlines[c], view)
        if colorbar_label and im is not None and (not side or r == len(rows) - 1):
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=colorbar_label)
    if outlines is not None:
        axes[0, 0].legend(handles=[Line2D([], [], color=OUTLINE, linestyle="--",
                                          label="fixed mask outline")],
                          fontsize=7, loc="lower right")
    return to_png(fig, title)


OUTLINE = "#111111"


def _outline(ax, mask: np.ndarray, view: SliceView) -> None:
    """The outline of a boolean [vertical, horizontal] plane, dashed, in physical units."""
    mask = np.asarray(mask, bool)
    if mask.any() and not mask.all():
        ax.contour(mask.astype(np.float32), levels=[0.5], colors=OUTLINE, linewidths=1.0,
                   linestyles="--", extent=view.extent, origin="lower")
    view.orient_axes(ax)


def checkerboard(a: np.ndarray, b: np.ndarray, view: SliceView, tiles: int = 8) -> np.ndarray:
    """Square tiles (equal size in mm, ``tiles`` along the longer side) alternating a and b."""
    tile_mm = max(view.h_size * view.h_spacing, view.v_size * view.v_spacing) / tiles
    rows = (np.arange(a.shape[0]) * view.v_spacing // tile_mm).astype(int)
    cols = (np.arange(a.shape[1]) * view.h_spacing // tile_mm).astype(int)
    parity = (rows[:, None] + cols[None, :]) % 2
    return np.where(parity == 0, a, b)


def jacobian_panel(views: Sequence[SliceView], dets: Sequence[np.ndarray]) -> bytes:
    """log2 det J on a diverging map centred at 0 (det J = 1, no volume change); det J ≤ 0
    (folding) in black; colour bar."""
    fig, axes = _new_figure(1, len(views), width=3.8)
    logs = []
    for det in dets:
        with np.errstate(divide="ignore", invalid="ignore"):
            logs.append(np.log2(np.where(det > 0, det, np.nan)))
    finite = np.concatenate([np.abs(x[np.isfinite(x)]) for x in logs])
    limit = max(float(np.percentile(finite, 99.5)) if finite.size else 0.0, 0.1)
    im = None
    for ax, view, det, logdet in zip(axes[0], views, dets, logs, strict=True):
        im = _show(ax, logdet, view, cmap="coolwarm", vmin=-limit, vmax=limit)
        folded = det <= 0
        if folded.any():
            ax.imshow(np.ma.masked_where(~folded, np.ones_like(det)), extent=view.extent,
                      origin="lower", cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"{view.name}: {100.0 * folded.mean():.2f}% det J ≤ 0", fontsize=9)
    fig.colorbar(im, ax=axes[0, -1], fraction=0.046, pad=0.04,
                 label="log2 det J (−: compression, +: expansion)")
    fig.axes[-1].yaxis.label.set_fontsize(8)
    axes[0, 0].legend(handles=[Patch(color="black", label="det J ≤ 0 (folding)")],
                      fontsize=7, loc="lower right")
    return to_png(fig, "Jacobian determinant of φ at the chosen α")


def deformed_grid(views: Sequence[SliceView], fixed: Sequence[np.ndarray],
                  displacement: Sequence[np.ndarray], limits: tuple[float, float],
                  lines: int = 24) -> bytes:
    """Grid lines of the fixed domain moved by the in-plane displacement, over the fixed slices.

    ``displacement``: per view, [vertical, horizontal, 2] in mm along the view's (h, v) voxel
    axes. Lines are ``max side / lines`` mm apart (rounded to whole voxels)."""
    fig, axes = _new_figure(1, len(views))
    for ax, view, plane, disp in zip(axes[0], views, fixed, displacement, strict=True):
        _show(ax, plane, view, cmap="gray", vmin=limits[0], vmax=limits[1])
        step_mm = max(view.h_size * view.h_spacing, view.v_size * view.v_spacing) / lines
        step_h = max(int(round(step_mm / view.h_spacing)), 1)
        step_v = max(int(round(step_mm / view.v_spacing)), 1)
        hh, vv = np.meshgrid(np.arange(view.h_size) * view.h_spacing,
                             np.arange(view.v_size) * view.v_spacing)
        ph, pv = hh + disp[..., 0], vv + disp[..., 1]
        segments = [np.column_stack([ph[r], pv[r]]) for r in range(0, view.v_size, step_v)]
        segments += [np.column_stack([ph[:, c], pv[:, c]])
                     for c in range(0, view.h_size, step_h)]
        ax.add_collection(LineCollection(segments, colors="yellow", linewidths=0.6))
        view.orient_axes(ax)
        peak = float(np.sqrt((disp**2).sum(-1)).max()) if disp.size else 0.0
        ax.set_title(f"{view.name}: max in-plane |u| {peak:.1f} mm", fontsize=9)
    return to_png(fig, "Deformed grid (grid lines moved by u)")


def label_overlay(views: Sequence[SliceView], fixed: Sequence[np.ndarray],
                  fixed_labels: Sequence[np.ndarray], warped_labels: Sequence[np.ndarray],
                  limits: tuple[float, float], labels: Sequence[int] | None = None) -> bytes:
    """Fixed-label contours (green) and warped moving-label contours (red) on the fixed slices,
    of ``labels`` only (default: every non-zero label)."""
    fig, axes = _new_figure(1, len(views))
    for ax, view, plane, fl, wl in zip(axes[0], views, fixed, fixed_labels, warped_labels,
                                       strict=True):
        _show(ax, plane, view, cmap="gray", vmin=limits[0], vmax=limits[1])
        for label_map, color in ((fl, "lime"), (wl, "red")):
            values = np.unique(label_map) if labels is None else labels
            for value in values:
                mask = label_map == value
                if value == 0 or mask.all() or not mask.any():
                    continue
                ax.contour(mask.astype(np.float32), levels=[0.5], colors=color,
                           linewidths=0.8, extent=view.extent, origin="lower")
        view.orient_axes(ax)
        ax.set_title(view.name, fontsize=9)
    axes[0, 0].legend(handles=[Line2D([], [], color="lime", label="fixed labels"),
                               Line2D([], [], color="red", label="warped moving labels")],
                      fontsize=7, loc="lower right")
    return to_png(fig, "Label contours at the chosen α")


def loss_curves(history: Sequence[Mapping]) -> bytes:
    """Every logged loss term against the iteration (log scale for positive regularizers)."""
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in ("iteration", "seconds") and k not in keys]
    fig, axes = _new_figure(1, max(len(keys), 1), width=3.2, height=3.0)
    its = [row.get("iteration", i) for i, row in enumerate(history)]
    for ax, key in zip(axes[0], keys, strict=False):
        values = np.array([float(row.get(key, np.nan)) for row in history])
        ax.plot(its, values, color="tab:blue", linewidth=1)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss (unitless)" if key in ("similarity", "total") else "penalty")
        finite = values[np.isfinite(values)]
        if key not in ("similarity", "total") and finite.size and (finite > 0).all():
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    return to_png(fig, "Training loss (each iteration draws its own α)")
