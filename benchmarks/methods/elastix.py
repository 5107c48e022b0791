"""elastix B-spline (itk-elastix): the standard ``bspline`` parameter map, whose second
metric is the bending-energy penalty ``TransformBendingEnergyPenalty``, run once per
penalty weight of a grid w(α) = w_min·(w_max/w_min)^α; the weight with the best selection
Dice wins (same rule as cidir). Field: ``itk.transformix_deformation_field`` (fixed grid,
mm, fixed → moving), then composed with the common affine.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchmarks.evaluate import dice_of_field
from benchmarks.methods import MethodResult, weight_choice
from benchmarks.methods._peer_io import temp_folder, total_field, write_inputs
from benchmarks.pairs import PairData

W_MIN, W_MAX = 0.01, 100.0


def penalty_weight(alpha: float) -> float:
    """Bending-energy weight of the elastix grid for α ∈ [0, 1] (log mapping, 0.01 … 100)."""
    return W_MIN * (W_MAX / W_MIN) ** alpha


def register(fixed_path, moving_path, mask_path, weight: float, iterations: int,
             resolutions: int, threads: int = 2):
    """One elastix run; returns the deformation field array (grid.shape + (D,), mm)."""
    import itk

    fixed = itk.imread(str(fixed_path), itk.F)
    moving = itk.imread(str(moving_path), itk.F)
    params = itk.ParameterObject.New()
    pm = params.GetDefaultParameterMap("bspline", resolutions)
    pm["Metric1Weight"] = [f"{weight:g}"]
    pm["MaximumNumberOfIterations"] = [str(iterations)]
    pm["WriteResultImage"] = ["false"]
    # lung masks are small at coarse levels: without these the random coordinate sampler
    # fails ("could not find enough image samples") on the lung MRI pairs
    pm["ErodeMask"] = ["false"]
    pm["MaximumNumberOfSamplingAttempts"] = ["50"]
    params.AddParameterMap(pm)
    reg = itk.ElastixRegistrationMethod.New(fixed, moving)
    reg.SetParameterObject(params)
    if mask_path is not None:
        reg.SetFixedMask(itk.imread(str(mask_path), itk.UC))
    itk.MultiThreaderBase.SetGlobalDefaultNumberOfThreads(threads)  # reg.SetNumberOfThreads
    # segfaults with itk-elastix 0.25.4
    reg.SetLogToConsole(False)
    reg.UpdateLargestPossibleRegion()
    # transformix writes deformationField.nii into the working directory: use a temporary one
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="cidir-bench-transformix-") as tmp:
        os.chdir(tmp)
        try:
            field = itk.transformix_deformation_field(moving, reg.GetTransformParameterObject())
            return itk.array_from_image(field).astype(float)
        finally:
            os.chdir(cwd)


def run_elastix(pair: PairData, settings: dict) -> MethodResult:
    alphas = [float(a) for a in settings["grid_alphas"]]
    opts = settings.get("elastix", {})
    reg_s = sel_s = 0.0
    fields, scores, table = [], [], []
    with temp_folder() as tmp:
        paths = write_inputs(pair, Path(tmp))
        for a in alphas:
            w = penalty_weight(a)
            t0 = time.perf_counter()
            field = total_field(pair, register(paths["fixed"], paths["moving"], paths["mask"], w,
                                               opts.get("iterations", 256),
                                               opts.get("resolutions", 4)))
            t1 = time.perf_counter()
            score = dice_of_field(pair, field, "sel")
            sel_s += time.perf_counter() - t1
            reg_s += t1 - t0
            table.append({"alpha": a, "weight": w, "dice_sel": score,
                          "seconds": round(t1 - t0, 2)})
            fields.append(field.astype("float32"))  # all kept: the rule needs every score
            scores.append(score)
    best = weight_choice(alphas, scores)
    return MethodResult(fields[best].astype(float), reg_s, sel_s,
                        {"alpha": alphas[best], "weight": penalty_weight(alphas[best]),
                         "table": table, "runs": len(alphas), **opts})
