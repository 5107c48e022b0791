"""``cidir dirlab``: the DIR-LAB 4DCT protocol on one case of a user's download.

Fixed = T00 (inhale), moving = T50 (exhale). The case's images are converted once to NIfTI
in ``RUN/inputs/`` (HU, case grid, no flips: landmarks are read in the same voxel frame) so
that the run folder works with every other command. Training points are drawn inside the
fixed lung mask (``--mask``, or :func:`cidir.data.lung_mask.threshold_lung_mask`). α is chosen
by the Dice of the two phases' lung masks (labels 1, 2), never by the landmarks; TRE is then
reported at that α, continuous and snapped, per axis, with the TRE at every α of the grid for
information (``alpha_table.csv``; the landmark-oracle α is labelled as such).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cidir.api import choose_alpha, evaluate
from cidir.config import RunConfig
from cidir.data.dirlab import DirLabCase, load_case
from cidir.data.lung_mask import threshold_lung_mask
from cidir.errors import InputError
from cidir.geometry import Image
from cidir.io.atomic import write_json
from cidir.io.images import check_common_labels, read_label_map, write_image
from cidir.io.landmarks import read_points, write_points
from cidir.io.outputs import check_output_folder
from cidir.runs import commands
from cidir.runs.folder import RunFolder
from cidir.selection.alpha_space import format_alpha


def run_dirlab(root: str, case: int, out: str | Path, config: RunConfig, *,
               mask: str | None = None, landmarks: str | None = None, device: str = "cpu",
               progress: bool = True, overwrite: bool = False) -> dict[str, Any]:
    out = check_output_folder(out, "--out")
    if (out / "model.safetensors").exists() and not overwrite:
        raise InputError(f"--out {out}: already holds a trained model; pass --overwrite")
    data = load_case(root, case, with_images=True, landmark_root=landmarks)
    paths = _write_case_inputs(data, out / "inputs", mask)
    fixed_labels, fixed_points, moving_points = (paths["fixed_labels"], paths["T00_points"],
                                                 paths["T50_points"])
    fit = commands.fit_run(str(paths["T00"]), str(paths["T50"]), out, config,
                           fixed_mask_path=str(paths["T00_lungs"]), device=device,
                           overwrite=overwrite, progress=progress)
    fl = read_label_map(fixed_labels, "fixed labels", reference=fit.fixed.grid)
    ml = read_label_map(paths["T50_lungs"], "moving labels", reference=fit.moving.grid)
    fp = read_points(fixed_points, fit.fixed.grid, "fixed points")
    mp = read_points(moving_points, fit.moving.grid, "moving points")
    run = RunFolder(fit.path)
    with run.locked("dirlab"):
        run.require_fit(fit.metrics["run_id"], "the DIR-LAB protocol")
        selection = choose_alpha(fit.transform, fl, ml, config.selection,
                                 labels=check_common_labels(fl, ml, "labels"),
                                 fixed_points=fp, moving_points=mp)
        commands.record_selection(run, selection, config.selection,
                                  fixed_labels=fixed_labels, moving_labels=paths["T50_lungs"],
                                  fixed_points=fixed_points, moving_points=moving_points)
        assert fit.fixed_mask is not None
        evaluation = evaluate(fit.transform, selection.alpha, fixed_points=fp,
                              moving_points=mp, moving_grid=fit.moving.grid,
                              mask=fit.fixed_mask.array)
        commands.record_evaluation(run, evaluation)
    tre_by_alpha = [(row.alpha, row.tre_mm) for row in selection.rows]
    oracle_alpha, oracle_tre = min(tre_by_alpha, key=lambda r: r[1])
    before, after = evaluation.tre_before, evaluation.tre_after
    assert before is not None and after is not None and after.snapped is not None
    summary = {
        "case": case,
        "tre_before_mm": before.continuous.mean,
        "tre_after_mm": after.continuous.mean,
        "tre_after_sd_mm": after.continuous.sd,
        "tre_after_snapped_mm": after.snapped.mean,
        "tre_after_per_axis_mm": after.continuous.per_axis_mean_abs,
        "alpha": selection.alpha,
        "selection": "lung-mask Dice",
        "oracle_alpha_by_landmarks": oracle_alpha,
        "oracle_tre_mm": oracle_tre,
        "folding_percent": evaluation.folding_percent,
        "fit_seconds": fit.metrics["fit_seconds"],
        "select_seconds": selection.seconds,
        "mask": "user" if mask else "threshold",
    }
    write_json(RunFolder(out).path / "dirlab.json", summary)
    return summary


def _write_case_inputs(data: DirLabCase, inputs: Path, mask: str | None) -> dict[str, Path]:
    """The case as NIfTI (HU, case grid) with its lung masks and landmarks (world mm CSV):
    the run's recorded inputs. ``fixed_labels``: the lungs the α search compares."""
    fixed_mask = (read_label_map(mask, "--mask", reference=data.fixed.grid) if mask
                  else threshold_lung_mask(data.fixed))
    moving_mask = threshold_lung_mask(data.moving)
    paths = {name: inputs / f"{name}.nii.gz" for name in
             ("T00", "T50", "T00_lungs", "T50_lungs")}
    write_image(data.fixed, paths["T00"], dtype=np.int16)
    write_image(data.moving, paths["T50"], dtype=np.int16)
    write_image(Image((fixed_mask.array > 0).astype(np.uint8), data.fixed.grid),
                paths["T00_lungs"])
    write_image(moving_mask, paths["T50_lungs"], dtype=np.int32)
    paths["T00_points"], paths["T50_points"] = inputs / "T00_points.csv", inputs / "T50_points.csv"
    write_points(paths["T00_points"], data.fixed_points)
    write_points(paths["T50_points"], data.moving_points)
    paths["fixed_labels"] = paths["T00_lungs"] if mask else inputs / "T00_lung_labels.nii.gz"
    if not mask:
        write_image(fixed_mask, paths["fixed_labels"], dtype=np.int32)
    return paths


def format_summary(s: dict[str, Any]) -> str:
    """The printed summary of one DIR-LAB case."""
    return (f"DIR-LAB case {s['case']}: TRE {s['tre_before_mm']:.2f} → {s['tre_after_mm']:.2f} "
            f"mm (continuous), {s['tre_after_snapped_mm']:.2f} mm snapped; "
            f"α {format_alpha(s['alpha'])} "
            f"by lung Dice (landmark oracle α {s['oracle_alpha_by_landmarks']:.3g}: "
            f"{s['oracle_tre_mm']:.2f} mm); folding {s['folding_percent']:.3f}%")
