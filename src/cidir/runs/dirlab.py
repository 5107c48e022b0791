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

from cidir.config import RunConfig
from cidir.data.dirlab import load_case
from cidir.data.lung_mask import threshold_lung_mask
from cidir.errors import InputError
from cidir.geometry import Image
from cidir.io.atomic import write_json
from cidir.io.images import read_label_map, write_image
from cidir.io.landmarks import write_points
from cidir.io.outputs import check_output_folder
from cidir.runs import commands
from cidir.runs.folder import RunFolder


def run_dirlab(root: str, case: int, out: str | Path, config: RunConfig, *,
               mask: str | None = None, landmarks: str | None = None, device: str = "cpu",
               progress: bool = True, overwrite: bool = False) -> dict[str, Any]:
    out = check_output_folder(out, "--out")
    if (out / "model.safetensors").exists() and not overwrite:
        raise InputError(f"--out {out}: already holds a trained model; pass --overwrite")
    data = load_case(root, case, with_images=True, landmark_root=landmarks)
    fixed_mask = (read_label_map(mask, "--mask", reference=data.fixed.grid) if mask
                  else threshold_lung_mask(data.fixed))
    moving_mask = threshold_lung_mask(data.moving)
    inputs = out / "inputs"
    paths = {name: inputs / f"{name}.nii.gz" for name in
             ("T00", "T50", "T00_lungs", "T50_lungs")}
    write_image(data.fixed, paths["T00"], dtype=np.int16)
    write_image(data.moving, paths["T50"], dtype=np.int16)
    write_image(Image((fixed_mask.array > 0).astype(np.uint8), data.fixed.grid),
                paths["T00_lungs"])
    write_image(moving_mask, paths["T50_lungs"], dtype=np.int32)
    fixed_points, moving_points = inputs / "T00_points.csv", inputs / "T50_points.csv"
    write_points(fixed_points, data.fixed_points)
    write_points(moving_points, data.moving_points)
    fixed_labels = paths["T00_lungs"] if mask else inputs / "T00_lung_labels.nii.gz"
    if not mask:
        write_image(fixed_mask, fixed_labels, dtype=np.int32)

    fit = commands.fit_run(str(paths["T00"]), str(paths["T50"]), out, config,
                           fixed_mask_path=str(paths["T00_lungs"]), device=device,
                           overwrite=overwrite, progress=progress)
    selection = commands.select_run(out, str(fixed_labels), str(paths["T50_lungs"]),
                                    fixed_points_path=str(fixed_points),
                                    moving_points_path=str(moving_points), device=device)
    evaluation = commands.evaluate_run(out, fixed_points=str(fixed_points),
                                       moving_points=str(moving_points), device=device)
    tre_by_alpha = [(row["alpha"], row["tre_mm"]) for row in selection["rows"]]
    oracle_alpha, oracle_tre = min(tre_by_alpha, key=lambda r: r[1])
    summary = {
        "case": case,
        "tre_before_mm": evaluation["tre_before"]["continuous"]["mean"],
        "tre_after_mm": evaluation["tre_after"]["continuous"]["mean"],
        "tre_after_sd_mm": evaluation["tre_after"]["continuous"]["sd"],
        "tre_after_snapped_mm": evaluation["tre_after"]["snapped"]["mean"],
        "tre_after_per_axis_mm": evaluation["tre_after"]["continuous"]["per_axis_mean_abs"],
        "alpha": selection["alpha"],
        "selection": "lung-mask Dice",
        "oracle_alpha_by_landmarks": oracle_alpha,
        "oracle_tre_mm": oracle_tre,
        "folding_percent": evaluation["folding_percent"],
        "fit_seconds": fit["fit_seconds"],
        "select_seconds": selection["seconds"],
        "mask": "user" if mask else "threshold",
    }
    write_json(RunFolder(out).path / "dirlab.json", summary)
    print(f"DIR-LAB case {case}: TRE {summary['tre_before_mm']:.2f} → "
          f"{summary['tre_after_mm']:.2f} mm (continuous), {summary['tre_after_snapped_mm']:.2f}"
          f" mm snapped; α {summary['alpha']:.3g} by lung Dice (landmark oracle α "
          f"{oracle_alpha:.3g}: {oracle_tre:.2f} mm); folding {summary['folding_percent']:.3f}%")
    return summary
