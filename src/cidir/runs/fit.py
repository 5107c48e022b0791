"""``cidir fit`` and ``cidir fit --resume``.

A fit checks everything before it trains: the output folder (not a file, writable), the
images (readable, 2D or true 3D, the same dimension), the masks, the configuration, the
device, the initial alignment and the images' overlap (:mod:`cidir.runs.preflight`). It then
holds the run's lock (:mod:`cidir.runs.lock`), trains into a staging folder with periodic
checkpoints (``training.checkpoint_every``) and, on success only, switches the new files in
and everything derived from an earlier fit out (:mod:`cidir.runs.staging`). Ctrl-C (or
SIGTERM) ends the current iteration, saves a checkpoint and raises
:class:`~cidir.errors.FitInterrupted`; :func:`resume_run` continues from the checkpoint,
with the recorded inputs (checked by SHA-256) and configuration, to the same final model as
an uninterrupted fit.
"""

from __future__ import annotations

import logging
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cidir import __version__
from cidir.api import initial_transform, start_fit
from cidir.config import RunConfig
from cidir.errors import FitInterrupted, InputError
from cidir.fields import ConditionedTransform
from cidir.geometry import Image
from cidir.io.atomic import write_json, write_text
from cidir.io.images import check_same_dimension, read_image, read_mask
from cidir.io.model_store import load_model, read_metadata, save_model
from cidir.io.outputs import check_output_folder
from cidir.runs import inputs as input_records
from cidir.runs import staging
from cidir.runs.fit_log import (
    ECHOED,
    LOG_NAME,
    log_fit_start,
    log_to_file,
    recorded_warnings,
)
from cidir.runs.folder import RunFolder
from cidir.runs.identity import config_run_id, config_text, new_run_id, sha256_file
from cidir.runs.interrupt import SignalFlag
from cidir.runs.preflight import check_overlap, check_volume
from cidir.runtime import resolve_device
from cidir.training import Checkpoint, LogProgress, ProgressBar, StopWhen, Trainer
from cidir.training.checkpoint import load_checkpoint
from cidir.training.warm_start import check_compatible

IMAGE_INPUTS = ("fixed", "moving", "fixed_mask", "moving_mask")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitRun:
    """A finished fit: its run folder, the metrics it wrote (stamped with the run's
    identity), and the trained transform with the images it was trained on, in memory for
    the steps that follow (select, evaluate, report) without reading them again."""

    path: Path
    metrics: dict[str, Any]
    transform: ConditionedTransform
    fixed: Image
    moving: Image
    fixed_mask: Image | None


def machine_info(device: torch.device) -> dict[str, Any]:
    info = {"torch": torch.__version__, "device": str(device), "threads": torch.get_num_threads(),
            "python": platform.python_version(), "platform": platform.platform()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _read_pair(paths: dict[str, str | None]) -> tuple[Image, Image, Image | None, Image | None]:
    fixed = read_image(paths["fixed"], "fixed image")
    moving = read_image(paths["moving"], "moving image")
    check_same_dimension(fixed, moving, "fixed image", "moving image")
    check_volume(fixed, "fixed image")
    check_volume(moving, "moving image")
    fixed_mask = (read_mask(paths["fixed_mask"], "fixed mask", reference=fixed.grid)
                  if paths.get("fixed_mask") else None)
    moving_mask = (read_mask(paths["moving_mask"], "moving mask", reference=moving.grid)
                   if paths.get("moving_mask") else None)
    return fixed, moving, fixed_mask, moving_mask


def _refuse_existing(run: RunFolder, overwrite: bool) -> None:
    if overwrite:
        return
    if run.model_path.exists():
        raise InputError(f"--out {run.path}: already holds a trained model; choose another "
                         "folder or pass --overwrite")
    interrupted = run.interrupted()
    if interrupted:
        raise InputError(f"--out {run.path}: holds a fit interrupted at iteration "
                         f"{interrupted}; resume it with cidir fit --resume {run.path}, or "
                         "pass --overwrite to start again")


def fit_run(fixed_path: str, moving_path: str, out: str | Path, config: RunConfig, *,
            fixed_mask_path: str | None = None, moving_mask_path: str | None = None,
            init: str = "none", device: str = "cpu", overwrite: bool = False,
            progress: bool = True, init_model: str | None = None) -> FitRun:
    """Train one conditioned network for a pair; write the run folder. ``init_model``: a
    run folder whose network starts this fit (warm start, checked before anything is
    written)."""
    run = RunFolder(out)
    check_output_folder(run.path, "--out")
    _refuse_existing(run, overwrite)
    paths = {"fixed": fixed_path, "moving": moving_path, "fixed_mask": fixed_mask_path,
             "moving_mask": moving_mask_path}
    with recorded_warnings() as input_warnings:
        fixed, moving, fixed_mask, moving_mask = _read_pair(paths)
    source, source_record = _read_init_model(init_model, config, fixed.ndim)
    dev = resolve_device(device)
    start = time.perf_counter()
    init_matrix = initial_transform(fixed, moving, init, fixed_mask=fixed_mask,
                                    moving_mask=moving_mask, seed=config.training.seed)
    plan = {"init": input_records.init_label(input_records.record_init(init, run.path)),
            "init_matrix": init_matrix.tolist(),
            "init_seconds": round(time.perf_counter() - start, 3),
            "overlap": round(check_overlap(fixed, moving, init_matrix, fixed_mask, init), 4),
            "fixed_grid": fixed.grid.to_dict(), "moving_grid": moving.grid.to_dict(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "resumed_at": [],
            "init_model": source_record, "input_warnings": input_warnings}
    created = not run.path.exists()
    try:
        with run.locked("fit"):
            _refuse_existing(run, overwrite)
            plan["run_id"] = new_run_id()
            stage = staging.new_staging(run.path, plan["run_id"])
            try:
                _write_plan(run, stage, config, plan, paths, init)
                trainer = start_fit(fixed, moving, config, fixed_mask=fixed_mask,
                                    init_matrix=init_matrix, device=dev, init_model=source)
            except BaseException:
                shutil.rmtree(stage, ignore_errors=True)
                raise
            metrics = _train_and_commit(run, stage, trainer, plan, progress)
            return FitRun(run.path, metrics, trainer.transform, fixed, moving, fixed_mask)
    finally:
        if created and run.path.is_dir() and not any(run.path.iterdir()):
            run.path.rmdir()


def _read_init_model(path: str | None, config: RunConfig, ndim: int
                     ) -> tuple[tuple[ConditionedTransform, RunConfig] | None, dict | None]:
    """The network of run folder ``path`` for a warm start (checked compatible) and a record
    of it (path, run id, checksum); (None, None) without one."""
    if path is None:
        return None, None
    other = RunFolder(path)
    if not other.model_path.is_file():
        raise InputError(f"--init-model {path}: expected a run folder with a trained model "
                         "(model.safetensors), found none")
    transform, other_config = load_model(other.model_path)
    check_compatible(transform, other_config, config, ndim, f"--init-model {path}")
    record = {"path": str(other.path.resolve()),
              "run_id": read_metadata(other.model_path).get("run_id"),
              "model_sha256": sha256_file(other.model_path)}
    return (transform, other_config), record


def _write_plan(run: RunFolder, stage: Path, config: RunConfig, plan: dict[str, Any],
                paths: dict[str, str | None], init: str) -> None:
    """Write what the fit trains into the staging folder, before training."""
    from cidir.alignment import write_transform

    write_text(stage / "config.toml", config_text(config.to_toml(), plan["run_id"]))
    records = {name: input_records.record(path, run.path)
               for name, path in paths.items() if path is not None}
    records["init"] = input_records.record_init(init, run.path)
    write_json(stage / "inputs.json", {"run_id": plan["run_id"],
                                       "format": input_records.FORMAT, "inputs": records})
    if plan["init"] != "none":
        write_transform(plan["init_matrix"], stage / "init_transform.tfm")
    write_json(stage / staging.FIT_INFO_NAME, plan)


def _train_and_commit(run: RunFolder, stage: Path, trainer: Trainer, plan: dict[str, Any],
                      progress: bool) -> dict[str, Any]:
    """Train (from the trainer's iteration), write the results, switch them in; the course
    goes to the staging folder's fit.log."""
    with log_to_file(stage / LOG_NAME):
        log_fit_start(plan, trainer.config, machine_info(trainer.device), trainer.iteration)
        try:
            return _train_logged(run, stage, trainer, plan, progress)
        except FitInterrupted as exc:  # the caller states these: not echoed on the console
            log.warning("%s", exc, extra=ECHOED)
            raise
        except BaseException as exc:
            log.error("fit failed: %s", exc if str(exc) else type(exc).__name__, extra=ECHOED)
            raise


def _train_logged(run: RunFolder, stage: Path, trainer: Trainer, plan: dict[str, Any],
                  progress: bool) -> dict[str, Any]:
    total = trainer.config.training.iterations
    checkpoint = Checkpoint(stage / staging.CHECKPOINT_NAME,
                            trainer.config.training.checkpoint_every, trainer,
                            {"run_id": plan["run_id"], "iterations": str(total)})
    bar = ProgressBar(disable=not progress)
    hooks = [bar, LogProgress(max(trainer.config.training.log_every, total // 20)), checkpoint]
    try:
        with SignalFlag() as flag:
            try:
                trainer.run([*hooks, StopWhen(lambda: bool(flag))])
            except KeyboardInterrupt:
                bar.close()
                raise _interrupted(run, stage, None, 130) from None
            finally:
                bar.close()
            if flag and trainer.iteration < total:
                checkpoint.save()
                raise _interrupted(run, stage, f"{trainer.iteration}/{total}",
                                   128 + int(flag.signum))
            metrics = _write_results(stage, trainer, plan)
            log.info("wrote the model and metrics; fit %.1f s", metrics["fit_seconds"])
            staging.commit(run.path, stage)
            return metrics
    except (FitInterrupted, KeyboardInterrupt):
        raise
    except BaseException:
        # keep what can still be used: a checkpoint to resume from, a switch to complete
        if not (stage / staging.CHECKPOINT_NAME).is_file() and not staging.pending(run.path):
            shutil.rmtree(stage, ignore_errors=True)
        raise


def _interrupted(run: RunFolder, stage: Path, where: str | None,
                 code: int) -> FitInterrupted:
    """The error that ends an interrupted fit; ``where`` "N/M" (None: the last checkpoint's)."""
    where = where or run.interrupted()
    if where is None:  # a second signal before the first checkpoint: nothing to resume
        shutil.rmtree(stage, ignore_errors=True)
        return FitInterrupted("interrupted before the first checkpoint; nothing was saved",
                              code)
    return FitInterrupted(f"interrupted at iteration {where}; resume with: cidir fit "
                          f"--resume {run.path}", code)


def _write_results(stage: Path, trainer: Trainer, plan: dict[str, Any]) -> dict[str, Any]:
    """model.safetensors, loss.csv, metrics.json (and inputs.json stamped) in ``stage``."""
    config = trainer.config
    save_model(stage / "model.safetensors", trainer.transform, config,
               extra={"run_id": plan["run_id"]})
    folder = RunFolder(stage)
    files = {"loss.csv": folder.write_csv(folder.loss_path, trainer.history)}
    if folder.init_path.is_file():
        files["init_transform.tfm"] = sha256_file(folder.init_path)
    inputs = folder.read_json(folder.inputs_path)
    folder.write_json(folder.inputs_path, inputs)  # now with the model's checksum
    metrics = {
        "cidir_version": __version__,
        "started": plan["started"],
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "fit_seconds": round(trainer.elapsed_seconds, 3),
        "init_seconds": plan["init_seconds"],
        "iterations": trainer.iteration,
        "final_loss": trainer.history[-1] if trainer.history else {},
        "calibration": trainer.calibration,
        "resumed_at": plan["resumed_at"],
        "overlap_fraction": plan["overlap"],
        "fixed_grid": plan["fixed_grid"],
        "moving_grid": plan["moving_grid"],
        "init": plan["init"],
        "init_matrix": plan["init_matrix"],
        "init_model": plan.get("init_model"),
        "machine": machine_info(trainer.device),
        "files": files,
    }
    folder.write_json(folder.metrics_path, metrics)
    return {**folder.identity().stamp(), **metrics}


# ------------------------------------------------------------------------ resume
def resume_run(run_dir: str | Path, *, device: str = "cpu",
               progress: bool = True) -> FitRun:
    """Continue the interrupted fit in ``run_dir`` from its checkpoint."""
    run = RunFolder(run_dir)
    if not run.path.is_dir():
        raise InputError(f"--resume {run.path}: no such run folder")
    dev = resolve_device(device)
    with run.locked("fit --resume"):
        stage, state = _interrupted_stage(run)
        plan = _read_json(stage / staging.FIT_INFO_NAME)
        config = RunConfig.load(stage / "config.toml")
        run_id = config_run_id((stage / "config.toml").read_text(encoding="utf-8"))
        if run_id != plan.get("run_id") or state[1].get("run_id") != run_id:
            raise InputError(f"--resume {run.path}: the staging folder {stage.name} mixes "
                             "files of different fits; start again with --overwrite")
        records = _read_json(stage / "inputs.json").get("inputs") or {}
        paths = {name: (str(input_records.resolve(records[name], run.path, name))
                        if name in records else None) for name in IMAGE_INPUTS}
        if paths["fixed"] is None or paths["moving"] is None:
            raise InputError(f"{stage / 'inputs.json'}: names no fixed and moving images")
        fixed, moving, fixed_mask, _ = _read_pair(paths)
        trainer = start_fit(fixed, moving, config, fixed_mask=fixed_mask,
                            init_matrix=np.asarray(plan["init_matrix"], float), device=dev)
        trainer.load_state_dict(state[0])
        plan["resumed_at"] = list(plan.get("resumed_at", [])) + [trainer.iteration]
        write_json(stage / staging.FIT_INFO_NAME, plan)
        metrics = _train_and_commit(run, stage, trainer, plan, progress)
        return FitRun(run.path, metrics, trainer.transform, fixed, moving, fixed_mask)


def _interrupted_stage(run: RunFolder) -> tuple[Path, tuple[dict, dict]]:
    for stage in staging.staging_folders(run.path):
        checkpoint = stage / staging.CHECKPOINT_NAME
        if checkpoint.is_file():
            return stage, load_checkpoint(checkpoint)
    finished = " (it holds a finished fit)" if run.model_path.is_file() else ""
    raise InputError(f"--resume {run.path}: nothing to resume: no interrupted fit with a "
                     f"checkpoint in this folder{finished}")


def _read_json(path: Path) -> dict[str, Any]:
    return RunFolder(path.parent).read_json(path)
