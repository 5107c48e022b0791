"""``RUN/report.html``: one self-contained page (relative PNGs, inline CSS, no scripts) with
the run's numbers, the α table, the figures and the resolved config."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

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


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _flatten(value, name + ".")
        elif isinstance(value, (list, tuple)) and len(value) > 6:
            continue
        else:
            rows.append((name, value))
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _metrics_table(metrics: dict[str, Any]) -> str:
    rows = "".join(f"<tr><td class='k'>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>"
                   for k, v in _flatten(metrics))
    return f"<table><tr><th>quantity</th><th>value</th></tr>{rows}</table>"


def _alpha_table(selection: dict[str, Any]) -> str:
    has_tre = any(r.get("tre_mm") is not None for r in selection["rows"])
    head = "<tr><th>α</th><th>mean Dice ± se</th><th>gap se</th><th>% det J ≤ 0</th>" + (
        "<th>mean TRE (mm)</th>" if has_tre else "") + "</tr>"
    body = []
    for i, r in enumerate(selection["rows"]):
        cls = " class='chosen'" if i == selection["index"] else ""
        tre = f"<td>{r['tre_mm']:.3f}</td>" if has_tre else ""
        body.append(f"<tr{cls}><td>{r['alpha']:.3f}</td><td>{r['dice']:.4f} ± "
                    f"{r['dice_se']:.4f}</td><td>{r.get('dice_gap_se', 0.0):.4f}</td>"
                    f"<td>{r['folding_percent']:.3f}</td>{tre}</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def write_report(run_dir: str | Path, *, transform: ConditionedTransform, fixed: Image,
                 moving: Image, alpha: float, config_toml: str, metrics: dict[str, Any],
                 selection: dict[str, Any] | None = None, fixed_labels: Image | None = None,
                 moving_labels: Image | None = None,
                 loss_history: list[dict] | None = None, title: str = "cidir run") -> Path:
    """Write ``run_dir/report.html`` and ``run_dir/report/*.png``; return the HTML path."""
    run_dir = Path(run_dir)
    grid = fixed.grid
    figures: list[tuple[str, bytes, str]] = []  # (file name, png, caption)
    orientation = ("Axial slices: patient left on the right (radiological), anterior at the "
                   "top; coronal and sagittal: superior at the top; physical aspect ratio."
                   if grid.ndim == 3 else "x to the right, y downwards.")
    if selection:
        figures.append(("alpha_curves.png", F.alpha_curves(selection["rows"], alpha),
                        f"Scores against α ({selection['criterion']} chose α = "
                        f"{selection['alpha']:.3g}); Dice band: ± one standard error of the "
                        f"sampled estimate ({selection['sample_points']} voxels). The same "
                        "voxels serve every α, so differences between α are measured more "
                        "precisely (the α table's 'gap se')."))
    field = displacement_field(transform, alpha)  # evaluated once, shared by every warp
    warped = resample_with_field(moving, field, grid, device=transform.device).array
    window = F.intensity_window(fixed.array)
    panels = {"fixed": fixed.array, "warped moving": warped}
    if moving.grid.same_as(grid):
        panels = {"fixed": fixed.array, "moving": moving.array, "warped moving": warped}
    figures.append(("images.png", F.image_panels(grid, panels, window),
                    f"Fixed, moving and moving warped at α = {alpha:.3g}. {orientation}"))
    diffs = {"after: fixed − warped": fixed.array - warped}
    if moving.grid.same_as(grid):
        diffs = {"before: fixed − moving": fixed.array - moving.array, **diffs}
    span = float(np.nanpercentile(np.abs(np.stack(list(diffs.values()))), 99)) or 1.0
    figures.append(("differences.png",
                    F.image_panels(grid, diffs, (-span, span), cmap="RdBu_r", symmetric=True),
                    "Intensity differences before and after registration, same colour scale."))
    boards = {"checkerboard fixed / warped": F.checkerboard(fixed.array, warped)}
    if moving.grid.same_as(grid):
        boards = {"checkerboard fixed / moving": F.checkerboard(fixed.array, moving.array),
                  **boards}
    figures.append(("checkerboard.png", F.image_panels(grid, boards, window),
                    "Checkerboards: edges that line up across tiles are registered."))
    det = jacobian_determinant_map(transform, alpha)
    figures.append(("jacobian.png", F.jacobian_panel(grid, det),
                    "Jacobian determinant of φ (log2; blue: compression, red: expansion); "
                    "voxels with det J ≤ 0 (folding) in black."))
    to_voxel = np.linalg.inv(grid.direction_matrix @ np.diag(grid.spacing))
    field_voxels = field @ to_voxel.T
    figures.append(("deformed_grid.png", F.deformed_grid(grid, fixed.array, field_voxels, window),
                    "Grid lines of the fixed image displaced by the in-plane displacement "
                    "(mm) of φ."))
    if fixed_labels is not None and moving_labels is not None:
        warped_labels = resample_with_field(moving_labels, field, grid, labels=True,
                                            device=transform.device).array
        figures.append(("labels.png", F.label_overlay(grid, fixed.array, fixed_labels.array,
                                                      warped_labels, window),
                        "Fixed labels (green) and moving labels warped at the chosen α (red)."))
    if loss_history:
        figures.append(("loss.png", F.loss_curves(loss_history),
                        "Training loss terms (each iteration draws its own α)."))

    for name, png, _ in figures:
        write_bytes(run_dir / "report" / name, png)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p>Displayed at α = <b>{alpha:.4g}</b>"
             + (f"; chosen by {html.escape(selection['criterion'])} with Dice "
                f"{selection['dice']:.4f} ± {selection['dice_se']:.4f}" if selection else "")
             + f". Fixed grid: {html.escape(grid.describe())}.</p>",
             "<h2>Numbers</h2>", _metrics_table(metrics)]
    if selection:
        parts += ["<h2>α table</h2>", _alpha_table(selection)]
    parts.append("<h2>Figures</h2>")
    for name, _, caption in figures:
        parts.append(f"<figure><img src='report/{name}' alt='{html.escape(name)}'>"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts += ["<h2>Configuration (resolved)</h2>", f"<pre>{html.escape(config_toml)}</pre>",
              "</body></html>"]
    out = run_dir / "report.html"
    write_text(out, "\n".join(parts) + "\n")
    return out
