"""The figures of the α search: the rule's score (Dice with its error band, boundary error,
or the L-curve), folding % and TRE against α; and the alignment–regularity curve — how
alignment trades against the regularity of φ over the whole α range of one training, a
curve a retraining method pays one fit per point for.

Alignment–regularity: one point per α of the selection's table: the alignment score the
rule used (mean Dice of the warped labels; the boundary error for the surface rule; mean TRE
when the rule was tre; the similarity S for the label-free L-curve rule) against the folding
percentage and against the standard deviation of log det ∇φ, both on the selection's sampled
points; colour runs with α, the chosen α ringed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cidir.reporting.figures import _new_figure, to_png
from cidir.selection.alpha_space import Alpha, components, format_alpha


def alpha_curves(rows: Sequence[Mapping], chosen: float, rule: str = "dice") -> bytes:
    """Mean Dice (± standard error band; the boundary error for rule surface, the L-curve for
    rule lcurve), % folding and mean TRE (if any) against α; the chosen α marked by a
    vertical line and annotated."""
    alphas = np.array([float(r["alpha"]) for r in rows])
    tre = np.array([np.nan if r.get("tre_mm") is None else float(r["tre_mm"]) for r in rows])
    has_tre = bool(np.isfinite(tre).any())
    fig, axes = _new_figure(1, 3 if has_tre else 2, width=4.0, height=3.3)
    if rule == "lcurve":
        _lcurve_panel(axes[0, 0], rows, chosen)
    elif rule == "surface":
        _surface_panel(axes[0, 0], alphas, rows)
    else:
        _dice_panel(axes[0, 0], alphas, rows)
    ax = axes[0, 1]
    folding = np.array([float(r["folding_percent"]) for r in rows])
    ax.plot(alphas, folding, "o-", color="tab:red", markersize=4)
    top = float(np.nanmax(folding)) if np.isfinite(folding).any() else 0.0
    ax.set_ylim(0.0, max(1.15 * top, 0.1))
    ax.set_ylabel("voxels with det J ≤ 0 (%)")
    ax.set_title("folding", fontsize=9)
    if has_tre:
        ax = axes[0, 2]
        ax.plot(alphas, tre, "o-", color="tab:green", markersize=4)
        ax.set_ylabel("mean TRE (mm)")
        ax.set_title("landmark error", fontsize=9)
    for ax in axes[0, 1 if rule == "lcurve" else 0:]:
        ax.axvline(chosen, color="k", linestyle="--", linewidth=1)
        ax.set_xlabel("α (regularization, 0 = weakest, 1 = strongest)", fontsize=8)
        ax.set_xlim(min(alphas.min(), chosen) - 0.03, max(alphas.max(), chosen) + 0.03)
        ax.annotate(f"chosen α = {chosen:.3g}", xy=(chosen, 0.97),
                    xycoords=("data", "axes fraction"), ha="center", va="top", fontsize=8,
                    bbox={"boxstyle": "round", "fc": "white", "alpha": 0.85})
        ax.grid(alpha=0.3)
    return to_png(fig, f"Scores against α (selection by {rule})")


def _dice_panel(ax: Any, alphas: np.ndarray, rows: Sequence[Mapping]) -> None:
    dice = np.array([float(r["dice"]) for r in rows])
    se = np.array([float(r.get("dice_se") or 0.0) for r in rows])
    ax.fill_between(alphas, dice - se, dice + se, color="tab:blue", alpha=0.25,
                    label="± 1 standard error")
    ax.plot(alphas, dice, "o-", color="tab:blue", markersize=4, label="mean Dice")
    ax.set_ylabel("mean Dice over labels (0–1)")
    ax.set_title("Dice of warped labels", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")


def _surface_panel(ax: Any, alphas: np.ndarray, rows: Sequence[Mapping]) -> None:
    ax.plot(alphas, [float(r["surface_mm"]) for r in rows], "o-", color="tab:blue",
            markersize=4)
    ax.set_ylabel("mean boundary error (mm)")
    ax.set_title("distance between label boundaries", fontsize=9)


def _lcurve_panel(ax: Any, rows: Sequence[Mapping], chosen: float) -> None:
    """The L-curve: similarity S (x) against log10 regularizer energy R (y), one point per
    α, the chosen α ringed."""
    s = np.array([float(r["similarity"]) for r in rows])
    energy = np.log10(np.maximum([float(r["energy"]) for r in rows], 1e-30))
    ax.plot(s, energy, "o-", color="tab:blue", markersize=4)
    pick = int(np.argmin([abs(float(r["alpha"]) - chosen) for r in rows]))
    ax.plot(s[pick], energy[pick], "o", markersize=10, mfc="none", color="k",
            label=f"corner, α = {chosen:.3g}")
    ax.set_xlabel("similarity S (lower is better)", fontsize=8)
    ax.set_ylabel("log10 regularizer energy R")
    ax.set_title("L-curve over α", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def alignment_score(rows: Sequence[Mapping[str, Any]], rule: str
                    ) -> tuple[str, np.ndarray] | None:
    """(axis label, values) of the alignment the curve shows; None when the table has none."""
    def column(key: str) -> np.ndarray:
        return np.array([np.nan if r.get(key) is None else float(r[key]) for r in rows])

    candidates = {"tre": [("tre_mm", "mean TRE (mm, lower is better)")],
                  "surface": [("surface_mm", "boundary error (mm, lower is better)")]
                  }.get(rule, [])
    candidates += [("dice", "mean Dice (higher is better)"),
                   ("tre_mm", "mean TRE (mm, lower is better)"),
                   ("similarity", "similarity S (lower is better)")]
    for key, label in candidates:
        values = column(key)
        if np.isfinite(values).any():
            return label, values
    return None


def tradeoff_curves(rows: Sequence[Mapping[str, Any]], chosen: Alpha,
                    rule: str) -> bytes | None:
    """PNG of alignment against folding % and against std log det ∇φ; None when the table
    lacks the alignment or the regularity columns (selections by an older cidir)."""
    score = alignment_score(rows, rule)
    std_log = np.array([np.nan if r.get("std_log_jacobian") is None
                        else float(r["std_log_jacobian"]) for r in rows])
    if score is None or not np.isfinite(std_log).any():
        return None
    label, values = score
    points = np.array([components(r["alpha"]) for r in rows], dtype=float)  # (N, K)
    alphas = points.mean(axis=1)  # the colour: α, or the mean of its values
    folding = np.array([float(r["folding_percent"]) for r in rows])
    pick = int(np.argmin(np.linalg.norm(points - np.array(components(chosen)), axis=1)))
    fig, axes = _new_figure(1, 2, width=4.0, height=3.3)
    for ax, x, name in ((axes[0, 0], folding, "voxels with det J ≤ 0 (%)"),
                        (axes[0, 1], std_log, "std of log det J")):
        ax.plot(x, values, "-", color="0.6", linewidth=1, zorder=1)
        dots = ax.scatter(x, values, c=alphas, cmap="viridis", vmin=0, vmax=1, s=22, zorder=2)
        ax.plot(x[pick], values[pick], "o", markersize=11, mfc="none", color="k",
                label=f"chosen α = {format_alpha(chosen)}")
        ax.set_xlabel(name, fontsize=8)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.colorbar(dots, ax=axes[0, 1], fraction=0.046, pad=0.04,
                 label="α" if points.shape[1] == 1 else "mean of α1 … αK")
    return to_png(fig, "Alignment against regularity over α (one training)")
