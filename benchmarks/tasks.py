"""The benchmark tasks: each builds its registration pairs (:class:`PairData`) or says why
it is skipped.

- ``phantom``: cidir's 4D-CT breathing phantom, fixed = inhale, moving = exhale, fixed mask
  = inhale lung mask; TRE (continuous, snapped), field error vs ground truth in the lungs,
  folding in the lungs; α by the Dice of the phantom's labels 1-5.
- ``phantom-sliding``: the same protocol on the phantom's ``sliding`` variant (the lungs
  slide along a nearly still chest wall, the true field steps at the lungs' outer boundary;
  the exhale lungs are denser, mass conserved).
- ``lung-mri``: lung-mri-lobes, ordered pairs of 3 subjects, common initial affine
  (``cidir.alignment`` ``affine`` with both lung masks); α by lung-mask Dice (labels 1, 2),
  judged by lobe Dice (labels 1-5), folding in the fixed lungs.
- ``brain2d``: mindboggle-2d, a fixed random sample of the 66 unordered pairs (seed 0);
  α by the Dice of the even label ids, judged on the odd ones; folding in the brain.
- ``dirlab``: DIR-LAB 4DCT (only with ``--dirlab ROOT``), T00 → T50, threshold lung masks;
  α by lung Dice, judged by TRE on the 300 landmarks.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.pairs import PairData
from cidir.evaluation.metrics import foreground_labels
from cidir.geometry import Image

TASKS = ("phantom", "phantom-sliding", "lung-mri", "brain2d", "dirlab")
#: the phantom variant (``cidir.data.phantom.VARIANTS``) of each phantom task
PHANTOM_VARIANTS = {"phantom": "smooth", "phantom-sliding": "sliding"}


@dataclass
class TaskSpec:
    """How much of each task to run (set by the runner from --quick / --tiny)."""

    phantom_size: str = "dirlab"
    phantom_seeds: tuple[int, ...] = (0, 1, 2)
    lung_pairs: int = 6
    brain_pairs: int = 10
    dirlab_cases: tuple[int, ...] = tuple(range(1, 11))


def phantom_pairs(spec: TaskSpec, task: str = "phantom") -> list[PairData]:
    """The pairs of a phantom task (``phantom`` or ``phantom-sliding``): one per seed."""
    from cidir.data.phantom import make_phantom

    variant = PHANTOM_VARIANTS[task]
    pairs = []
    for seed in spec.phantom_seeds:
        p = make_phantom(spec.phantom_size, seed, variant)
        labels = foreground_labels(p.inhale_labels.array, p.exhale_labels.array)
        pairs.append(PairData(
            task=task, name=f"{spec.phantom_size}-seed{seed}", fixed=p.inhale,
            moving=p.exhale, fixed_sel=p.inhale_labels, moving_sel=p.exhale_labels,
            sel_labels=labels, fixed_eval=p.inhale_labels, moving_eval=p.exhale_labels,
            eval_labels=labels, fixed_mask=p.inhale_lung_mask, moving_mask=p.exhale_lung_mask,
            fold_mask=p.inhale_lung_mask, fixed_points=p.inhale_points,
            moving_points=p.exhale_points, gt_field=p.field,
            info={"size": spec.phantom_size, "seed": seed, "variant": variant,
                  "grid": p.grid.to_dict(),
                  "landmarks": len(p.inhale_points)}))
    return pairs


def lung_mri_pairs(spec: TaskSpec, root: Path) -> list[PairData]:
    from cidir.alignment import initial_alignment
    from cidir.io.images import read_image, read_label_map

    base = root / "lung-mri-lobes"
    subjects = ("0004", "0006", "0007")
    data = {s: (read_image(base / "images" / f"{s}H1.nii.gz"),
                read_label_map(base / "lungs" / f"{s}Mask.nii.gz"),
                read_label_map(base / "lobes" / f"{s}Lobes.nii.gz")) for s in subjects}
    pairs = []
    for f, m in list(itertools.permutations(subjects, 2))[: spec.lung_pairs]:
        (fi, fl, fo), (mi, ml, mo) = data[f], data[m]
        t0 = time.perf_counter()
        init = initial_alignment(fi, mi, "affine", fl, ml)
        seconds = time.perf_counter() - t0
        pairs.append(PairData(
            task="lung-mri", name=f"{f}<-{m}", fixed=fi, moving=mi, fixed_sel=fl, moving_sel=ml,
            sel_labels=[1, 2], fixed_eval=fo, moving_eval=mo, eval_labels=[1, 2, 3, 4, 5],
            fixed_mask=fl.with_array(fl.array > 0), moving_mask=ml.with_array(ml.array > 0),
            fold_mask=fl.with_array(fl.array > 0), init_matrix=init,
            info={"fixed": f, "moving": m, "affine_seconds": round(seconds, 2)}))
    return pairs


def brain_pairs(spec: TaskSpec, root: Path) -> list[PairData]:
    from cidir.io.images import read_image, read_label_map

    base = root / "mindboggle-2d"

    def load(i: int) -> tuple[Image, Image]:
        image = read_image(base / "images" / f"OASIS-TRT-20-{i}_slice118.nii.gz")
        labels = read_label_map(base / "labels" / f"OASIS-TRT-20-{i}_DKT31_CMA_labels_slice118"
                                ".nii.gz")  # float-stored labels are cast to int32
        return image, labels

    all_pairs = list(itertools.combinations(range(1, 13), 2))
    order = np.random.default_rng(0).permutation(len(all_pairs))[: spec.brain_pairs]
    pairs = []
    for k in order:
        f, m = all_pairs[int(k)]
        (fi, fl), (mi, ml) = load(f), load(m)
        common = foreground_labels(fl.array, ml.array)
        sel = [v for v in common if v % 2 == 0]
        ev = [v for v in common if v % 2 == 1]
        pairs.append(PairData(
            task="brain2d", name=f"{f}<-{m}", fixed=fi, moving=mi, fixed_sel=fl, moving_sel=ml,
            sel_labels=sel, fixed_eval=fl, moving_eval=ml, eval_labels=ev,
            fold_mask=fl.with_array(fl.array > 0),
            info={"fixed": f, "moving": m, "sel_labels": len(sel), "eval_labels": len(ev)}))
    return pairs


def dirlab_pairs(spec: TaskSpec, root: Path, landmarks: Path | None) -> list[PairData]:
    from cidir.data.dirlab import load_case
    from cidir.data.lung_mask import threshold_lung_mask

    pairs = []
    for case in spec.dirlab_cases:
        c = load_case(root, case, with_images=True, landmark_root=landmarks)
        fm, mm = threshold_lung_mask(c.fixed), threshold_lung_mask(c.moving)
        pairs.append(PairData(
            task="dirlab", name=f"case{case}", fixed=c.fixed, moving=c.moving, fixed_sel=fm,
            moving_sel=mm, sel_labels=[1, 2], fixed_eval=fm, moving_eval=mm, eval_labels=[1, 2],
            fixed_mask=fm.with_array(fm.array > 0), fold_mask=fm.with_array(fm.array > 0),
            fixed_points=c.fixed_points, moving_points=c.moving_points,
            info={"case": case, "mask": "threshold"}))
    return pairs


def build(task: str, spec: TaskSpec, shared: Path, dirlab: Path | None
          ) -> tuple[list[PairData], str | None]:
    """(pairs, None), or ([], reason) when the task is skipped."""
    if task in PHANTOM_VARIANTS:
        return phantom_pairs(spec, task), None
    if task == "dirlab":
        if dirlab is None:
            return [], "no --dirlab ROOT given (DIR-LAB images are not distributed)"
        lm = shared / "dirlab4dct-landmarks"
        return dirlab_pairs(spec, dirlab, lm if lm.is_dir() else None), None
    folder = {"lung-mri": "lung-mri-lobes", "brain2d": "mindboggle-2d"}[task]
    if not (shared / folder).is_dir():
        return [], f"shared data folder {shared / folder} is absent"
    if task == "lung-mri":
        return lung_mri_pairs(spec, shared), None
    return brain_pairs(spec, shared), None
