"""Which α each selection rule reaches, and how the choice holds up when the segmentations
are poor: the "Rules" and "Robustness" tables of docs/selection.md (issue 11 items 2 and 4).

    python benchmarks/selection_rules.py [--tasks phantom phantom-sliding lung-mri brain2d]
        [--pairs 2] [--work benchmarks/work/selection] [--shared-data ../shared/data]

Each pair is trained once (:mod:`benchmarks.selection_fits`, the default configuration);
then every rule chooses α on the 21-value grid from the same network:

- ``dice`` / ``surface``: the task's selection labels (phantom: labels 1-5; lung MRI: the two
  lungs; brain: the even label ids), by Dice / by boundary distance (cidir's rules);
- ``… one mask``: the same rules on the union of the selection labels as a single organ mask;
- ``lcurve``: no labels (the L-curve corner); ``tre`` / ``tre, 5 landmarks``: all / five
  seeded landmark pairs (phantom only).

Each choice is judged by :mod:`benchmarks.selection_judge` (evaluation-label Dice over every
voxel, TRE, error against the true field); "hindsight" is the grid's best α by each
yardstick. The robustness part repeats ``dice`` and ``surface`` with the selection labels
degraded (:mod:`benchmarks.selection_degrade`). Results: benchmarks/results/selection_rules.json
and the blocks between the ``selection-rules`` and ``selection-robustness`` markers.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.selection_degrade import degradations  # noqa: E402
from benchmarks.selection_fits import (  # noqa: E402
    FittedPair,
    each_fitted,
    save_study,
    study_parser,
)
from benchmarks.selection_judge import Judge  # noqa: E402
from benchmarks.selection_tables import robustness_table, rules_table  # noqa: E402
from cidir.geometry import Image  # noqa: E402
from cidir.selection import SelectionResult, alpha_grid, search_alpha, search_lcurve  # noqa: E402
from cidir.selection.surface import search_surface  # noqa: E402

Rule = Callable[[FittedPair, Image, Image, list[int]], SelectionResult]


def _labels_rule(kind: str) -> Rule:
    def rule(fp: FittedPair, fixed: Image, moving: Image, labels: list[int]) -> SelectionResult:
        search = search_surface if kind == "surface" else search_alpha
        return search(fp.transform, fixed, moving, fp.config.selection, labels=labels)
    return rule


def _one_mask(kind: str) -> Rule:
    def rule(fp: FittedPair, fixed: Image, moving: Image, labels: list[int]) -> SelectionResult:
        union = [fixed.with_array(np.isin(fixed.array, labels).astype(np.int16)),
                 moving.with_array(np.isin(moving.array, labels).astype(np.int16))]
        return _labels_rule(kind)(fp, union[0], union[1], [1])
    return rule


def _lcurve(fp: FittedPair, fixed: Image, moving: Image, labels: list[int]) -> SelectionResult:
    pair, config = fp.pair, fp.config
    return search_lcurve(fp.transform, pair.fixed, pair.moving, config.objective,
                         config.selection, mask=pair.fixed_mask,
                         margin_mm=config.training.mask_margin_mm)


def _tre(count: int | None) -> Rule:
    def rule(fp: FittedPair, fixed: Image, moving: Image, labels: list[int]) -> SelectionResult:
        pair = fp.pair
        assert pair.fixed_points is not None and pair.moving_points is not None
        pick = np.arange(len(pair.fixed_points))
        if count is not None:
            pick = np.sort(np.random.default_rng(0).choice(pick, count, replace=False))
        return search_alpha(fp.transform, fixed, moving, fp.config.selection, labels=labels,
                            fixed_points=pair.fixed_points[pick],
                            moving_points=pair.moving_points[pick], rule="tre")
    return rule


def rules_for(fp: FittedPair) -> dict[str, Rule]:
    rules = {"dice": _labels_rule("dice"), "surface": _labels_rule("surface"),
             "dice, one mask": _one_mask("dice"), "surface, one mask": _one_mask("surface"),
             "lcurve": _lcurve}
    if fp.pair.fixed_points is not None:
        rules |= {"tre": _tre(None), "tre, 5 landmarks": _tre(5)}
    return rules


def _entry(result: SelectionResult, judge: Judge) -> dict:
    return {"alpha": result.alpha, "seconds": result.seconds, "tied_alphas": result.tied_alphas,
            "note": result.note, **judge.at(result.alpha)}


def study_pair(fp: FittedPair) -> dict:
    pair, judge = fp.pair, Judge(fp)
    out: dict = {"task": pair.task, "pair": pair.name, "rules": {}, "robustness": {}}
    for name, rule in rules_for(fp).items():
        out["rules"][name] = _entry(rule(fp, pair.fixed_sel, pair.moving_sel, pair.sel_labels),
                                    judge)
        print(f"[{pair.task} {pair.name}] {name}: {out['rules'][name]}", flush=True)
    for name, degrade in degradations().items():
        fixed, moving = degrade(pair.fixed_sel, pair.moving_sel, pair.sel_labels)
        labels = [v for v in pair.sel_labels if (fixed.array == v).any()
                  and (moving.array == v).any()]
        out["robustness"][name] = {kind: _entry(_labels_rule(kind)(fp, fixed, moving, labels),
                                                judge) for kind in ("dice", "surface")}
        print(f"[{pair.task} {pair.name}] degraded {name}: "
              f"{ {k: v['alpha'] for k, v in out['robustness'][name].items()} }", flush=True)
    out["hindsight"] = judge.oracle(alpha_grid(fp.config.selection.num_alphas))
    return out


def main(argv: list[str] | None = None) -> int:
    args = study_parser(__doc__ or "", 2, ["phantom", "phantom-sliding", "lung-mri", "brain2d"],
                        "selection_rules.json").parse_args(argv)
    results = [study_pair(fp) for fp in each_fitted(args)]
    save_study(args, "benchmarks/selection_rules.py", sys.argv[1:], results,
               {"selection-rules": rules_table(results),
                "selection-robustness": robustness_table(results)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
