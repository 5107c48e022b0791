"""The ``cidir`` command line: fit, select, apply, export, evaluate, report, phantom, demo,
dirlab, cohort. Bad input ends with a one-line message on stderr and exit status 2.

One output style: each command's human summary goes to stderr (``--quiet`` drops it), its
result as JSON to stdout with ``--json``. Configuration values have one spelling each: the
options generated from the config dataclasses (:mod:`cidir.cli.config_options`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cidir.cli.config_options import config_from_args
from cidir.cli.parser import build_parser
from cidir.errors import FitInterrupted, InputError
from cidir.selection.alpha_space import format_alpha

__all__ = ["build_parser", "main", "run_command"]


@dataclass(frozen=True)
class Outcome:
    """What a command reports: a human summary (stderr), its result as plain data (stdout
    with --json) and warnings (stderr, even with --quiet)."""

    summary: str
    data: dict[str, Any]
    warnings: tuple[str, ...] = ()
    code: int = 0  # the exit status (cohort: 1 when a pair failed)


def _check_resume_args(args: argparse.Namespace) -> None:
    """--resume continues the recorded fit: it takes no inputs or configuration."""
    given = [name.upper() if name in ("fixed", "moving") else f"--{name.replace('_', '-')}"
             for name in ("fixed", "moving", "out", "fixed_mask", "moving_mask", "config",
                          "preset", "init_model") if getattr(args, name, None) is not None]
    given += [f"--{k.split('__')[1]}-{k.split('__')[2].replace('_', '-')}"
              for k, v in vars(args).items() if k.startswith("cfg__") and v is not None]
    given += ["--set"] * bool(args.set) + ["--init"] * (args.init != "none") \
        + ["--overwrite"] * args.overwrite
    if given:
        raise InputError(f"--resume continues the recorded fit with its recorded inputs and "
                         f"configuration; it takes only --device, --threads and the output "
                         f"options (found {', '.join(given)})")


def _run_fit(args: argparse.Namespace) -> Outcome:
    from cidir.runs import commands

    if args.resume:
        _check_resume_args(args)
        fit = commands.resume_run(args.resume, device=args.device, progress=not args.quiet)
    elif not (args.fixed and args.moving and args.out):
        raise InputError("give FIXED MOVING --out RUN, or --resume RUN")
    else:
        fit = commands.fit_run(args.fixed, args.moving, args.out, config_from_args(args),
                               fixed_mask_path=args.fixed_mask,
                               moving_mask_path=args.moving_mask, init=args.init,
                               device=args.device, overwrite=args.overwrite,
                               progress=not args.quiet, init_model=args.init_model)
    m = fit.metrics
    terms = (m.get("calibration") or {}).get("terms") or {}
    scale = ", ".join(f"{name} λ_b = {t['lambda_b']:.3g}" for name, t in terms.items())
    summary = (f"fit: {m['iterations']} iterations in {m['fit_seconds']:.1f} s "
               f"({m['machine']['device']}, {m['machine']['threads']} threads)"
               + (f"; calibrated {scale}" if scale else "")
               + (f"; started from {m['init_model']['path']}" if m.get("init_model") else "")
               + f"; wrote {fit.path}")
    return Outcome(summary, {"run": str(fit.path), **m})


def _run_select(args: argparse.Namespace) -> Outcome:
    from cidir.runs import commands
    from cidir.runs.folder import RunFolder

    run = RunFolder(args.run)
    run.require_trained()
    base = run.load_config()
    if args.config:
        base = base.__class__.load(args.config)
    config = config_from_args(args, base)
    result = commands.select_run(args.run, args.fixed_labels, args.moving_labels,
                                 selection=config.selection, labels=args.labels,
                                 fixed_points_path=args.fixed_points,
                                 moving_points_path=args.moving_points,
                                 rule=args.rule, device=args.device)
    row = result.chosen
    if row.dice is not None:
        score = f"Dice {row.dice:.4f} ± {row.dice_se:.4f}"
    elif row.surface_mm is not None:
        score = f"mean boundary error {row.surface_mm:.3f} mm"
    else:
        score = f"L-curve corner, similarity {row.similarity:.5g}, energy {row.energy:.4g}"
    summary = (f"chosen α = {format_alpha(result.alpha, '.4g')} by {result.rule}: {score}, "
               f"folding {row.folding_percent:.3f}%"
               + (f", TRE {row.tre_mm:.3f} mm" if row.tre_mm is not None else "")
               + f" ({len(result.rows)} α in {result.seconds:.2f} s; tied with it: α = "
               + "; ".join(format_alpha(a, "g") for a in result.tied_alphas) + ")")
    warnings = (result.warning,) if result.warning else ()
    return Outcome(summary, {"run": args.run, **result.to_dict()}, warnings)


def _run_apply(args: argparse.Namespace) -> Outcome:
    from cidir.runs.apply import apply_run

    path = apply_run(args.run, args.out, alpha=args.alpha, image=args.image,
                     labels=args.labels, points=args.points, inverse=args.inverse,
                     reference=args.reference, interpolation=args.interpolation,
                     default_value=args.default_value, device=args.device)
    return Outcome(f"wrote {path}", {"wrote": [str(path)]})


def _run_export(args: argparse.Namespace) -> Outcome:
    from cidir.runs import commands

    paths = commands.export_run(args.run, field=args.field, fmt=args.format,
                                jacobian=args.jacobian, alpha=args.alpha,
                                warp_only=args.warp_only, affine=args.affine,
                                inverse_field=args.inverse_field,
                                uncertainty=args.uncertainty, device=args.device)
    lines = [f"wrote {p}" for p in paths]
    data: dict[str, Any] = {"wrote": [str(p) for p in paths]}
    if args.inverse_field:
        inverse = json.loads((Path(args.run) / "inverse.json").read_text(encoding="utf-8"))
        c = inverse["inverse_consistency"]
        lines.append(f"inverse consistency ‖φ⁻¹(φ(x)) − x‖ in the "
                     f"{inverse['inverse_consistency_region']}: mean {c['mean_mm']:.3g} mm, "
                     f"95th percentile {c['p95_mm']:.3g} mm, max {c['max_mm']:.3g} mm")
        data["inverse"] = inverse
    if args.uncertainty:
        u = json.loads((Path(args.run) / "uncertainty.json").read_text(encoding="utf-8"))
        tied = "; ".join(format_alpha(a, "g") for a in u["tied_alphas"])
        lines.append(f"α-uncertainty over the tied α {tied} in the {u['region']}: mean "
                     f"{u['mean_mm']:.3g} mm, 95th percentile {u['p95_mm']:.3g} mm, max "
                     f"{u['max_mm']:.3g} mm")
        data["uncertainty"] = u
    return Outcome("\n".join(lines), data)


def _run_evaluate(args: argparse.Namespace) -> Outcome:
    from cidir.runs import commands

    result = commands.evaluate_run(args.run, alpha=args.alpha, fixed_points=args.fixed_points,
                                   moving_points=args.moving_points,
                                   fixed_labels=args.fixed_labels,
                                   moving_labels=args.moving_labels, labels=args.labels,
                                   mask=args.mask, out=args.out, device=args.device)
    parts = [f"α {format_alpha(result.alpha, '.4g')}:"]
    if result.tre_before is not None and result.tre_after is not None:
        parts.append(f"TRE {result.tre_before.continuous.mean:.2f} → "
                     f"{result.tre_after.continuous.mean:.2f} mm;")
    if result.dice is not None:
        before = f"{result.dice_before:.4f} → " if result.dice_before is not None else ""
        parts.append(f"Dice {before}{result.dice:.4f};")
    parts.append(f"folding {result.folding_percent:.3f}% ({result.jacobian_region})")
    return Outcome(" ".join(parts), result.to_dict())


def _run_report(args: argparse.Namespace) -> Outcome:
    from cidir.runs import commands

    path = commands.report_run(args.run, alpha=args.alpha, device=args.device)
    return Outcome(f"wrote {path}", {"wrote": [str(path)]})


def _run_phantom(args: argparse.Namespace) -> Outcome:
    from cidir.data.phantom import make_phantom, write_phantom
    from cidir.io.outputs import check_output_folder

    check_output_folder(args.out, "--out")
    paths = write_phantom(make_phantom(args.size, args.seed, args.variant), args.out)
    return Outcome("\n".join(f"{key}: {path}" for key, path in paths.items()),
                   {key: str(path) for key, path in paths.items()})


def _run_demo(args: argparse.Namespace) -> Outcome:
    from cidir.runs.demo import format_summary, run_demo

    summary = run_demo(args.out, config_from_args(args), size=args.size,
                       seed=args.phantom_seed, variant=args.variant, device=args.device,
                       progress=not args.quiet)
    return Outcome(format_summary(summary), summary)


def _run_dirlab(args: argparse.Namespace) -> Outcome:
    from cidir.runs.dirlab import format_summary, run_dirlab

    summary = run_dirlab(args.root, args.case, args.out, config_from_args(args),
                         mask=args.mask, landmarks=args.landmarks, device=args.device,
                         progress=not args.quiet, overwrite=args.overwrite)
    return Outcome(format_summary(summary), summary)


def _pair_line(done: int, total: int, record: dict[str, Any]) -> str:
    """``[k/N] id: status (α, Dice before → after, TRE before → after)`` or its error."""
    figures = [f"α {format_alpha(record['alpha'])}"] if record.get("alpha") is not None else []
    if record.get("dice_after") is not None:
        figures.append(f"Dice {record.get('dice_before') or float('nan'):.3f} → "
                       f"{record['dice_after']:.3f}")
    if record.get("tre_after_mm") is not None:
        figures.append(f"TRE {record['tre_before_mm']:.2f} → {record['tre_after_mm']:.2f} mm")
    detail = ", ".join(figures) if record["status"] != "failed" else record.get("error")
    return f"[{done}/{total}] {record['id']}: {record['status']}" + (
        f" ({detail})" if detail else "")


def _run_cohort(args: argparse.Namespace) -> Outcome:
    from tqdm.auto import tqdm

    from cidir.cohort import run_cohort

    bars: list[Any] = []  # a progress bar over pairs (on a terminal), a line per pair

    def progress(done: int, total: int, record: dict[str, Any] | None) -> None:
        if args.quiet:
            return
        if not bars:
            bars.append(tqdm(total=total, desc="cohort", unit="pair", file=sys.stderr,
                             disable=None))
        if record is not None:
            bars[0].write(_pair_line(done, total, record), file=sys.stderr)
            bars[0].update(1)

    if args.ray_address and args.backend != "ray":
        raise InputError("--ray-address goes with --backend ray")
    try:
        result = run_cohort(args.manifest, args.out, config_from_args(args),
                            workers=args.workers, threads=args.threads, device=args.device,
                            backend=args.backend, ray_address=args.ray_address,
                            progress=progress)
    finally:
        for bar in bars:
            bar.close()
    counts = {s: sum(r.get("status") == s for r in result.records)
              for s in ("ok", "reused", "failed")}
    summary = (f"cohort: {len(result.records)} pairs ("
               + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
               + f") in {result.seconds:.0f} s; wrote {result.out / 'cohort.html'}")
    failed = [f"pair {r['id']} failed: {r.get('error')}" for r in result.failed]
    return Outcome(summary, {"out": str(result.out), "pairs": result.records},
                   tuple(failed), code=1 if failed else 0)


COMMANDS = {"fit": _run_fit, "select": _run_select, "apply": _run_apply,
            "export": _run_export, "evaluate": _run_evaluate, "report": _run_report,
            "phantom": _run_phantom, "demo": _run_demo, "dirlab": _run_dirlab,
            "cohort": _run_cohort}


def run_command(args: argparse.Namespace) -> Outcome:
    """Run the parsed command (one handler per subcommand)."""
    return COMMANDS[args.command](args)


def _show(args: argparse.Namespace, outcome: Outcome) -> None:
    """Summary and warnings on stderr, JSON on stdout with --json."""
    if outcome.summary and not args.quiet:
        print(outcome.summary, file=sys.stderr)
    for warning in outcome.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(outcome.data, indent=2, default=str))


class _PlainWarnings(logging.Formatter):
    """``warning: message``, as the commands' own warnings read (without -v)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


@contextlib.contextmanager
def _console_logging(verbosity: int) -> Iterator[None]:
    """The ``cidir`` logger on stderr while a command runs: warnings only by default, INFO
    with -v, DEBUG with -vv (the records do not go on to the root logger); put back after."""
    from cidir.runs.fit_log import DATE_FORMAT, FORMAT, LOGGER, not_echoed

    logger = logging.getLogger(LOGGER)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT) if verbosity else
                         _PlainWarnings())
    handler.addFilter(not_echoed)  # errors and interruptions: the CLI states them itself
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler.setLevel(level)
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(min(level, logging.INFO))  # INFO reaches RUN/fit.log
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import SimpleITK as sitk

    from cidir.runtime import configure_threads

    if hasattr(args, "threads"):
        configure_threads(args.threads)

    # ITK prints reader warnings on stderr; cidir states what matters in its own messages
    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        with _console_logging(getattr(args, "verbose", 0)):
            outcome = run_command(args)
    except InputError as exc:
        message = " ".join(str(exc).split())
        print(f"cidir {args.command}: error: {message}", file=sys.stderr)
        return 2
    except FitInterrupted as exc:
        print(f"cidir {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"cidir {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)
    _show(args, outcome)
    return outcome.code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
