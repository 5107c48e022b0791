"""``cidir export RUN --uncertainty u.nii.gz``: the α-uncertainty map of the run's selection
on the fixed grid (mm; :mod:`cidir.fields.uncertainty`), with ``RUN/uncertainty.json``: the
tied α it spans and the map's mean, 95th percentile and maximum over the fit's mask."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cidir.errors import InputError
from cidir.evaluation.metrics import distance_summary
from cidir.fields import ConditionedTransform, alpha_spread_map
from cidir.geometry import Image
from cidir.io.images import write_image
from cidir.reporting.summary import dice_ties
from cidir.runs.folder import RunFolder
from cidir.selection.alpha_space import alpha_text, as_alpha


def selection_tied_alphas(selection: dict[str, Any] | None, run: RunFolder) -> list[float]:
    """The α the run's selection could not tell from the chosen one: ``tied_alphas`` of
    selection.json, or (selections recorded before it existed) the Dice ties recomputed from
    the table. InputError without a selection."""
    if not selection:
        raise InputError(f"--uncertainty: run {run.path} has no selection.json; the map "
                         "spans the α a selection found tied — run cidir select RUN first")
    if selection.get("tied_alphas"):
        return [as_alpha(a) for a in selection["tied_alphas"]]
    ties = dice_ties(selection)
    if ties is None:
        raise InputError(f"--uncertainty: {run.selection_path} records no tied α (a selection"
                         " by an older cidir with another rule); rerun cidir select RUN")
    return [as_alpha(selection["rows"][i]["alpha"]) for i in ties]


def export_uncertainty(run: RunFolder, transform: ConditionedTransform, path: str,
                       metadata: dict[str, str], selection: dict[str, Any] | None) -> list[Path]:
    """Write the α-uncertainty map over the tied α of ``selection`` (the run's
    selection.json; float32, mm, fixed grid) and RUN/uncertainty.json."""
    alphas = selection_tied_alphas(selection, run)
    spread = alpha_spread_map(transform, alphas)
    write_image(Image(spread, transform.grid, "alpha_uncertainty"), path,
                metadata={**metadata, "cidir_tied_alphas": ";".join(alpha_text(a) for a in alphas)})
    mask = run.fixed_mask(transform.grid)
    if mask is not None:
        values, region = spread[mask.array > 0], "fixed mask"
    else:
        values, region = spread.reshape(-1), "fixed grid"
    summary = {"uncertainty": str(path), "tied_alphas": alphas,
               "chosen_alpha": (selection or {}).get("alpha"), "region": region,
               **distance_summary(values if values.size else np.zeros(1))}
    run.write_json(run.path / "uncertainty.json", summary)
    return [Path(path), run.path / "uncertainty.json"]
