"""What each CLI command does, as functions on paths (the CLI only parses arguments).

Each reads its files, computes with the in-memory API (:mod:`cidir.api`) and records the
result in the run folder; ``record_*`` and :func:`write_run_report` do the recording for
callers that computed in memory (the demo, DIR-LAB) and hold the run's lock.

Every function validates all its inputs and outputs (paths, formats) before it computes or
writes anything, so that bad input leaves no output behind and costs no time; every output
is written atomically. Commands that write into a run folder hold its lock
(:mod:`cidir.runs.lock`); every file they read from it must belong to the run's fit
(:mod:`cidir.runs.identity`), and they stamp what they write with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cidir.alignment.initial import write_transform
from cidir.api import choose_alpha, evaluate
from cidir.config import RULES, SelectionConfig
from cidir.errors import InputError
from cidir.evaluation import Evaluation
from cidir.fields import ConditionedTransform, displacement_field, jacobian_determinant_map
from cidir.geometry import Image
from cidir.io.field_export import (
    check_export_path,
    elastix_field_path,
    write_displacement_field,
)
from cidir.io.images import (
    check_common_labels,
    read_image,
    read_label_map,
    read_mask,
    write_image,
)
from cidir.io.landmarks import check_pairs, read_points
from cidir.io.outputs import check_image_output, check_output_file
from cidir.runs.apply import apply_run
from cidir.runs.at_alpha import alpha_for, provenance
from cidir.runs.fit import FitRun, fit_run, machine_info, resume_run
from cidir.runs.folder import RunFolder
from cidir.runs.inverse import export_inverse
from cidir.runs.uncertainty import export_uncertainty, selection_tied_alphas
from cidir.runtime import resolve_device
from cidir.selection import SelectionResult, search_lcurve
from cidir.selection.alpha_space import Alpha, alpha_columns, as_alpha

__all__ = ["FitRun", "apply_run", "evaluate_run", "export_run", "fit_run", "machine_info",
           "record_evaluation", "record_selection", "report_run", "resume_run", "select_run",
           "write_run_report"]


# ------------------------------------------------------------------------ helpers
def _load_run_images(run: RunFolder) -> tuple[Image, Image]:
    fixed, moving = run.input_path("fixed"), run.input_path("moving")
    if fixed is None or moving is None:
        raise InputError(f"run {run.path}: inputs.json does not name the fixed and moving images")
    return (read_image(fixed, "fixed image (from inputs.json)"),
            read_image(moving, "moving image (from inputs.json)"))


def _read_label_pair(fixed_labels_path: str, moving_labels_path: str, fixed: Image,
                     moving: Image) -> tuple[Image, Image, list[int]]:
    fl = read_label_map(fixed_labels_path, "fixed labels", reference=fixed.grid)
    ml = read_label_map(moving_labels_path, "moving labels", reference=moving.grid)
    common = check_common_labels(fl, ml, "labels")
    return fl, ml, common


def _read_point_pair(fixed_points: str, moving_points: str, fixed: Image,
                     moving: Image) -> tuple[np.ndarray, np.ndarray]:
    fp = read_points(fixed_points, fixed.grid, "fixed points")
    mp = read_points(moving_points, moving.grid, "moving points")
    check_pairs(fp, mp, "landmarks")
    return fp, mp


def _labels_option(labels: Sequence[int] | None, common: list[int]) -> list[int]:
    if labels is None:
        return common
    missing = sorted(set(labels) - set(common))
    if missing:
        raise InputError(f"--labels: label(s) {missing} are not present in both label maps "
                         f"(common labels: {common})")
    return list(labels)


# ------------------------------------------------------------------------ select
def select_run(run_dir: str | Path, fixed_labels_path: str | None = None,
               moving_labels_path: str | None = None, *,
               selection: SelectionConfig | None = None, labels: Sequence[int] | None = None,
               fixed_points_path: str | None = None, moving_points_path: str | None = None,
               rule: str = "dice", device: str = "cpu") -> SelectionResult:
    """Grid search over α by ``rule`` (dice, surface, tre or lcurve); writes alpha_table.csv
    and selection.json."""
    run = RunFolder(run_dir)
    run.require_trained()
    _check_rule_inputs(rule, fixed_labels_path, moving_labels_path, fixed_points_path,
                       moving_points_path, labels)
    with run.locked("select"):
        run.require_trained()
        fixed, moving = _load_run_images(run)
        fp = mp = None
        if fixed_points_path:
            fp, mp = _read_point_pair(fixed_points_path, moving_points_path, fixed, moving)
        config = run.load_config()
        chosen_config = selection or config.selection
        if rule == "lcurve":
            mask = run.fixed_mask(fixed.grid)
            transform = run.load_transform(resolve_device(device))
            result = search_lcurve(transform, fixed, moving, config.objective, chosen_config,
                                   mask=mask, margin_mm=config.training.mask_margin_mm,
                                   fixed_points=fp, moving_points=mp)
        else:
            assert fixed_labels_path and moving_labels_path  # checked with the inputs
            fl, ml, common = _read_label_pair(fixed_labels_path, moving_labels_path, fixed,
                                              moving)
            chosen_labels = _labels_option(labels, common)
            transform = run.load_transform(resolve_device(device))
            result = choose_alpha(transform, fl, ml, chosen_config, labels=chosen_labels,
                                  fixed_points=fp, moving_points=mp, rule=rule)
        record_selection(run, result, chosen_config, fixed_labels=fixed_labels_path,
                         moving_labels=moving_labels_path, fixed_points=fixed_points_path,
                         moving_points=moving_points_path)
    return result


def _check_rule_inputs(rule: str, fixed_labels: str | None, moving_labels: str | None,
                       fixed_points: str | None, moving_points: str | None,
                       labels: Sequence[int] | None) -> None:
    """InputError naming the argument a rule is missing (or cannot use), before any work."""
    if rule not in RULES:
        raise InputError(f"--rule: expected one of {', '.join(RULES)}, found {rule!r}")
    if (fixed_points is None) != (moving_points is None):
        raise InputError("--fixed-points and --moving-points go together")
    if (fixed_labels is None) != (moving_labels is None):
        raise InputError("--fixed-labels and --moving-labels go together")
    if rule in ("dice", "surface") and fixed_labels is None:
        raise InputError(f"--rule {rule} needs --fixed-labels and --moving-labels (label maps "
                         "on the fixed and moving grids); without labels use --rule lcurve")
    if rule == "tre" and fixed_points is None:
        raise InputError("--rule tre needs --fixed-points and --moving-points (landmark "
                         "pairs); without them use --rule lcurve")
    if rule == "lcurve" and (fixed_labels is not None or labels is not None):
        raise InputError("--rule lcurve uses no labels: drop --fixed-labels, "
                         "--moving-labels and --labels (score the chosen α with cidir "
                         "evaluate), or choose by --rule dice")


def record_selection(run: RunFolder, result: SelectionResult, config: SelectionConfig, *,
                     fixed_labels: str | Path | None = None,
                     moving_labels: str | Path | None = None,
                     fixed_points: str | Path | None = None,
                     moving_points: str | Path | None = None) -> dict[str, Any]:
    """Write alpha_table.csv and selection.json and record the label / point files in
    inputs.json (the caller holds the run's lock). Returns selection.json's content."""
    out = result.to_dict()
    out["selection_config"] = {k: getattr(config, k) for k in config.__dataclass_fields__}
    out["files"] = {"alpha_table.csv": run.write_csv(run.alpha_table_path,
                                                     _alpha_rows(result.rows))}
    run.write_json(run.selection_path, out)
    run.update_inputs(fixed_labels=fixed_labels, moving_labels=moving_labels,
                      fixed_points=fixed_points, moving_points=moving_points)
    return out


def _alpha_rows(result_rows) -> list[dict[str, Any]]:
    rows = []
    for row in result_rows:
        entry: dict[str, Any] = dict(alpha_columns(row.alpha))
        if row.dice is not None:
            entry.update(dice=row.dice, dice_se=row.dice_se, dice_gap_se=row.dice_gap_se)
        if row.similarity is not None:
            entry.update(similarity=row.similarity, energy=row.energy)
        if row.surface_mm is not None:
            entry["surface_mm"] = row.surface_mm
        entry["folding_percent"] = row.folding_percent
        entry["std_log_jacobian"] = row.std_log_jacobian
        if row.tre_mm is not None:
            entry["tre_mm"] = row.tre_mm
        entry.update({f"dice_label_{k}": v for k, v in row.dice_per_label.items()})
        rows.append(entry)
    return rows


# ------------------------------------------------------------------------ export
def export_run(run_dir: str | Path, *, field: str | None = None, fmt: str = "itk",
               jacobian: str | None = None, alpha: Alpha | None = None,
               warp_only: str | None = None, affine: str | None = None,
               inverse_field: str | None = None, uncertainty: str | None = None,
               device: str = "cpu") -> list[Path]:
    """Write at α the displacement field φ(x) − x, the Jacobian-determinant map, and/or φ's
    two parts apart: the warp alone (u(x) on the fixed grid, ``warp_only``) and the initial
    affine (an ITK transform file, ``affine``), so that φ = affine ∘ warp; and φ⁻¹ − id on
    the moving grid (``inverse_field``, with RUN/inverse.json, :mod:`cidir.runs.inverse`);
    the α-uncertainty map of the selection's tied α (``uncertainty``, with
    RUN/uncertainty.json, :mod:`cidir.runs.uncertainty`)."""
    run = RunFolder(run_dir)
    run.require_trained()
    if all(x is None for x in (field, jacobian, warp_only, affine, inverse_field, uncertainty)):
        raise InputError("export: give --field, --jacobian, --warp-only, --affine, "
                         "--inverse-field and/or --uncertainty")
    a = alpha_for(run, alpha)
    _check_export_outputs(run.ndim(), field, fmt, jacobian, warp_only, affine, inverse_field)
    selection = None
    if uncertainty is not None:
        check_image_output(uncertainty, "--uncertainty", run.ndim(), "float")
        selection = run.selection()
        selection_tied_alphas(selection, run)  # refuses a run without a selection
    transform = run.load_transform(resolve_device(device))
    meta = provenance(run, a)
    written = []
    if field is not None:
        written += write_displacement_field(displacement_field(transform, a), transform.grid,
                                            field, fmt, metadata=meta)
    if warp_only is not None:
        written += write_displacement_field(
            displacement_field(transform, a, with_affine=False), transform.grid, warp_only,
            fmt, metadata=meta)
    if affine is not None:
        write_transform(transform.init_matrix, affine)
        written.append(Path(affine))
    if inverse_field is not None:
        written += export_inverse(run, transform, a, inverse_field, fmt, meta)
    if jacobian is not None:
        det = jacobian_determinant_map(transform, a)
        write_image(Image(det, transform.grid, "jacobian"), jacobian, metadata=meta)
        written.append(Path(jacobian))
    if uncertainty is not None:
        written += export_uncertainty(run, transform, uncertainty, meta, selection)
    return written


def export_field(run_dir: str | Path, field: str, alpha: Alpha,
                 device: str = "cpu") -> np.ndarray:
    """Write the ITK displacement field at α (like ``export --field``) and return it, so
    that later steps (``evaluate_run(field=...)``) need not evaluate the network again."""
    run = RunFolder(run_dir)
    run.require_trained()
    alpha = alpha_for(run, alpha)
    _check_export_outputs(run.ndim(), field, "itk", None, None, None, None)
    transform = run.load_transform(resolve_device(device))
    array = displacement_field(transform, alpha)
    write_displacement_field(array, transform.grid, field, "itk",
                             metadata=provenance(run, alpha))
    return array


AFFINE_SUFFIXES = (".tfm", ".txt", ".mat", ".h5")


def _check_export_outputs(ndim: int, field: str | None, fmt: str, jacobian: str | None,
                          warp_only: str | None, affine: str | None,
                          inverse_field: str | None) -> None:
    """Every output path of ``export`` checked before any work (InputError naming it)."""
    for path, option in ((field, "--field"), (warp_only, "--warp-only"),
                         (inverse_field, "--inverse-field")):
        if path is None:
            continue
        if option != "--field" and fmt == "elastix":
            raise InputError(f"{option}: the elastix format writes the whole forward "
                             "transform; use --field with --format elastix, or --format itk "
                             "/ ants here")
        check_output_file(check_export_path(path, fmt), option)
        check_image_output(path if fmt != "elastix" else elastix_field_path(path), option,
                           ndim, "vector")
    if jacobian is not None:
        check_image_output(jacobian, "--jacobian", ndim, "float")
    if affine is not None:
        if not str(affine).lower().endswith(AFFINE_SUFFIXES):
            raise InputError(f"--affine {affine}: expected an ITK transform file name "
                             f"({', '.join(AFFINE_SUFFIXES)}; .mat is ANTs' format)")
        check_output_file(Path(affine), "--affine")


# ---------------------------------------------------------------------- evaluate
def evaluate_run(run_dir: str | Path, *, alpha: Alpha | None = None,
                 fixed_points: str | None = None, moving_points: str | None = None,
                 fixed_labels: str | None = None, moving_labels: str | None = None,
                 labels: Sequence[int] | None = None, mask: str | None = None,
                 out: str | None = None, device: str = "cpu",
                 field: np.ndarray | None = None) -> Evaluation:
    """Evaluate at α and write ``out`` (default RUN/evaluation.json). ``field``: the run's
    dense field at that α, already computed (e.g. by :func:`export_field`)."""
    run = RunFolder(run_dir)
    run.require_trained()
    if (fixed_points is None) != (moving_points is None):
        raise InputError("--fixed-points and --moving-points go together")
    if (fixed_labels is None) != (moving_labels is None):
        raise InputError("--fixed-labels and --moving-labels go together")
    target = check_output_file(out) if out else run.evaluation_path
    with run.locked("evaluate"):
        run.require_trained()
        a = alpha_for(run, alpha)
        fixed, moving = _load_run_images(run)
        fp = mp = fl = ml = None
        if fixed_points:
            fp, mp = _read_point_pair(fixed_points, moving_points, fixed, moving)
        chosen = None
        if fixed_labels:
            fl, ml, common = _read_label_pair(fixed_labels, moving_labels, fixed, moving)
            chosen = _labels_option(labels, common)
        mask_path = mask or run.input_path("fixed_mask")
        m = read_mask(mask_path, "mask", reference=fixed.grid).array if mask_path else None
        transform = run.load_transform(resolve_device(device))
        result = evaluate(transform, a, fixed_points=fp, moving_points=mp,
                          moving_grid=moving.grid, fixed_labels=fl, moving_labels=ml,
                          labels=chosen, mask=m, field=field)
        record_evaluation(run, result, target)
    return result


def record_evaluation(run: RunFolder, result: Evaluation, target: Path | None = None) -> Path:
    """Write the evaluation (default RUN/evaluation.json; the caller holds the run's lock)."""
    target = target or run.evaluation_path
    run.write_json(target, result.to_dict())
    return target


# ------------------------------------------------------------------------ report
def report_run(run_dir: str | Path, *, alpha: Alpha | None = None,
               device: str = "cpu") -> Path:
    """Write RUN/report.html with its figures, at α (default: the selected α, else 0.5)."""
    run = RunFolder(run_dir)
    run.require_trained()
    if alpha is not None:
        alpha = alpha_for(run, alpha)
    with run.locked("report"):
        run.require_trained()
        fixed, moving = _load_run_images(run)
        fl = ml = None
        fixed_labels, moving_labels = run.input_path("fixed_labels"), \
            run.input_path("moving_labels")
        if fixed_labels and moving_labels:
            fl = read_label_map(fixed_labels, "fixed labels", reference=fixed.grid)
            ml = read_label_map(moving_labels, "moving labels", reference=moving.grid)
        transform = run.load_transform(resolve_device(device))
        return write_run_report(run, transform, fixed, moving, alpha=alpha, fixed_labels=fl,
                                moving_labels=ml)


def write_run_report(run: RunFolder, transform: ConditionedTransform, fixed: Image,
                     moving: Image, *, alpha: Alpha | None = None,
                     fixed_labels: Image | None = None,
                     moving_labels: Image | None = None) -> Path:
    """Write RUN/report.html from the run's recorded numbers and the given transform and
    images (the caller holds the run's lock); α defaults to the selected α, else 0.5. The
    fixed mask recorded in inputs.json is outlined on the difference images."""
    from cidir.reporting import RunRecord, file_date, write_report

    selection = run.selection()
    given = alpha is not None
    if alpha is None:
        alpha = (as_alpha(selection["alpha"]) if selection
                 else as_alpha((0.5,) * run.num_conditions()))
    metrics = run.metrics()
    evaluation = run.read_derived(run.evaluation_path, "rerun cidir evaluate")
    if evaluation is not None:
        metrics = {**metrics, "evaluation": evaluation}
    hidden = ("fixed_grid", "moving_grid", "init_matrix", "files", "run_id", "model_sha256")
    metrics = {k: v for k, v in metrics.items() if k not in hidden}
    mask = run.fixed_mask(fixed.grid)
    record = RunRecord(metrics=metrics, evaluation=evaluation, inputs=run.inputs(),
                       fit_date=file_date(run.model_path), alpha_given=given)
    ident = run.identity()
    return write_report(run.path, transform=transform, fixed=fixed, moving=moving,
                        alpha=alpha, config_toml=run.config_path.read_text(encoding="utf-8"),
                        metrics=metrics, selection=selection, fixed_labels=fixed_labels,
                        moving_labels=moving_labels, loss_history=run.loss_history(),
                        title=f"cidir report: {run.path.resolve().parent.name}/{run.path.name}",
                        run_id=ident.run_id if ident else None, fixed_mask=mask,
                        record=record)
