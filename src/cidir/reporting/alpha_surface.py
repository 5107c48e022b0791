"""The α search of a model conditioned on several hyperparameters, as maps over the plane of
α1 and α2: the rule's score (mean Dice, boundary error or TRE) and the folding percentage
at every point the search scored — the coarse product grid and the refinements around the
best point (:func:`cidir.selection.alpha_space.explore`) — filled between the points by
linear interpolation on their triangulation. The chosen point is starred, the points the
rule could not tell from it are ringed. A model with K > 2 hyperparameters is shown over
its first two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cidir.reporting.alpha_figures import alignment_score
from cidir.reporting.figures import _new_figure, to_png
from cidir.selection.alpha_space import Alpha, components, format_alpha


def alpha_surface(rows: Sequence[Mapping[str, Any]], chosen: Alpha, rule: str,
                  tied: Sequence[Alpha] | None = None) -> bytes:
    """PNG: the rule's score and the folding % over (α1, α2), one panel each (module
    docstring); ``tied``: the α tied with the choice (ringed)."""
    points = np.array([components(r["alpha"])[:2] for r in rows], dtype=float)
    score = alignment_score(rows, rule)
    folding = np.array([float(r["folding_percent"]) for r in rows])
    panels = [("voxels with det J ≤ 0 (%)", folding, "Reds")]
    if score is not None:
        label, values = score
        cmap = "viridis" if "higher is better" in label else "viridis_r"
        panels.insert(0, (label, values, cmap))
    fig, axes = _new_figure(1, len(panels), width=4.4, height=3.8)
    ringed = np.array([components(a)[:2] for a in (tied or [])], dtype=float).reshape(-1, 2)
    star = components(chosen)[:2]
    for ax, (label, values, cmap) in zip(axes[0], panels, strict=True):
        _filled(ax, fig, points, values, cmap, label)
        ax.plot(points[:, 0], points[:, 1], "k.", markersize=3, label="scored point")
        if len(ringed):
            ax.plot(ringed[:, 0], ringed[:, 1], "o", mfc="none", color="red", markersize=8,
                    markeredgewidth=1.2, label="tied with the choice")
        ax.plot(*star, "*", color="magenta", markersize=15, markeredgecolor="k",
                label=f"chosen α = {format_alpha(chosen)}")
        ax.set(xlim=(-0.03, 1.03), ylim=(-0.03, 1.03), aspect="equal")
        ax.set_xlabel("α1 (first hyperparameter; 0 = weakest)", fontsize=8)
        ax.set_ylabel("α2 (second hyperparameter; 0 = weakest)", fontsize=8)
        finite = values[np.isfinite(values)]
        constant = len(finite) > 0 and float(np.ptp(finite)) == 0
        ax.set_title(f"{label}: {finite[0]:.3g} at every point" if constant else label,
                     fontsize=9)
    axes[0, 0].legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3,
                      framealpha=0.85)
    return to_png(fig, f"Scores over the α plane (selection by {rule})")


def _filled(ax: Any, fig: Any, points: np.ndarray, values: np.ndarray, cmap: str,
            label: str) -> None:
    """Colour the plane by ``values``: filled contours of their triangulation when there are
    three points not on one line and the values vary, coloured points otherwise."""
    finite = np.isfinite(values)
    x, y, v = points[finite, 0], points[finite, 1], values[finite]
    spread = np.linalg.matrix_rank(np.c_[x - x.mean(), y - y.mean()]) if len(x) else 0
    if len(v) >= 3 and spread == 2 and float(np.ptp(v)) > 0:
        filled = ax.tricontourf(x, y, v, levels=14, cmap=cmap)
    else:
        filled = ax.scatter(x, y, c=v, cmap=cmap, s=60, marker="s")
    fig.colorbar(filled, ax=ax, fraction=0.046, pad=0.04, label=label)
