"""The report's figures from a run: the slice planes each figure shows, computed once, and the
figures with their captions.

Speed: every figure shows the same central slices, so the network is evaluated once at the
chosen α on the voxels of those slices only (displacement, Jacobian determinant) and the
warped image and labels are resampled from that displacement — a few ten thousand points for a
CT volume instead of every voxel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from cidir.fields import (
    ConditionedTransform,
    alpha_spread_map,
    displacement_field,
    jacobian_determinant_map,
    resample_with_field,
)
from cidir.geometry import Image
from cidir.reporting import figures as F
from cidir.reporting.alpha_figures import alpha_curves, tradeoff_curves
from cidir.reporting.alpha_surface import alpha_surface
from cidir.reporting.summary import selection_rule
from cidir.selection.alpha_space import Alpha, as_alpha, components, format_alpha

Figure = tuple[str, bytes, str]  # (file name, PNG bytes, caption)


@dataclass
class ViewData:
    """Everything the figures show in one view, as [vertical, horizontal] planes."""

    fixed: np.ndarray
    moving: np.ndarray  # moving sampled at the same world points (no transform)
    warped: np.ndarray  # moving sampled at φ(x)
    det: np.ndarray  # det ∇φ
    displacement: np.ndarray  # [v, h, 2]: in-plane u (mm) along the view's (h, v) voxel axes
    fixed_labels: np.ndarray | None = None
    warped_labels: np.ndarray | None = None
    mask: np.ndarray | None = None  # the fixed mask (bool)
    spread: np.ndarray | None = None  # the α-uncertainty (mm) over the tied α


def evaluate_view(view: F.SliceView, transform: ConditionedTransform, fixed: Image,
                  moving: Image, alpha: Alpha, fixed_labels: Image | None,
                  moving_labels: Image | None, fixed_mask: Image | None = None,
                  tied_alphas: Sequence[float] | None = None) -> ViewData:
    """Evaluate φ once on the view's voxels and derive every plane from it; with
    ``tied_alphas`` also the α-uncertainty map over them (:func:`alpha_spread_map`)."""
    grid = view.slice_grid(fixed.grid)
    device = transform.device
    field = displacement_field(transform, alpha, grid=grid)
    det = jacobian_determinant_map(transform, alpha, grid=grid)
    warped = resample_with_field(moving, field, grid, device=device).array
    before = resample_with_field(moving, np.zeros_like(field), grid, device=device).array
    # world mm → mm along the voxel axes (orthonormal direction: u_vox = Dᵀ u)
    along_voxel_axes = grid.vectors_to_voxel_axes(field)
    data = ViewData(fixed=view.cut(fixed.array).astype(np.float32),
                    moving=view.arrange(before), warped=view.arrange(warped),
                    det=view.arrange(det),
                    displacement=view.arrange(along_voxel_axes)[..., [view.h, view.v]])
    if fixed_labels is not None and moving_labels is not None:
        data.fixed_labels = view.cut(fixed_labels.array)
        data.warped_labels = view.arrange(
            resample_with_field(moving_labels, field, grid, labels=True, device=device).array)
    if fixed_mask is not None:
        data.mask = view.cut(fixed_mask.array).astype(bool)
    if tied_alphas:
        data.spread = view.arrange(alpha_spread_map(transform, tied_alphas, grid=grid))
    return data


def orientation_text(ndim: int) -> str:
    """How the slices are displayed (a caption sentence)."""
    if ndim == 2:
        return "Display: x to the right, y downwards; axes in mm from the first voxel."
    return ("Display: central slices on the anatomical axes nearest to the voxel axes (LPS). "
            "Axial: radiological view, patient left on the viewer's right, anterior at the "
            "top; coronal: patient left on the right, superior at the top; sagittal: anterior "
            "on the left, superior at the top. Pixels have their physical size; axis ticks "
            "are mm from the grid's first voxel along each voxel axis.")


def _differences(views: list[F.SliceView], data: list[ViewData], a: str,
                 orientation: str) -> Figure:
    diffs = {"before: fixed − moving": [d.fixed - d.moving for d in data],
             "after: fixed − warped": [d.fixed - d.warped for d in data]}
    span = F.symmetric_limit([p for planes in diffs.values() for p in planes])
    masks = [d.mask for d in data]
    has_mask = all(m is not None for m in masks)
    outline = (" Dashed black line: outline of the fixed mask (the region the similarity and "
               "the folding are measured in)." if has_mask else "")
    png = F.image_panels(views, diffs, (-span, span), "Intensity differences", cmap="RdBu_r",
                         colorbar_label="intensity difference",
                         outlines=cast(list[np.ndarray], masks) if has_mask else None)
    return ("differences.png", png,
            f"Differences before (fixed − moving) and after (fixed − warped at α = {a}) "
            f"registration, on one symmetric colour scale (± {span:.4g}, 99th percentile of "
            f"|difference|; white = 0).{outline} {orientation}")


def _image_figures(views: list[F.SliceView], data: list[ViewData], window: tuple[float, float],
                   a: str, orientation: str) -> list[Figure]:
    """The images, their differences and the checkerboards, before and after warping."""
    images = {"fixed": [d.fixed for d in data], "moving": [d.moving for d in data],
              f"warped (α = {a})": [d.warped for d in data]}
    layout = "Columns" if len(views) == 1 else "Rows"
    out = [("images.png", F.image_panels(views, images, window, "Images"),
            f"{layout}: fixed image; moving image at the same world positions (no "
            f"transform); moving image warped into the fixed frame at α = {a} (linear "
            f"interpolation). Shared intensity window: 1st–99th percentile of the fixed "
            f"image ({window[0]:.4g} to {window[1]:.4g}). {orientation}")]
    out.append(_differences(views, data, a, orientation))
    boards = {"fixed / moving": [F.checkerboard(d.fixed, d.moving, v)
                                 for d, v in zip(data, views, strict=True)],
              "fixed / warped": [F.checkerboard(d.fixed, d.warped, v)
                                 for d, v in zip(data, views, strict=True)]}
    out.append(("checkerboard.png", F.image_panels(views, boards, window, "Checkerboards"),
                "Checkerboards alternating square tiles (equal size in mm) of the fixed image "
                f"and the moving image, before and after warping at α = {a}: edges "
                f"continuous across tiles are registered. {orientation}"))
    return out


def _alpha_figure(selection: Mapping[str, Any], a: str, alpha: Alpha) -> Figure:
    if len(components(alpha)) > 1:
        return _surface_figure(selection, a, alpha)
    return ("alpha_curves.png",
            alpha_curves(selection["rows"], components(alpha)[0],
                         str(selection_rule(selection))),
            f"Scores of the trained network for each α of the search grid: mean Dice of the "
            f"warped moving labels against the fixed labels (band: ± one standard error of "
            f"the estimate from {selection.get('sample_points')} sampled voxels; the same "
            f"voxels serve every α), percentage of folding voxels (det J ≤ 0), and mean "
            f"landmark TRE (mm) when landmarks were given. Dashed line: the α shown in this "
            f"report ({a}).")


def _surface_figure(selection: Mapping[str, Any], a: str, alpha: Alpha) -> Figure:
    rule = str(selection_rule(selection))
    tied = [as_alpha(v) for v in selection.get("tied_alphas") or []]
    return ("alpha_surface.png",
            alpha_surface(selection["rows"], alpha, rule, tied),
            f"Scores of the trained network over the plane of its first two hyperparameters "
            f"(α1, α2), at the {len(selection['rows'])} points the search scored (dots: a "
            f"coarse product grid, then finer steps around the best point), filled by linear "
            f"interpolation between them: the selection rule's score ({rule}) and the "
            f"percentage of folding voxels (det J ≤ 0). Star: the α shown in this report "
            f"({a}); rings: the α the rule could not tell from its choice. Values also in "
            f"alpha_table.csv.")


def _tradeoff_figure(selection: Mapping[str, Any], alpha: Alpha) -> list[Figure]:
    rule = str(selection_rule(selection))
    png = tradeoff_curves(selection["rows"], alpha, rule)
    if png is None:
        return []
    return [("tradeoff.png", png,
             "Alignment against regularity at every α of the search, from the one trained "
             "network: the alignment score of the rule against the percentage of folding "
             "voxels and against the standard deviation of log det J (both on "
             f"{(selection.get('selection_config') or {}).get('folding_points', '')} sampled "
             "points of the search region; colour: α; ring: the chosen α). Values also in "
             "alpha_table.csv.")]


def _uncertainty_figure(views: list[F.SliceView], data: list[ViewData],
                        selection: Mapping[str, Any], orientation: str) -> Figure:
    planes = [cast(np.ndarray, d.spread) for d in data]
    top = max(float(np.nanmax(p)) for p in planes)
    tied = "; ".join(format_alpha(v) for v in selection.get("tied_alphas") or [])
    masks = [d.mask for d in data]
    outlines = cast(list[np.ndarray], masks) if all(m is not None for m in masks) else None
    png = F.image_panels(views, {"α-uncertainty": planes}, (0.0, max(top, 1e-6)),
                         "α-uncertainty", cmap="magma", colorbar_label="mm", outlines=outlines)
    return ("uncertainty.png", png,
            f"α-uncertainty: at each voxel the largest distance (mm) between the points φ(x; α)"
            f" over the α the selection could not tell apart from its choice (α = {tied}; "
            "max here "
            f"{top:.3g} mm). Zero where they agree; it shows where the choice of α matters, "
            "not errors common to every α (docs/selection.md). Dashed: the fixed mask, where "
            "the network was trained when there is one. Export it with cidir export RUN "
            "--uncertainty. "
            f"{orientation}")


def _label_figure(views: list[F.SliceView], data: list[ViewData], window: tuple[float, float],
                  a: str, orientation: str, labels: Sequence[int] | None) -> Figure:
    which = ("every fixed label" if labels is None else
             f"the evaluated label{'s' if len(labels) != 1 else ''} "
             f"{', '.join(str(v) for v in labels)}")
    return ("labels.png",
            F.label_overlay(views, [d.fixed for d in data],
                            [cast(np.ndarray, d.fixed_labels) for d in data],
                            [cast(np.ndarray, d.warped_labels) for d in data], window, labels),
            f"Contours of {which} in the fixed label map (green) and in the moving label map "
            f"warped into the fixed frame at α = {a} (red, nearest-label sampling), over the "
            f"fixed image. {orientation}")


def make_figures(views: list[F.SliceView], data: list[ViewData], *, fixed: Image,
                 alpha: Alpha, selection: Mapping[str, Any] | None,
                 loss_history: list[dict] | None,
                 labels: Sequence[int] | None = None) -> list[Figure]:
    """(file name, PNG bytes, caption) for every figure that the inputs allow; ``labels``:
    the label values contoured (default: every label)."""
    orientation = orientation_text(fixed.ndim)
    a = format_alpha(alpha)
    out: list[Figure] = []
    if selection and selection.get("rows"):
        out.append(_alpha_figure(selection, a, alpha))
        out += _tradeoff_figure(selection, alpha)
    window = F.intensity_window(fixed.array)
    out += _image_figures(views, data, window, a, orientation)
    out.append(("jacobian.png", F.jacobian_panel(views, [d.det for d in data]),
                f"Jacobian determinant of φ at α = {a} (computed exactly from the network's "
                "derivatives), log2 scale centred at 0 (det J = 1): blue = local compression, "
                "red = expansion; voxels with det J ≤ 0 (folding) in black; panel titles give "
                f"the folding percentage of the slice. {orientation}"))
    out.append(("deformed_grid.png",
                F.deformed_grid(views, [d.fixed for d in data], [d.displacement for d in data],
                                window),
                f"Regular grid lines of the fixed image displaced by the in-plane components "
                f"(mm) of u(x) = φ(x) − x at α = {a} (the point of the moving image each fixed "
                f"point is mapped to), over the fixed image; out-of-plane motion is not "
                f"shown. {orientation}"))
    if data[0].fixed_labels is not None:
        out.append(_label_figure(views, data, window, a, orientation, labels))
    if data[0].spread is not None and selection:
        out.append(_uncertainty_figure(views, data, selection, orientation))
    if loss_history:
        out.append(("loss.png", F.loss_curves(loss_history),
                    "Training loss against the iteration: total, similarity (negative NCC or "
                    "MSE) and each regularizer term (log scale where positive); each "
                    "iteration draws its own α, so the curves mix all α of the prior."))
    return out
