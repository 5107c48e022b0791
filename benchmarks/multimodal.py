"""Mutual information on multi-modal pairs built from the shared data: the table of
docs/method-choices.md "Multi-modal similarity".

    python benchmarks/multimodal.py [--tasks brain2d lung-mri] [--pairs 3]
        [--variants "NCC, same contrast" ...] [--shared-data ../shared/data]

A multi-modal pair is a shared pair whose moving image has a second contrast: inside the
body its intensities t (scaled to [0, 1] by the 1st and 99th percentiles) become 1 − √t —
inverted and non-linear, so that bright and dark tissue swap, as between T1- and T2-weighted
MR — while the background stays 0. Labels, masks and the initial affine are the original
pair's. Each (variant, pair) runs cidir in a worker subprocess (fit, α search, dense field;
the code and metrics of ``make benchmarks``) and is judged on the task's evaluation labels.
Results: benchmarks/results/multimodal.json (reused while a variant's resolved config is
unchanged), then the table between the ``multimodal`` markers of docs/method-choices.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.ablation import open_report, run_variant  # noqa: E402
from benchmarks.ablation_report import write_block  # noqa: E402
from benchmarks.pairs import PairData  # noqa: E402
from benchmarks.tasks import TaskSpec, build  # noqa: E402

START, END = "<!-- multimodal:start -->", "<!-- multimodal:end -->"
#: name -> (moving contrast, overrides of the default RunConfig; MI's default: 32 bins)
VARIANTS: dict[str, tuple[str, dict]] = {
    "NCC, same contrast": ("same", {"objective.similarity": "ncc"}),
    "MI, same contrast": ("same", {"objective.similarity": "mi"}),
    "NCC, second contrast": ("second", {"objective.similarity": "ncc"}),
    "MI, second contrast": ("second", {"objective.similarity": "mi"}),
    "MI 16 bins, second contrast": ("second", {"objective.similarity": "mi",
                                               "objective.mi_bins": 16}),
    "MI 64 bins, second contrast": ("second", {"objective.similarity": "mi",
                                               "objective.mi_bins": 64}),
    "MI 128 bins, second contrast": ("second", {"objective.similarity": "mi",
                                                "objective.mi_bins": 128}),
}
TITLES = {"brain2d": "brain 2D odd-label Dice", "lung-mri": "lung MRI lobe Dice"}


def second_contrast(array: np.ndarray) -> np.ndarray:
    """1 − √t inside the body, 0 outside. t: intensities scaled to [0, 1] by the 1st and 99th
    percentiles of the voxels above the 1st percentile; the body: where t smoothed over 2
    voxels exceeds 0.05, holes (the dark lungs) filled."""
    from scipy import ndimage

    values = array[array > np.percentile(array, 1)]
    lo, hi = np.percentile(values, [1, 99])
    t = np.clip((array - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    body = ndimage.binary_fill_holes(ndimage.gaussian_filter(t, 2.0) > 0.05)
    return np.where(body, 1.0 - np.sqrt(t), 0.0).astype(np.float32)


def with_second_contrast(pair: PairData) -> PairData:
    return replace(pair, moving=pair.moving.with_array(second_contrast(pair.moving.array)),
                   info={**pair.info, "moving_contrast": "1 - sqrt(t) in the body"})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="+", default=["brain2d", "lung-mri"], choices=list(TITLES))
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--pairs", type=int, default=3, help="pairs per task")
    p.add_argument("--shared-data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "multimodal.json"))
    p.add_argument("--doc", default=str(ROOT / "docs" / "method-choices.md"))
    return p.parse_args(argv)


def _run_pair(report: dict, out: Path, work: Path, task: str, pair: PairData,
              variants: list[str]) -> None:
    """Every variant on one pair (both contrasts saved once), skipping reusable runs."""
    folders = {"same": pair.save(work / task / f"{pair.name.replace('<-', '_from_')}-same"),
               "second": with_second_contrast(pair).save(
                   work / task / f"{pair.name.replace('<-', '_from_')}-second")}
    for variant in variants:
        contrast, overrides = VARIANTS[variant]
        run_variant(report, out, work, folders[contrast], task=task, pair=pair.name,
                    variant=variant, overrides=overrides, contrast=contrast)


def table(report: dict) -> str:
    """One row per variant: mean evaluation Dice, folding and seconds per task."""
    runs = list(report["runs"].values())
    tasks = [t for t in TITLES if any(r["task"] == t for r in runs)]
    count = {t: len({r["pair"] for r in runs if r["task"] == t}) for t in tasks}
    lines = ["| variant | " + " | ".join(f"{TITLES[t]} ({count[t]})" for t in tasks) + " |",
             "|---|" + "---|" * len(tasks)]
    for name in VARIANTS:
        cells = []
        for t in tasks:
            ok = [r for r in runs if r["task"] == t and r["variant"] == name and r.get("ok")]
            cells.append("—" if not ok else
                         f"{np.mean([r['metrics']['dice_eval'] for r in ok]):.3f} · "
                         f"{np.mean([r['metrics']['folding_percent'] for r in ok]):.2f}% · "
                         f"{np.mean([r['register_seconds'] for r in ok]):.0f} s")
        if any(c != "—" for c in cells):
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    machine = report.get("machine", {})
    lines += ["", "Each cell: mean over the pairs of the evaluation Dice at the α chosen by "
              "the selection labels, folding (% det J ≤ 0) and fit seconds; "
              f"{machine.get('cpu_cores')} CPU cores, torch {machine.get('torch')}. Calls: "
              + "; ".join(f"`{c}`" for c in report.get("commands", [])) + "."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    report = open_report(out, "benchmarks/multimodal.py", argv)
    spec = TaskSpec(lung_pairs=args.pairs, brain_pairs=args.pairs)
    with tempfile.TemporaryDirectory(prefix="cidir-multimodal-") as tmp:
        for task in args.tasks:
            pairs, reason = build(task, spec, Path(args.shared_data), None)
            if reason:
                print(f"[skip] {task}: {reason}", flush=True)
                continue
            for pair in pairs:
                _run_pair(report, out, Path(tmp), task, pair, args.variants)
    if report["runs"]:
        write_block(Path(args.doc), START, END, table(report))
    print(f"wrote {out} and {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
