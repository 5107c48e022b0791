"""``cidir demo``: the whole method on the built-in breathing phantom, with checkable numbers.

phantom (inhale = fixed, exhale = moving) → fit over the α prior → choose α by label Dice →
TRE before/after (continuous and snapped), folding, Dice → report. Writes ``DIR/phantom/``,
``DIR/run/`` (a standard run folder) and ``DIR/metrics.json`` (the summary).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from cidir.api import choose_alpha, displacement_field, evaluate
from cidir.config import RunConfig
from cidir.data.phantom import make_phantom, write_phantom
from cidir.evaluation import Evaluation
from cidir.io.atomic import write_json
from cidir.io.images import check_common_labels, read_label_map
from cidir.io.landmarks import read_points
from cidir.io.outputs import check_output_folder
from cidir.runs import commands
from cidir.runs.folder import RunFolder
from cidir.selection import SelectionResult
from cidir.selection.alpha_space import format_alpha


def run_demo(out: str | Path, config: RunConfig, *, size: str = "small", seed: int = 0,
             variant: str = "smooth", device: str = "cpu",
             progress: bool = True) -> dict[str, Any]:
    """Generate, fit, select, evaluate, report; returns (and writes) the summary. The fit
    reads the phantom's images once; every later step uses them and the trained transform
    in memory, and records its result in the run folder like the commands do."""
    out = check_output_folder(out, "--out")
    t0 = time.perf_counter()
    phantom = make_phantom(size, seed, variant)
    files = {k: str(v) for k, v in write_phantom(phantom, out / "phantom").items()}
    phantom_seconds = time.perf_counter() - t0
    fit = commands.fit_run(files["inhale"], files["exhale"], out / "run", config,
                           fixed_mask_path=files["inhale_lungmask"], device=device,
                           overwrite=True, progress=progress)
    fl = read_label_map(files["inhale_labels"], "fixed labels", reference=fit.fixed.grid)
    ml = read_label_map(files["exhale_labels"], "moving labels", reference=fit.moving.grid)
    labels = check_common_labels(fl, ml, "labels")
    fp = read_points(files["inhale_points"], fit.fixed.grid, "fixed points")
    mp = read_points(files["exhale_points"], fit.moving.grid, "moving points")
    assert fit.fixed_mask is not None
    lungs = fit.fixed_mask.array
    run = RunFolder(fit.path)
    with run.locked("demo"):
        run.require_fit(fit.metrics["run_id"], "the demo")
        selection = choose_alpha(fit.transform, fl, ml, config.selection, labels=labels)
        commands.record_selection(run, selection, config.selection,
                                  fixed_labels=files["inhale_labels"],
                                  moving_labels=files["exhale_labels"])
        field = displacement_field(fit.transform, selection.alpha)  # once: labels, error
        evaluation = evaluate(fit.transform, selection.alpha, fixed_points=fp,
                              moving_points=mp, moving_grid=fit.moving.grid, fixed_labels=fl,
                              moving_labels=ml, labels=labels, mask=lungs, field=field)
        commands.record_evaluation(run, evaluation)
        t1 = time.perf_counter()
        report = commands.write_run_report(run, fit.transform, fit.fixed, fit.moving,
                                           fixed_labels=fl, moving_labels=ml)
        report_seconds = time.perf_counter() - t1
    inside = phantom.inhale_lung_mask.array.astype(bool)
    summary = _summary(evaluation, selection)
    summary.update({
        "field_error_mm": float(np.linalg.norm(field - phantom.field, axis=-1)[inside].mean()),
        "field_error_before_mm": float(np.linalg.norm(phantom.field, axis=-1)[inside].mean()),
        "fit_seconds": fit.metrics["fit_seconds"],
        "select_seconds": selection.seconds,
        "phantom_seconds": round(phantom_seconds, 3),
        "report_seconds": round(report_seconds, 3),
        "phantom": {"size": size, "seed": seed, "variant": variant,
                    "grid": phantom.grid.to_dict()},
        "machine": fit.metrics["machine"],
        "run": str(run.path),
        "report": str(report),
    })
    write_json(out / "metrics.json", summary)
    return summary


def _summary(evaluation: Evaluation, selection: SelectionResult) -> dict[str, Any]:
    """The demo's TRE, Dice and folding figures."""
    before, after = evaluation.tre_before, evaluation.tre_after
    assert before is not None and after is not None and before.snapped and after.snapped
    return {
        "tre_before_mm": before.continuous.mean,
        "tre_after_mm": after.continuous.mean,
        "tre_after_sd_mm": after.continuous.sd,
        "tre_before_snapped_mm": before.snapped.mean,
        "tre_after_snapped_mm": after.snapped.mean,
        "tre_after_per_axis_mm": after.continuous.per_axis_mean_abs,
        "landmarks": after.points,
        "alpha": selection.alpha,
        "dice": evaluation.dice,
        "dice_before": evaluation.dice_before,
        "selection_dice_estimate": selection.chosen.dice,
        "folding_percent": evaluation.folding_percent,
        "std_log_jacobian": evaluation.std_log_jacobian,
    }


def format_summary(s: dict[str, Any]) -> str:
    """The printed summary; the phantom's variant is named unless it is the default."""
    variant = s["phantom"].get("variant", "smooth")
    named = "" if variant == "smooth" else f", {variant} variant"
    return "\n".join([
        f"cidir demo — breathing phantom ({s['phantom']['size']}, seed {s['phantom']['seed']}"
        f"{named}), {s['landmarks']} landmark pairs",
        f"  TRE      {s['tre_before_mm']:.2f} mm → {s['tre_after_mm']:.2f} ± "
        f"{s['tre_after_sd_mm']:.2f} mm (continuous); snapped {s['tre_before_snapped_mm']:.2f} → "
        f"{s['tre_after_snapped_mm']:.2f} mm",
        f"  field    mean error in the lungs {s['field_error_before_mm']:.2f} → "
        f"{s['field_error_mm']:.2f} mm (vs ground truth)",
        f"  α        {format_alpha(s['alpha'])} chosen by label Dice; Dice "
        f"{s['dice_before']:.4f} → "
        f"{s['dice']:.4f}",
        f"  folding  {s['folding_percent']:.3f}% of lung voxels with det J ≤ 0; "
        f"std log det J {s['std_log_jacobian']:.3f}",
        f"  time     fit {s['fit_seconds']:.1f} s, α search {s['select_seconds']:.2f} s "
        f"({s['machine']['device']}, {s['machine']['threads']} threads)",
        f"  report   {s['report']}",
    ])
