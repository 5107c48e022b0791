"""The ``cidir`` argument parser: one subparser per command, the configuration options
generated from the config dataclasses (:mod:`cidir.cli.config_options`), and the same
output (--json, --quiet) and device (--device, --threads) options on every command."""

from __future__ import annotations

import argparse

from cidir.cli.arg_types import alpha_value, label_list, positive_int
from cidir.cli.config_options import add_config_options
from cidir.config import RULES

Subparsers = argparse._SubParsersAction

EPILOG = "Frames: images and fields in world mm (LPS); fields map fixed → moving."
RUN_HELP = "run folder written by cidir fit (holds model.safetensors)"
SIZE_HELP = ("phantom grid: small 128×96×52 voxels of 2.6×2.6×5 mm, dirlab 256×256×100 of "
             "1.25×1.25×2.5 mm (a DIR-LAB case's size)")


def _device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="CPU threads for torch (default: the cores this process may use; "
                        "idle threads sleep, so two runs side by side share the cores "
                        "without spinning; with K runs on one machine, cores / K each is best)")


def _output(p: argparse.ArgumentParser, progress: bool = False) -> None:
    """--json, --quiet and -v: one output style for every command."""
    p.add_argument("--json", action="store_true",
                   help="print the result as JSON on stdout (the human summary goes to "
                        "stderr either way)")
    loud = p.add_mutually_exclusive_group()
    loud.add_argument("--quiet", action="store_true",
                      help="no summary" + (" and no progress" if progress else "")
                           + " (warnings and errors still go to stderr)")
    loud.add_argument("-v", "--verbose", action="count", default=0,
                      help="log what is done on stderr, with times (-v: steps, the fit's "
                           "loss every 1/20 of the iterations, as in RUN/fit.log; -vv: "
                           "also debugging detail)")


def _alpha(p: argparse.ArgumentParser, default_text: str) -> None:
    p.add_argument("--alpha", type=alpha_value,
                   help=f"α in [0, 1]; a model conditioned on several hyperparameters takes one "
                        f"value per hyperparameter, a1,a2 ({default_text})")


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
    p.add_argument("moving", nargs="?", help="moving image (any of the fixed image's formats)")
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
    p.add_argument("--init-model", metavar="OTHER_RUN",
                   help="warm start: the network starts from OTHER_RUN's trained network (same "
                        "model configuration and dimension; its field is read in this fixed "
                        "image's own network frame; the initial affine and λ calibration are "
                        "this pair's own); default: a fresh network")
    p.add_argument("--overwrite", action="store_true", help="replace a model already in RUN")
    _output(p, progress=True)
    _device(p)
    add_config_options(p, ("model", "objective", "training", "selection"))


def _add_select(sub: Subparsers) -> None:
    p = sub.add_parser("select", help="choose α by Dice of warped labels, boundary distance, "
                                      "TRE or the L-curve",
                       description="Score a grid of α and choose one by --rule: dice (Dice "
                                   "of warped moving labels against fixed labels; TRE too "
                                   "when points are given), surface (distance between the "
                                   "label boundaries, mm), tre (mean TRE of landmark "
                                   "pairs) or lcurve (no labels: the corner of the curve "
                                   "of image similarity against regularizer energy). Writes "
                                   "RUN/alpha_table.csv and RUN/selection.json.",
                       epilog=EPILOG)
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    p.add_argument("--rule", choices=RULES, default="dice",
                   help="what chooses α: dice, the best mean Dice of the warped labels (needs "
                        "--fixed-labels/--moving-labels; ties go to the larger α); surface, "
                        "the smallest mean error (mm) of the signed distance to each label's "
                        "boundary near it (same labels; less blind than Dice for large "
                        "organs); tre, the "
                        "lowest mean landmark TRE (needs --fixed-points/--moving-points); "
                        "lcurve, label-free: the corner of the L-curve of the run's "
                        "similarity against the log energy of its α-driven regularizer over α, "
                        "on points of the fit's mask (default dice)")
    p.add_argument("--fixed-labels", help="label map on the fixed grid (required by --rule "
                                          "dice and surface)")
    p.add_argument("--moving-labels", help="label map on the moving grid (required by --rule "
                                           "dice and surface)")
    p.add_argument("--labels", type=label_list, help="labels to use, e.g. 1,2 (default: common)")
    p.add_argument("--fixed-points", help="landmarks in the fixed image (any supported format; "
                                          "required by --rule tre, else TRE per α is added)")
    p.add_argument("--moving-points", help="corresponding landmarks in the moving image")
    _output(p)
    _device(p)
    add_config_options(p, ("selection",))


def _add_apply(sub: Subparsers) -> None:
    from cidir.fields import INTERPOLATIONS

    p = sub.add_parser("apply", help="warp an image / label map, or map points",
                       description="Warp a moving-space image (linear) or label map (nearest) "
                                   "onto the fixed grid or the grid of --reference, or map "
                                   "fixed-space points to moving space, at α (like "
                                   "antsApplyTransforms). φ is evaluated at the world "
                                   "positions of the output's voxels; outside the fixed "
                                   "image's domain, where the network was not trained, the "
                                   "deformation is taken as 0 (φ is the initial affine alone, "
                                   "the identity without --init), as antsApplyTransforms "
                                   "treats a displacement field outside its grid.",
                       epilog=EPILOG)
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--image", help="image in moving space")
    what.add_argument("--labels", help="label map in moving space")
    what.add_argument("--points", help="points in fixed space (csv, fcsv, mrk.json, elastix, "
                                       "DIR-LAB *_xyz.txt); moving space with --inverse")
    p.add_argument("--inverse", action="store_true",
                   help="with --points: map moving-space points to fixed space by φ⁻¹ "
                        "(fixed-point iteration on the trained network)")
    p.add_argument("--out", required=True, help="output file (format by extension)")
    p.add_argument("--reference", metavar="IMAGE",
                   help="with --image / --labels: write the output on this image's grid "
                        "(size, spacing in mm, origin in mm LPS, direction; its voxel values "
                        "are not used) instead of the fixed grid (default: the fixed grid)")
    p.add_argument("--interpolation", choices=INTERPOLATIONS,
                   help="with --image / --labels: how the moving image is read at φ(x): "
                        "linear, nearest (nearest neighbour) or bspline (cubic B-spline, "
                        "SimpleITK's sitkBSpline: sharper, may overshoot at edges) (default "
                        "linear for --image; --labels take nearest only)")
    p.add_argument("--default-value", type=float, metavar="V",
                   help="with --image / --labels: value of the output voxels whose φ(x) "
                        "falls outside the moving image, in the image's units (a label, an "
                        "integer >= 0, with --labels) (default 0)")
    _alpha(p, "default: the selected α")
    _output(p)
    _device(p)


def _add_export(sub: Subparsers) -> None:
    from cidir.io.field_export import FORMATS

    p = sub.add_parser("export", help="write the displacement field / Jacobian map / affine "
                                      "and warp apart",
                       description="Write the dense displacement field at α on the fixed grid "
                                   "(mm, LPS, fixed → moving, initial affine included) for "
                                   "ITK/Slicer (itk), ANTs (ants) or elastix/transformix "
                                   "(elastix), and/or the Jacobian-determinant map. The elastix "
                                   "parameter file names its field by absolute path (elastix "
                                   "reads a relative one from its working directory): after "
                                   "moving the two files, export again or edit "
                                   "DeformationFieldFileName.",
                       epilog=EPILOG)
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    p.add_argument("--field", help="output field file (.nii.gz, .mha, ...; .txt for elastix)")
    p.add_argument("--format", default="itk", choices=FORMATS,
                   help="field convention: itk (ITK/Slicer displacement field), ants (the same "
                        "field as ANTs reads it) or elastix (a field image plus a "
                        "transformix parameter file, --field NAME.txt) (default itk)")
    p.add_argument("--jacobian", help="output Jacobian-determinant image")
    p.add_argument("--warp-only", metavar="FIELD",
                   help="output: the deformable part alone, u(x) in mm on the fixed grid "
                        "(no initial affine), in --format itk or ants; with --affine, "
                        "φ = affine ∘ warp, i.e. antsApplyTransforms -t WARP -t AFFINE")
    p.add_argument("--affine", metavar="TRANSFORM",
                   help="output: the initial affine as an ITK transform file (.mat for ANTs, "
                        ".tfm / .txt, .h5); the identity when the fit had no --init")
    p.add_argument("--inverse-field", metavar="FIELD",
                   help="output: φ⁻¹(y) − y on the moving grid (mm, LPS, moving → fixed), in "
                        "--format itk or ants; writes RUN/inverse.json with the fixed-point "
                        "residual and the inverse-consistency error ‖φ⁻¹(φ(x)) − x‖ (mean, "
                        "95th percentile, max; inside the fixed mask)")
    p.add_argument("--uncertainty", metavar="IMAGE",
                   help="output: the α-uncertainty map on the fixed grid (float, mm): at each "
                        "voxel the largest distance between φ(x; α) over the α the selection "
                        "found tied with its choice (needs cidir select first; --alpha does "
                        "not change it); writes RUN/uncertainty.json (tied α; mean, 95th "
                        "percentile, max inside the fixed mask)")
    _alpha(p, "default: the selected α")
    _output(p)
    _device(p)


def _add_evaluate(sub: Subparsers) -> None:
    p = sub.add_parser("evaluate", help="TRE / Dice / folding at α",
                       description="TRE (continuous and snapped, per axis), Dice per label, "
                                   "% det J ≤ 0 and std log det J (inside the fixed mask when "
                                   "there is one). Writes RUN/evaluation.json (or --out).",
                       epilog=EPILOG)
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    p.add_argument("--fixed-points", help="landmarks in the fixed image (csv, fcsv, mrk.json, "
                                          "elastix, DIR-LAB *_xyz.txt): TRE in mm")
    p.add_argument("--moving-points", help="the corresponding landmarks in the moving image")
    p.add_argument("--fixed-labels", help="label map on the fixed grid: Dice per label")
    p.add_argument("--moving-labels", help="label map on the moving grid")
    p.add_argument("--labels", type=label_list,
                   help="labels to score, e.g. 1,2 (default: those in both label maps)")
    p.add_argument("--mask", help="region for folding (default: the run's fixed mask)")
    p.add_argument("--out", help="output JSON (default RUN/evaluation.json)")
    _alpha(p, "default: the selected α")
    _output(p)
    _device(p)


def _add_report(sub: Subparsers) -> None:
    p = sub.add_parser("report", help="write RUN/report.html",
                       description="α curves, slices, differences, checkerboard, Jacobian map, "
                                   "deformed grid and the run's numbers in one HTML page.",
                       epilog=EPILOG)
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    _alpha(p, "default: the selected α, else 0.5")
    _output(p)
    _device(p)


VARIANT_HELP = ("smooth: the motion is continuous everywhere; sliding: the lungs slide "
                "along a nearly still chest wall (the true field steps at the lungs' outer "
                "boundary) and are denser at exhale (mass conserved)")


def _add_phantom(sub: Subparsers) -> None:
    from cidir.data.phantom import PHANTOM_SIZES, VARIANTS

    p = sub.add_parser("phantom", help="write the 4D-CT breathing phantom",
                       description="A CT-like thorax at inhale and exhale with ground-truth "
                                   "field, labels, lung masks and landmark pairs.")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder to write the images, labels, masks, field and landmarks to")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed of the anatomy and the motion (default 0)")
    p.add_argument("--size", choices=tuple(PHANTOM_SIZES), default="small",
                   help=SIZE_HELP + " (default small)")
    p.add_argument("--variant", choices=tuple(VARIANTS), default="smooth",
                   help=VARIANT_HELP + " (default smooth)")
    _output(p)


def _add_demo(sub: Subparsers) -> None:
    from cidir.data.phantom import PHANTOM_SIZES, VARIANTS

    p = sub.add_parser("demo", help="phantom → fit → select → evaluate → report",
                       description="Generate the phantom, register exhale to inhale, choose α by "
                                   "Dice, report TRE before/after, folding, times.")
    p.add_argument("--out", default="demo_out", metavar="DIR",
                   help="folder for the phantom, the run and the report (default demo_out)")
    p.add_argument("--size", choices=tuple(PHANTOM_SIZES), default="small",
                   help=SIZE_HELP + " (default small)")
    p.add_argument("--phantom-seed", type=int, default=0,
                   help="random seed of the phantom's anatomy and motion (default 0)")
    p.add_argument("--variant", choices=tuple(VARIANTS), default="smooth",
                   help="phantom variant; " + VARIANT_HELP + " (default smooth)")
    _output(p, progress=True)
    _device(p)
    add_config_options(p, ("model", "objective", "training", "selection"))


def _add_dirlab(sub: Subparsers) -> None:
    p = sub.add_parser("dirlab", help="the DIR-LAB 4DCT protocol on one case",
                       description="Fixed T00, moving T50 from a DIR-LAB download; lung mask "
                                   "given or by threshold; TRE continuous and snapped, per axis.")
    p.add_argument("--root", required=True, help="folder of the DIR-LAB download")
    p.add_argument("--case", type=int, required=True, choices=range(1, 11), metavar="N",
                   help="DIR-LAB 4DCT case, one of 1, 2, 3, 4, 5, 6, 7, 8, 9, 10")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder to write")
    p.add_argument("--mask", help="fixed (T00) lung mask on the case grid (default: threshold)")
    p.add_argument("--landmarks", help="folder of the landmark files (default: search --root)")
    p.add_argument("--init-model", metavar="OTHER_RUN",
                   help="warm start: the network starts from OTHER_RUN's trained network (same "
                        "model configuration and dimension; its field is read in this fixed "
                        "image's own network frame; the initial affine and λ calibration are "
                        "this pair's own); default: a fresh network")
    p.add_argument("--overwrite", action="store_true", help="replace a model already in RUN")
    _output(p, progress=True)
    _device(p)
    add_config_options(p, ("model", "objective", "training", "selection"))


def _add_cohort(sub: Subparsers) -> None:
    p = sub.add_parser("cohort", help="register every pair of a manifest (resumable)",
                       description="Run fit, select (when labels are given), export, evaluate "
                                   "and report for every row of MANIFEST.csv into DIR/<id>/, "
                                   "and write DIR/cohort.csv, cohort.json and cohort.html. "
                                   "Columns: id, fixed, moving and optionally fixed_mask, "
                                   "moving_mask, fixed_labels, moving_labels, fixed_points, "
                                   "moving_points, init, set (key=value;...); paths relative "
                                   "to the manifest. The manifest is checked whole before "
                                   "anything runs. Rerunning reuses complete pairs with "
                                   "unchanged inputs and configuration and resumes "
                                   "interrupted fits; a failing pair is recorded and the "
                                   "others go on (exit status 1 lists the failed pairs).",
                       epilog=EPILOG)
    p.add_argument("manifest", metavar="MANIFEST.csv",
                   help="one row per pair (columns above; paths relative to the manifest)")
    p.add_argument("--out", required=True, metavar="DIR", help="cohort folder to write")
    p.add_argument("--workers", type=positive_int, default=1, metavar="N",
                   help="pairs run at a time, each in its own process with cores / N torch "
                        "threads (default 1: in this process); with --backend ray, the "
                        "default CPU share per pair is cores / N and, on CUDA, 1/N GPU")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local: a process pool on this machine (default); ray: each pair a "
                        "Ray task (pip install 'cidir[ray]')")
    p.add_argument("--ray-address", metavar="ADDRESS",
                   help="Ray cluster to join: auto (the cluster this machine belongs to) or "
                        "ray://host:10001 (default: start a local Ray instance)")
    _output(p)
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
                _add_phantom, _add_demo, _add_dirlab, _add_cohort):
        add(sub)
    return parser
