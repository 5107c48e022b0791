"""Several hyperparameters at once (docs/beyond.md): per benchmark pair, the default fit
(one α: bending) and a fit conditioned on two (preset ``bending-jacobian``: α1 bending,
α2 the volume-change penalty), each choosing its α by the Dice of the pair's selection
labels and judged by what the selection never sees (benchmarks/selection_judge.py); the
2-D search against the full 21 × 21 product grid; and IDIR retrained at the chosen pair of
weights (the conditioning cost).

    python benchmarks/two_alpha.py [--tasks phantom phantom-sliding lung-mri brain2d]
        [--pairs 2] [--work benchmarks/work/selection] [--shared-data ../shared/data]

Writes benchmarks/results/two_alpha.json and the table between the ``two-alpha`` markers of
docs/beyond.md. The one-α fits are those of the selection study (``--work``); the 2-D and
IDIR fits are kept beside them (``WORK/../two_alpha``).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.selection_fits import (  # noqa: E402
    FittedPair,
    each_fitted,
    fitted,
    save_study,
    study_parser,
)
from benchmarks.selection_judge import Judge  # noqa: E402
from cidir.config import RunConfig  # noqa: E402
from cidir.losses.weights import regularizer_weight  # noqa: E402
from cidir.selection import SelectionResult, alpha_grid, search_alpha  # noqa: E402
from cidir.selection.alpha_space import Alpha, components, format_alpha, product_grid  # noqa: E402

PRESET = "bending-jacobian"
DENSE_PER_AXIS = 21  # the full product grid the refined search is checked against
HINDSIGHT_PER_AXIS = 11  # the grid the 2-D model is judged on in hindsight


def two_alpha_config() -> RunConfig:
    return RunConfig.from_preset(PRESET)


def idir_at(config: RunConfig, alpha: Alpha) -> RunConfig:
    """IDIR (one unconditioned SIREN) trained at the weights ``config`` gives at ``alpha``:
    each α-driven term's range collapsed to its value there (still in multiples of the
    pair's calibrated λ_b), everything else the same."""
    values = components(alpha)
    terms = []
    for term in config.objective.regularizers:
        if term.mapping == "log":
            a = torch.tensor([values[term.alpha_index]], dtype=torch.float64)
            weight = float(regularizer_weight(a, term.lambda_min, term.lambda_max, "log")[0])
            term = dataclasses.replace(term, lambda_min=weight, lambda_max=weight)
        elif term.mapping == "linear":
            raise ValueError("idir_at: linear mappings are not used by the study's presets")
        terms.append(term)
    return dataclasses.replace(
        config, model=dataclasses.replace(config.model, kind="siren"),
        objective=dataclasses.replace(config.objective, regularizers=tuple(terms)))


def _select(fp: FittedPair, alphas: list | None = None) -> SelectionResult:
    pair = fp.pair
    return search_alpha(fp.transform, pair.fixed_sel, pair.moving_sel, fp.config.selection,
                        labels=pair.sel_labels, alphas=alphas)


def _best_dice(result: SelectionResult) -> float:
    """The highest sampled Dice the search found (before ties are broken)."""
    return max(r.dice for r in result.rows if r.dice is not None)


def _yardstick(judge: Judge, alpha: Alpha) -> dict:
    return {"alpha": alpha, **judge.at(alpha)}


def study_pair(one: FittedPair, work: Path) -> dict:
    """Every measurement of one pair (module docstring)."""
    pair = one.pair
    two = fitted(pair, work / "cidir-2d", two_alpha_config())
    chosen_1d, chosen_2d = _select(one), _select(two)
    start = time.perf_counter()
    dense = _select(two, product_grid(DENSE_PER_AXIS, 2))
    dense_seconds = time.perf_counter() - start
    idir = fitted(pair, work / "idir-at-2d-choice", idir_at(two.config, chosen_2d.alpha))
    judge_1d, judge_2d = Judge(one), Judge(two)
    out = {
        "task": pair.task, "pair": pair.name,
        "fit_seconds": {"1d": one.fit_seconds, "2d": two.fit_seconds,
                        "idir": idir.fit_seconds},
        "1d": {**_yardstick(judge_1d, chosen_1d.alpha), "search_seconds": chosen_1d.seconds,
               "points": len(chosen_1d.rows), "dice_sel": chosen_1d.chosen.dice,
               "hindsight": judge_1d.oracle(alpha_grid(one.config.selection.num_alphas))},
        "2d": {**_yardstick(judge_2d, chosen_2d.alpha), "search_seconds": chosen_2d.seconds,
               "points": len(chosen_2d.rows), "dice_sel": chosen_2d.chosen.dice,
               "best_dice_sel": _best_dice(chosen_2d), "tied": len(chosen_2d.tied_alphas),
               "hindsight": judge_2d.oracle(product_grid(HINDSIGHT_PER_AXIS, 2))},
        "dense": {"alpha": dense.alpha, "dice_sel": dense.chosen.dice,
                  "best_dice_sel": _best_dice(dense),
                  "points": len(dense.rows), "seconds": dense_seconds},
        "idir": _yardstick(Judge(idir), chosen_2d.alpha),
    }
    print(f"[{pair.task} {pair.name}] 1-D α {format_alpha(chosen_1d.alpha)}, 2-D α "
          f"{format_alpha(chosen_2d.alpha)}: {out}", flush=True)
    return out


def _score(entry: dict) -> tuple[str, float]:
    """(yardstick name, value) of a judged entry: TRE (mm) with landmarks, else Dice."""
    key = "tre_mm" if entry.get("tre_mm") is not None else "dice_eval"
    return key, float(entry[key])


def table(results: list[dict]) -> str:
    """The markdown table of docs/beyond.md."""
    lines = ["| task | pair | 1-D: α → score (hindsight best of 21) | 2-D: α → score "
             "(hindsight best of 11×11) | IDIR retrained at the 2-D α: score (cost) | 2-D "
             "search: points, s (dense 21×21: s, best Dice gap) | fit s: 1-D / 2-D / IDIR |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        key, v1 = _score(r["1d"])
        _, v2 = _score(r["2d"])
        _, vi = _score(r["idir"])
        fmt = ".3f" if key == "tre_mm" else ".4f"
        cost = (v2 - vi) if key == "tre_mm" else (vi - v2)  # > 0: IDIR better
        h1, h2 = r["1d"]["hindsight"][key]["value"], r["2d"]["hindsight"][key]["value"]
        gap = r["dense"]["best_dice_sel"] - r["2d"]["best_dice_sel"]
        lines.append(
            f"| {r['task']} ({'TRE mm' if key == 'tre_mm' else 'Dice'}) | {r['pair']} | "
            f"{format_alpha(r['1d']['alpha'])} → {v1:{fmt}} ({h1:{fmt}}) | "
            f"{format_alpha(r['2d']['alpha'])} → {v2:{fmt}} ({h2:{fmt}}) | "
            f"{vi:{fmt}} ({cost:+{fmt}}) | {r['2d']['points']}, "
            f"{r['2d']['search_seconds']:.2f} ({r['dense']['seconds']:.1f}, {gap:.4f}) | "
            f"{r['fit_seconds']['1d']:.0f} / {r['fit_seconds']['2d']:.0f} / "
            f"{r['fit_seconds']['idir']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = study_parser(__doc__ or "", 2, ["phantom", "phantom-sliding", "lung-mri", "brain2d"],
                        "two_alpha.json").parse_args(argv)
    args.doc = args.doc.replace("selection.md", "beyond.md")
    work = Path(args.work).parent / "two_alpha"
    results = [study_pair(one, work) for one in each_fitted(args)]
    save_study(args, "benchmarks/two_alpha.py", sys.argv[1:], results,
               {"two-alpha": table(results)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
