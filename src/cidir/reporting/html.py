"""``RUN/report.html``: one self-contained page (PNGs referenced relatively as ``report/*.png``,
inline CSS, no scripts, no external resources) with the run's numbers, the α table, the
figures and the resolved config.

Speed: every figure shows the same central slices, so the network is evaluated once at the
chosen α on the voxels of those slices only (displacement, Jacobian determinant) and the
warped image and labels are resampled from that displacement — a few ten thousand points for a
CT volume instead of every voxel.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from cidir.fields import (
    ConditionedTransform,
    displacement_field,
    jacobian_determinant_map,
    resample_with_field,
)
from cidir.geometry import Image
from cidir.io.atomic import write_bytes, write_text
from cidir.reporting import figures as F

FIGURE_NAMES = ("alpha_curves.png", "images.png", "differences.png", "checkerboard.png",
                "jacobian.png", "deformed_grid.png", "labels.png", "loss.png")

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3} td.k{text-align:left}
tr.chosen{background:#fff3c4;font-weight:bold}
figure{margin:1.5em 0} img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:0.9em;color:#444;margin-top:0.3em}
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:0.85em}
"""


# ---------------------------------------------------------------------------------- slices
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


def evaluate_view(view: F.SliceView, transform: ConditionedTransform, fixed: Image,
                  moving: Image, alpha: float, fixed_labels: Image | None,
                  moving_labels: Image | None) -> ViewData:
    """Evaluate φ once on the view's voxels and derive every plane from it."""
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
    return data


# ---------------------------------------------------------------------------------- figures
def _orientation_text(ndim: int) -> str:
    if ndim == 2:
        return "Display: x to the right, y downwards; axes in mm from the first voxel."
    return ("Display: central slices on the anatomical axes nearest to the voxel axes (LPS). "
            "Axial: radiological view, patient left on the viewer's right, anterior at the "
            "top; coronal: patient left on the right, superior at the top; sagittal: anterior "
            "on the left, superior at the top. Pixels have their physical size; axis ticks "
            "are mm from the grid's first voxel along each voxel axis.")


def _image_figures(views: list[F.SliceView], data: list[ViewData], window: tuple[float, float],
                   a: str, orientation: str) -> list[tuple[str, bytes, str]]:
    """The images, their differences and the checkerboards, before and after warping."""
    out: list[tuple[str, bytes, str]] = []
    images = {"fixed": [d.fixed for d in data], "moving": [d.moving for d in data],
              f"warped (α = {a})": [d.warped for d in data]}
    out.append(("images.png", F.image_panels(views, images, window, "Images"),
                f"Rows: fixed image; moving image at the same world positions (no "
                f"transform); moving image warped into the fixed frame at α = {a} (linear "
                f"interpolation). Shared intensity window: 1st–99th percentile of the fixed "
                f"image ({window[0]:.4g} to {window[1]:.4g}). {orientation}"))
    diffs = {"before: fixed − moving": [d.fixed - d.moving for d in data],
             "after: fixed − warped": [d.fixed - d.warped for d in data]}
    span = F.symmetric_limit([p for planes in diffs.values() for p in planes])
    out.append(("differences.png",
                F.image_panels(views, diffs, (-span, span), "Intensity differences",
                               cmap="RdBu_r", colorbar_label="intensity difference"),
                f"Differences before (fixed − moving) and after (fixed − warped at α = {a}) "
                f"registration, on one symmetric colour scale (± {span:.4g}, 99th percentile "
                f"of |difference|; white = 0). {orientation}"))
    boards = {"fixed / moving": [F.checkerboard(d.fixed, d.moving, v)
                                 for d, v in zip(data, views, strict=True)],
              "fixed / warped": [F.checkerboard(d.fixed, d.warped, v)
                                 for d, v in zip(data, views, strict=True)]}
    out.append(("checkerboard.png", F.image_panels(views, boards, window, "Checkerboards"),
                "Checkerboards alternating square tiles (equal size in mm) of the fixed image "
                f"and the moving image, before (top) and after (bottom) warping at α = {a}: "
                f"edges continuous across tiles are registered. {orientation}"))
    return out


def make_figures(views: list[F.SliceView], data: list[ViewData], *, fixed: Image,
                 alpha: float, selection: Mapping[str, Any] | None,
                 loss_history: list[dict] | None) -> list[tuple[str, bytes, str]]:
    """(file name, PNG bytes, caption) for every figure that the inputs allow."""
    orientation = _orientation_text(fixed.ndim)
    a = f"{alpha:.3g}"
    out: list[tuple[str, bytes, str]] = []
    if selection and selection.get("rows"):
        out.append(("alpha_curves.png",
                    F.alpha_curves(selection["rows"], alpha, str(selection.get("criterion"))),
                    f"Scores of the trained network for each α of the search grid: mean Dice "
                    f"of the warped moving labels against the fixed labels (band: ± one "
                    f"standard error of the estimate from {selection.get('sample_points')} "
                    f"sampled voxels; the same voxels serve every α), percentage of folding "
                    f"voxels (det J ≤ 0), and mean landmark TRE (mm) when landmarks were "
                    f"given. Dashed line: the α shown in this report ({a})."))
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
        out.append(("labels.png",
                    F.label_overlay(views, [d.fixed for d in data],
                                    [cast(np.ndarray, d.fixed_labels) for d in data],
                                    [cast(np.ndarray, d.warped_labels) for d in data], window),
                    f"Contours of every fixed label (green) and of the moving labels warped "
                    f"into the fixed frame at α = {a} (red, nearest-label sampling), over the "
                    f"fixed image. {orientation}"))
    if loss_history:
        out.append(("loss.png", F.loss_curves(loss_history),
                    "Training loss against the iteration: total, similarity (negative NCC or "
                    "MSE) and each regularizer term (log scale where positive); each "
                    "iteration draws its own α, so the curves mix all α of the prior."))
    return out


# ---------------------------------------------------------------------------------- tables
def flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Scalar entries with dotted keys for nested dicts; short lists kept, long ones dropped."""
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows += flatten(value, name + ".")
        elif isinstance(value, (list, tuple)):
            if len(value) <= 6 and all(not isinstance(v, (Mapping, list, tuple))
                                       for v in value):
                rows.append((name, value))
        else:
            rows.append((name, value))
    return rows


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (float, np.floating)):
        return "—" if not math.isfinite(value) else f"{float(value):.{digits}g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v, digits) for v in value)
    return str(value)


def _metrics_table(metrics: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><td class='k'>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td>"
                   "</tr>" for k, v in flatten(metrics))
    if not rows:
        return "<p>No metrics recorded.</p>"
    return f"<table><tr><th>quantity</th><th>value</th></tr>{rows}</table>"


def _num(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return format(float(value), spec)


def _alpha_table(selection: Mapping[str, Any]) -> str:
    rows = selection["rows"]
    has_tre = any(r.get("tre_mm") is not None for r in rows)
    head = ("<tr><th>α</th><th>mean Dice ± se</th><th>se of gap to best</th>"
            "<th>Dice per label</th><th>% det J ≤ 0</th>"
            + ("<th>mean TRE (mm)</th>" if has_tre else "") + "</tr>")
    body = []
    for i, r in enumerate(rows):
        chosen = i == selection.get("index")
        per_label = ", ".join(f"{k}: {_num(v, '.3f')}"
                              for k, v in (r.get("dice_per_label") or {}).items())
        cls = ' class="chosen"' if chosen else ""
        body.append(
            f"<tr{cls}>"
            f"<td>{_num(r['alpha'], '.3f')}{' ◀ chosen' if chosen else ''}</td>"
            f"<td>{_num(r['dice'], '.4f')} ± {_num(r.get('dice_se'), '.4f')}</td>"
            f"<td>{_num(r.get('dice_gap_se'), '.4f')}</td>"
            f"<td class='k'>{html.escape(per_label)}</td>"
            f"<td>{_num(r['folding_percent'], '.3f')}</td>"
            + (f"<td>{_num(r.get('tre_mm'), '.3f')}</td>" if has_tre else "") + "</tr>")
    s = selection
    note = (f"Criterion: {s.get('criterion')}; labels {s.get('labels')}; Dice estimated on "
            f"{s.get('sample_points')} of {s.get('region_voxels')} voxels near the labels"
            f"{' (exact)' if s.get('exact') else ''}; search took {_num(s.get('seconds'), '.2f')}"
            " s. Ties (within the standard error of the gap) go to the larger, smoother α.")
    return f"<table>{head}{''.join(body)}</table><p>{html.escape(note)}</p>"


def _headline(alpha: float, selection: Mapping[str, Any] | None, fixed: Image) -> str:
    text = f"<p>Shown at α = <b>{alpha:.4g}</b>"
    if selection:
        text += (f"; selection by {html.escape(str(selection.get('criterion')))} chose "
                 f"α = {_num(selection.get('alpha'), '.4g')} with mean Dice "
                 f"<b>{_num(selection.get('dice'), '.4f')}</b> ± "
                 f"{_num(selection.get('dice_se'), '.4f')}, folding "
                 f"{_num(selection.get('folding_percent'), '.3f')} %")
        if selection.get("tre_mm") is not None:
            text += f", mean TRE {_num(selection['tre_mm'], '.3f')} mm"
    return text + f". Fixed grid: {html.escape(fixed.grid.describe())}.</p>"


def render_html(title: str, headline: str, metrics: Mapping[str, Any],
                selection: Mapping[str, Any] | None, figures: list[tuple[str, bytes, str]],
                config_toml: str, run_id: str | None = None) -> str:
    """The page's text (every dynamic string HTML-escaped); ``run_id`` names the fit in a
    ``<meta name="cidir-run-id">`` and under the title."""
    meta = (f"<meta name='cidir-run-id' content='{html.escape(run_id)}'>" if run_id else "")
    parts = ["<!DOCTYPE html>", f"<html lang='en'><head><meta charset='utf-8'>{meta}",
             f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p class='k'>run {html.escape(run_id)}</p>" if run_id else "", headline,
             "<h2>Numbers</h2>", _metrics_table(metrics)]
    if selection and selection.get("rows"):
        parts += ["<h2>α table</h2>", _alpha_table(selection)]
    parts.append("<h2>Figures</h2>")
    for name, _, caption in figures:
        parts.append(f'<figure><img src="report/{html.escape(name)}" '
                     f'alt="{html.escape(name)}"><figcaption>{html.escape(caption)}'
                     "</figcaption></figure>")
    parts += ["<h2>Configuration (resolved)</h2>", f"<pre>{html.escape(config_toml)}</pre>",
              "</body></html>"]
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------- entry
def write_report(run_dir: str | Path, *, transform: ConditionedTransform, fixed: Image,
                 moving: Image, alpha: float, config_toml: str, metrics: dict[str, Any],
                 selection: dict[str, Any] | None = None, fixed_labels: Image | None = None,
                 moving_labels: Image | None = None,
                 loss_history: list[dict] | None = None, title: str = "cidir run",
                 run_id: str | None = None) -> Path:
    """Write ``run_dir/report.html`` and its figures ``run_dir/report/*.png``; return the HTML
    path. Every file is written atomically; figures of an earlier report that this one does
    not produce (e.g. labels.png) are removed so the folder matches the page."""
    run_dir = Path(run_dir)
    views = F.slice_views(fixed.grid)
    data = [evaluate_view(v, transform, fixed, moving, alpha, fixed_labels, moving_labels)
            for v in views]
    figures = make_figures(views, data, fixed=fixed, alpha=alpha, selection=selection,
                           loss_history=loss_history)
    folder = run_dir / "report"
    for name, png, _ in figures:
        write_bytes(folder / name, png)
    made = {name for name, _, _ in figures}
    for name in FIGURE_NAMES:
        if name not in made:
            (folder / name).unlink(missing_ok=True)
    out = run_dir / "report.html"
    write_text(out, render_html(title, _headline(alpha, selection, fixed), metrics, selection,
                                figures, config_toml, run_id))
    return out
