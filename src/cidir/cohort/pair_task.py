"""One pair of a cohort: fit, select α (when labels are given), export the field, evaluate,
report, into ``DIR/<id>/`` (a standard run folder), then ``DIR/<id>/cohort_pair.json``.

``cohort_pair.json`` is written last and atomically: it marks the pair complete. It records
the pair's *fingerprint* (SHA-256 of every input file and of the resolved configuration);
``cohort_plan.json``, written before the fit, records the same. On a rerun a pair whose
record is complete with the same fingerprint is reused as it is; a pair whose fit was
interrupted (a checkpoint in the run folder) under the same plan is resumed from it
(:func:`cidir.runs.fit.resume_run`); a pair whose fit finished under the same plan keeps it;
anything else is fitted afresh.

Everything a task gets and returns is plain data (it crosses process boundaries: the local
pool and Ray); a failure is returned as a record with its error, never raised.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cidir.config import RunConfig
from cidir.errors import FitInterrupted
from cidir.io.atomic import write_json
from cidir.runs.inputs import path_sha256
from cidir.runtime import peak_rss_mb, reset_peak_rss

RECORD_NAME = "cohort_pair.json"
PLAN_NAME = "cohort_plan.json"
FIELD_NAME = "field.nii.gz"
DEFAULT_ALPHA = 0.5  # when the pair has no labels to choose α by


@dataclass(frozen=True)
class PairTask:
    """Plain data for one pair: the manifest row, its resolved configuration (TOML text)
    and where to write."""

    id: str
    paths: dict[str, str | None]
    init: str
    config_toml: str
    out: str
    device: str = "cpu"
    init_model: str | None = None  # a run folder whose network starts the fit


def derive_seed(cohort_seed: int, pair_id: str) -> int:
    """A pair's seed from the cohort's (training.seed) and its id: stable, independent of
    the manifest's order and of the backend."""
    digest = hashlib.sha256(f"{cohort_seed}:{pair_id}".encode()).hexdigest()
    return int(digest[:8], 16) % (2**31 - 1)


def fingerprint(task: PairTask) -> dict[str, Any]:
    """SHA-256 of every input file (and of the init file) and of the resolved config."""
    inputs = {name: path_sha256(Path(p)) for name, p in task.paths.items() if p is not None}
    if Path(task.init).is_file():
        inputs["init"] = path_sha256(Path(task.init))
    if task.init_model is not None:
        inputs["init_model"] = path_sha256(Path(task.init_model) / "model.safetensors")
    config = hashlib.sha256(task.config_toml.encode("utf-8")).hexdigest()
    return {"inputs": inputs, "init": task.init, "config_sha256": config}


def read_record(folder: Path, name: str = RECORD_NAME) -> dict[str, Any] | None:
    import json

    try:
        data = json.loads((folder / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def run_pair(task: PairTask) -> dict[str, Any]:
    """Do the pair (or reuse / resume it); returns its record (status ok, reused, failed or
    interrupted)."""
    start = time.perf_counter()
    folder = Path(task.out) / task.id
    reset_peak_rss()
    try:
        stamp = fingerprint(task)
        previous = read_record(folder)
        if previous and previous.get("status") == "ok" and previous.get("fingerprint") == stamp:
            return {**previous, "status": "reused"}
        record = _do_pair(task, folder, stamp)
    except FitInterrupted as exc:
        return {"id": task.id, "status": "interrupted", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a failing pair is recorded; the others go on
        record = {"id": task.id, "status": "failed",
                  "error": f"{type(exc).__name__}: {' '.join(str(exc).split())}",
                  "traceback": traceback.format_exc(limit=6)}
    record["seconds"] = round(time.perf_counter() - start, 3)
    record["peak_rss_mb"] = round(peak_rss_mb(), 1)
    if folder.is_dir():
        write_json(folder / RECORD_NAME, record)
    return record


def _do_pair(task: PairTask, folder: Path, stamp: dict[str, Any]) -> dict[str, Any]:
    from cidir.runs import commands
    from cidir.runs.folder import RunFolder
    from cidir.selection.alpha_space import Alpha, as_alpha

    run = RunFolder(folder)
    config = RunConfig.from_toml(task.config_toml, f"cohort pair {task.id}")
    p = task.paths
    same_plan = read_record(folder, PLAN_NAME) == stamp
    if same_plan and run.interrupted():
        fit = commands.resume_run(folder, device=task.device, progress=False)
        fit_seconds, how = fit.metrics["fit_seconds"], "resumed"
    elif same_plan and run.model_path.is_file():
        fit_seconds, how = run.metrics().get("fit_seconds"), "kept"
    else:
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / PLAN_NAME, stamp)
        fit = commands.fit_run(str(p["fixed"]), str(p["moving"]), folder, config,
                               fixed_mask_path=p.get("fixed_mask"),
                               moving_mask_path=p.get("moving_mask"), init=task.init,
                               device=task.device, overwrite=True, progress=False,
                               init_model=task.init_model)
        fit_seconds, how = fit.metrics["fit_seconds"], "fitted"
    record: dict[str, Any] = {"id": task.id, "status": "ok", "fit": how,
                              "fit_seconds": fit_seconds, "fingerprint": stamp}
    alpha: Alpha = as_alpha((DEFAULT_ALPHA,) * run.num_conditions())
    alpha_source = f"default {DEFAULT_ALPHA} (no labels given)"
    if p.get("fixed_labels"):
        selection = commands.select_run(folder, str(p["fixed_labels"]), str(p["moving_labels"]),
                                        fixed_points_path=p.get("fixed_points"),
                                        moving_points_path=p.get("moving_points"),
                                        device=task.device)
        alpha, alpha_source = selection.alpha, "label Dice"
        record["select_seconds"] = round(selection.seconds, 3)
    record.update(alpha=alpha, alpha_source=alpha_source)
    # the dense field is evaluated once: written, then used to warp the labels
    field = commands.export_field(folder, str(folder / FIELD_NAME), alpha, device=task.device)
    evaluation = commands.evaluate_run(folder, alpha=alpha, fixed_points=p.get("fixed_points"),
                                       moving_points=p.get("moving_points"),
                                       fixed_labels=p.get("fixed_labels"),
                                       moving_labels=p.get("moving_labels"), device=task.device,
                                       field=field)
    del field
    record.update(_evaluation_figures(evaluation))
    commands.report_run(folder, alpha=alpha, device=task.device)
    record["report"] = f"{task.id}/report.html"
    return record


def _evaluation_figures(evaluation: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"folding_percent": evaluation.folding_percent}
    if evaluation.dice is not None:
        out.update(dice_before=evaluation.dice_before, dice_after=evaluation.dice)
    if evaluation.tre_before is not None and evaluation.tre_after is not None:
        out.update(tre_before_mm=evaluation.tre_before.continuous.mean,
                   tre_after_mm=evaluation.tre_after.continuous.mean)
    return out
