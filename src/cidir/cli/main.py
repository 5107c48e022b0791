"""The ``cidir`` command line: fit, select, apply, export, evaluate, report, phantom, demo,
dirlab. Bad input ends with a one-line message on stderr and exit status 2."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from cidir.cli.arg_types import label_list, positive_int
from cidir.cli.config_options import add_config_options, config_from_args
from cidir.config import CRITERIA
from cidir.errors import FitInterrupted, InputError

Subparsers = argparse._SubParsersAction

EPILOG = "Frames: images and fields in world mm (LPS); fields map fixed → moving."


def _device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="CPU threads for torch (default: the cores this process may use; "
                        "idle threads sleep, so two runs side by side share the cores "
                        "without spinning; with K runs on one machine, cores / K each is best)")


def _alpha(p: argparse.ArgumentParser, default_text: str) -> None:
    p.add_argument("--alpha", type=float, help=f"α in [0, 1] ({default_text})")


def _add_fit(sub: Subparsers) -> None:
    p = sub.add_parser("fit", help="train the conditioned network for an image pair",
                       description="Train one network for FIXED ← MOVING over the α prior. "
                                   "Writes RUN/model.safetensors, config.toml (resolved), "
                                   "metrics.json, loss.csv, inputs.json. Everything is checked "
                                   "before training; Ctrl-C saves a checkpoint (also saved "
                                   "every training.checkpoint_every iterations) that "
                                   "--resume RUN continues from.", epilog=EPILOG)
    p.add_argument("fixed", nargs="?", help="fixed image (NIfTI, MHA, NRRD, or a DICOM series "
                                            "folder)")
    p.add_argument("moving", nargs="?", help="moving image")
    p.add_argument("--out", metavar="RUN", help="run folder to write (required unless --resume)")
    p.add_argument("--resume", metavar="RUN", help="continue the interrupted fit in RUN from its "
                                                   "checkpoint, with its recorded inputs "
                                                   "(checked by SHA-256) and configuration")
    p.add_argument("--fixed-mask", help="mask on the fixed grid: training points are drawn "
                                        "inside it (default: the whole image)")
    p.add_argument("--moving-mask", help="mask on the moving grid (used by --init)")
    p.add_argument("--init", default="none", metavar="none|moments|rigid|affine|FILE",
                   help="initial alignment fixed → moving computed with SimpleITK, or an ITK "
                        "transform file (ANTs/elastix/Slicer); the deformation is learned on "
                        "top of it (default none)")
    p.add_argument("--iterations", type=int, help="alias of --training-iterations")
    p.add_argument("--seed", type=int, help="alias of --training-seed")
    p.add_argument("--overwrite", action="store_true", help="replace a model already in RUN")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _device(p)
    add_config_options(p, ("model", "objective", "training", "selection"))


def _add_select(sub: Subparsers) -> None:
    p = sub.add_parser("select", help="choose α by the Dice of warped labels",
                       description="Score a grid of α by Dice of warped moving labels against "
                                   "fixed labels (and TRE when points are given); choose the "
                                   "best. Writes RUN/alpha_table.csv and RUN/selection.json.",
                       epilog=EPILOG)
    p.add_argument("run", metavar="RUN")
    p.add_argument("--fixed-labels", required=True, help="label map on the fixed grid")
    p.add_argument("--moving-labels", required=True, help="label map on the moving grid")
    p.add_argument("--alphas", type=int, metavar="K", help="grid size (default from config)")
    p.add_argument("--labels", type=label_list, help="labels to use, e.g. 1,2 (default: common)")
    p.add_argument("--fixed-points", help="landmarks in the fixed image (any supported format)")
    p.add_argument("--moving-points", help="corresponding landmarks in the moving image")
    p.add_argument("--criterion", choices=CRITERIA, default="dice",
                   help="what chooses α (default dice)")
    p.add_argument("--seed", type=int, help="alias of --selection-seed")
    _device(p)
    add_config_options(p, ("selection",))


def _add_apply(sub: Subparsers) -> None:
    p = sub.add_parser("apply", help="warp an image / label map, or map points",
                       description="Warp a moving-space image (linear) or label map (nearest) "
                                   "onto the fixed grid, or map fixed-space points to moving "
                                   "space, at α.", epilog=EPILOG)
    p.add_argument("run", metavar="RUN")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--image", help="image in moving space")
    what.add_argument("--labels", help="label map in moving space")
    what.add_argument("--points", help="points in fixed space (csv, fcsv, mrk.json, elastix, "
                                       "DIR-LAB *_xyz.txt)")
    p.add_argument("--out", required=True, help="output file (format by extension)")
    _alpha(p, "default: the selected α")
    _device(p)


def _add_export(sub: Subparsers) -> None:
    from cidir.io.field_export import FORMATS

    p = sub.add_parser("export", help="write the displacement field / Jacobian map",
                       description="Write the dense displacement field at α on the fixed grid "
                                   "(mm, LPS, fixed → moving, initial affine included) for "
                                   "ITK/Slicer (itk), ANTs (ants) or elastix/transformix "
                                   "(elastix), and/or the Jacobian-determinant map. The elastix "
                                   "parameter file names its field by absolute path (elastix "
                                   "reads a relative one from its working directory): after "
                                   "moving the two files, export again or edit "
                                   "DeformationFieldFileName.",
                       epilog=EPILOG)
    p.add_argument("run", metavar="RUN")
    p.add_argument("--field", help="output field file (.nii.gz, .mha, ...; .txt for elastix)")
    p.add_argument("--format", default="itk", choices=FORMATS)
    p.add_argument("--jacobian", help="output Jacobian-determinant image")
    _alpha(p, "default: the selected α")
    _device(p)


def _add_evaluate(sub: Subparsers) -> None:
    p = sub.add_parser("evaluate", help="TRE / Dice / folding at α",
                       description="TRE (continuous and snapped, per axis), Dice per label, "
                                   "% det J ≤ 0 and std log det J (inside the fixed mask when "
                                   "there is one). Writes RUN/evaluation.json (or --out).",
                       epilog=EPILOG)
    p.add_argument("run", metavar="RUN")
    p.add_argument("--fixed-points")
    p.add_argument("--moving-points")
    p.add_argument("--fixed-labels")
    p.add_argument("--moving-labels")
    p.add_argument("--labels", type=label_list, help="labels to score, e.g. 1,2")
    p.add_argument("--mask", help="region for folding (default: the run's fixed mask)")
    p.add_argument("--out", help="output JSON (default RUN/evaluation.json)")
    _alpha(p, "default: the selected α")
    _device(p)


def _add_report(sub: Subparsers) -> None:
    p = sub.add_parser("report", help="write RUN/report.html",
                       description="α curves, slices, differences, checkerboard, Jacobian map, "
                                   "deformed grid and the run's numbers in one HTML page.",
                       epilog=EPILOG)
    p.add_argument("run", metavar="RUN")
    _alpha(p, "default: the selected α, else 0.5")
    _device(p)


VARIANT_HELP = ("smooth: the motion is continuous everywhere; sliding: the lungs slide "
                "along a nearly still chest wall (the true field steps at the lungs' outer "
                "boundary) and are denser at exhale (mass conserved)")


def _add_phantom(sub: Subparsers) -> None:
    from cidir.data.phantom import PHANTOM_SIZES, VARIANTS

    p = sub.add_parser("phantom", help="write the 4D-CT breathing phantom",
                       description="A CT-like thorax at inhale and exhale with ground-truth "
                                   "field, labels, lung masks and landmark pairs.")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", choices=tuple(PHANTOM_SIZES), default="small")
    p.add_argument("--variant", choices=tuple(VARIANTS), default="smooth", help=VARIANT_HELP)


def _add_demo(sub: Subparsers) -> None:
    from cidir.data.phantom import PHANTOM_SIZES, VARIANTS

    p = sub.add_parser("demo", help="phantom → fit → select → evaluate → report",
                       description="Generate the phantom, register exhale to inhale, choose α by "
                                   "Dice, report TRE before/after, folding, times.")
    p.add_argument("--out", default="demo_out", metavar="DIR")
    p.add_argument("--size", choices=tuple(PHANTOM_SIZES), default="small")
    p.add_argument("--phantom-seed", type=int, default=0)
    p.add_argument("--variant", choices=tuple(VARIANTS), default="smooth",
                   help="phantom variant; " + VARIANT_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _device(p)
    add_config_options(p, ("model", "objective", "training", "selection"))


def _add_dirlab(sub: Subparsers) -> None:
    p = sub.add_parser("dirlab", help="the DIR-LAB 4DCT protocol on one case",
                       description="Fixed T00, moving T50 from a DIR-LAB download; lung mask "
                                   "given or by threshold; TRE continuous and snapped, per axis.")
    p.add_argument("--root", required=True, help="folder of the DIR-LAB download")
    p.add_argument("--case", type=int, required=True, choices=range(1, 11), metavar="1-10")
    p.add_argument("--out", required=True, metavar="RUN")
    p.add_argument("--mask", help="fixed (T00) lung mask on the case grid (default: threshold)")
    p.add_argument("--landmarks", help="folder of the landmark files (default: search --root)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true")
    _device(p)
    add_config_options(p, ("model", "objective", "training", "selection"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cidir",
        description="Deformable registration with a hyperparameter-conditioned implicit neural "
                    "representation: train once over all regularization weights α, choose α "
                    "per patient at inference.",
        epilog=EPILOG)
    from cidir import __version__

    parser.add_argument("--version", action="version", version=f"cidir {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_fit, _add_select, _add_apply, _add_export, _add_evaluate, _add_report,
                _add_phantom, _add_demo, _add_dirlab):
        add(sub)
    return parser


def _fit_config(args: argparse.Namespace):
    config = config_from_args(args)
    extra = {}
    if getattr(args, "iterations", None) is not None:
        extra["training.iterations"] = args.iterations
    if getattr(args, "seed", None) is not None and args.command == "fit":
        extra["training.seed"] = args.seed
    return config.with_overrides(extra) if extra else config


def _check_resume_args(args: argparse.Namespace) -> None:
    """--resume continues the recorded fit: it takes no inputs or configuration."""
    given = [name.upper() if name in ("fixed", "moving") else f"--{name.replace('_', '-')}"
             for name in ("fixed", "moving", "out", "fixed_mask", "moving_mask", "config",
                          "iterations", "seed") if getattr(args, name, None) is not None]
    given += [f"--{k.split('__')[1]}-{k.split('__')[2].replace('_', '-')}"
              for k, v in vars(args).items() if k.startswith("cfg__") and v is not None]
    given += ["--set"] * bool(args.set) + ["--init"] * (args.init != "none") \
        + ["--overwrite"] * args.overwrite
    if given:
        raise InputError(f"--resume continues the recorded fit with its recorded inputs and "
                         f"configuration; it takes only --device and --quiet (found "
                         f"{', '.join(given)})")


def _run_fit(args: argparse.Namespace) -> dict | None:
    from cidir.runs import commands

    if args.resume:
        _check_resume_args(args)
        return commands.resume_run(args.resume, device=args.device, progress=not args.quiet)
    if not (args.fixed and args.moving and args.out):
        raise InputError("give FIXED MOVING --out RUN, or --resume RUN")
    return commands.fit_run(args.fixed, args.moving, args.out, _fit_config(args),
                            fixed_mask_path=args.fixed_mask,
                            moving_mask_path=args.moving_mask, init=args.init,
                            device=args.device, overwrite=args.overwrite,
                            progress=not args.quiet)


def _run_select(args: argparse.Namespace) -> dict | None:
    from cidir.runs import commands
    from cidir.runs.folder import RunFolder

    run = RunFolder(args.run)
    run.require_trained()
    base = run.load_config()
    if args.config:
        base = base.__class__.load(args.config)
    config = config_from_args(args, base)
    extra = {}
    if args.alphas is not None:
        extra["selection.num_alphas"] = args.alphas
    if args.seed is not None:
        extra["selection.seed"] = args.seed
    selection = config.with_overrides(extra).selection if extra else config.selection
    out = commands.select_run(args.run, args.fixed_labels, args.moving_labels,
                              selection=selection, labels=args.labels,
                              fixed_points_path=args.fixed_points,
                              moving_points_path=args.moving_points,
                              criterion=args.criterion, device=args.device)
    print(f"chosen α = {out['alpha']:.4g}: Dice {out['dice']:.4f} ± {out['dice_se']:.4f}, "
          f"folding {out['folding_percent']:.3f}%"
          + (f", TRE {out['tre_mm']:.3f} mm" if out.get("tre_mm") is not None else "")
          + f" ({len(out['rows'])} α in {out['seconds']:.2f} s)")
    if out.get("warning"):
        print(f"warning: {out['warning']}", file=sys.stderr)
    return None


def _run_apply(args: argparse.Namespace) -> dict | None:
    from cidir.runs import commands

    path = commands.apply_run(args.run, args.out, alpha=args.alpha, image=args.image,
                              labels=args.labels, points=args.points, device=args.device)
    print(f"wrote {path}")
    return None


def _run_export(args: argparse.Namespace) -> dict | None:
    from cidir.runs import commands

    for path in commands.export_run(args.run, field=args.field, fmt=args.format,
                                    jacobian=args.jacobian, alpha=args.alpha,
                                    device=args.device):
        print(f"wrote {path}")
    return None


def _run_evaluate(args: argparse.Namespace) -> dict | None:
    from cidir.runs import commands

    return commands.evaluate_run(args.run, alpha=args.alpha, fixed_points=args.fixed_points,
                                 moving_points=args.moving_points,
                                 fixed_labels=args.fixed_labels,
                                 moving_labels=args.moving_labels, labels=args.labels,
                                 mask=args.mask, out=args.out, device=args.device)


def _run_report(args: argparse.Namespace) -> dict | None:
    from cidir.runs import commands

    print(f"wrote {commands.report_run(args.run, alpha=args.alpha, device=args.device)}")
    return None


def _run_phantom(args: argparse.Namespace) -> dict | None:
    from cidir.data.phantom import make_phantom, write_phantom
    from cidir.io.outputs import check_output_folder

    check_output_folder(args.out, "--out")
    paths = write_phantom(make_phantom(args.size, args.seed, args.variant), args.out)
    for key, path in paths.items():
        print(f"{key}: {path}")
    return None


def _run_demo(args: argparse.Namespace) -> dict | None:
    from cidir.runs.demo import run_demo

    run_demo(args.out, config_from_args(args), size=args.size, seed=args.phantom_seed,
             variant=args.variant, device=args.device, progress=not args.quiet)
    return None


def _run_dirlab(args: argparse.Namespace) -> dict | None:
    from cidir.runs.dirlab import run_dirlab

    run_dirlab(args.root, args.case, args.out, config_from_args(args), mask=args.mask,
               landmarks=args.landmarks, device=args.device, progress=not args.quiet,
               overwrite=args.overwrite)
    return None


COMMANDS = {"fit": _run_fit, "select": _run_select, "apply": _run_apply,
            "export": _run_export, "evaluate": _run_evaluate, "report": _run_report,
            "phantom": _run_phantom, "demo": _run_demo, "dirlab": _run_dirlab}


def run_command(args: argparse.Namespace) -> dict | None:
    """Run the parsed command; returns what to print as JSON, or None."""
    if args.command not in COMMANDS:
        raise AssertionError(args.command)
    return COMMANDS[args.command](args)


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
        result = run_command(args)
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
    if result is not None:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
