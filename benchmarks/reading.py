"""What the benchmark's numbers say, in words: where cidir is behind on a task (accuracy,
time, memory) and the cost of conditioning (IDIR retrained at cidir's α against cidir)."""

from __future__ import annotations

import numpy as np

PEERS = ("elastix", "ants", "sitk")
# per task: (metric key, column title, higher is better)
PHANTOM_COLUMNS = [("tre_mm", "TRE cont. (mm)", False),
                   ("tre_snapped_mm", "TRE snapped (mm)", False),
                   ("field_error_mm", "field err. lungs (mm)", False),
                   ("dice_eval", "Dice labels 1-5", True)]
COLUMNS = {
    "phantom": PHANTOM_COLUMNS,
    "phantom-sliding": PHANTOM_COLUMNS,
    "lung-mri": [("dice_eval", "lobe Dice 1-5 (judged)", True),
                 ("dice_sel", "lung Dice 1-2 (selection)", True)],
    "brain2d": [("dice_eval", "Dice odd labels (judged)", True),
                ("dice_sel", "Dice even labels (selection)", True)],
    "dirlab": [("tre_mm", "TRE cont. (mm)", False), ("tre_snapped_mm", "TRE snapped (mm)",
                                                     False)],
}
PRIMARY = {"phantom": "tre_mm", "phantom-sliding": "tre_mm", "lung-mri": "dice_eval",
           "brain2d": "dice_eval", "dirlab": "tre_mm"}


def _mean(summary: dict, method: str, key: str) -> float | None:
    s = summary.get(method, {}).get(key)
    return None if not s else s.get("mean")


def honest_paragraph(task: str, summary: dict) -> str:
    """Where cidir is behind on this task (accuracy, time, memory), from the numbers."""
    if "cidir" not in summary:
        return "cidir was not run on this task."
    key = PRIMARY[task]
    higher = dict((c[0], c[2]) for c in COLUMNS[task])[key]
    name = dict((c[0], c[1]) for c in COLUMNS[task])[key]
    mine = _mean(summary, "cidir", key)
    others = {m: _mean(summary, m, key) for m in summary
              if not m.startswith("_") and m not in ("cidir", "identity", "affine")}
    others = {m: v for m, v in others.items() if v is not None}
    parts = []
    if mine is not None and others:
        better = {m: v for m, v in others.items() if (v > mine if higher else v < mine)}
        if better:
            listing = ", ".join(f"`{m}` {v:.3f}" for m, v in
                                sorted(better.items(), key=lambda kv: kv[1], reverse=higher))
            parts.append(f"**Accuracy**: on {name} cidir ({mine:.3f}) is behind {listing}.")
        else:
            parts.append(f"**Accuracy**: on {name} cidir ({mine:.3f}) is ahead of every other "
                         "method run here.")
    t_mine = _mean(summary, "cidir", "method_wall_seconds")
    times = {m: _mean(summary, m, "method_wall_seconds") for m in summary
             if not m.startswith("_") and m not in ("cidir", "identity", "affine")}
    faster = {m: t for m, t in times.items() if t is not None and t_mine and t < t_mine}
    if faster:
        parts.append("**Time**: cidir takes {:.0f} s per pair; faster: {}.".format(
            t_mine, ", ".join(f"`{m}` {t:.0f} s" for m, t in sorted(faster.items(),
                                                                  key=lambda kv: kv[1]))))
    grid = times.get("idir-grid")
    if grid and t_mine:
        parts.append(f"One cidir training covers all α for {t_mine:.0f} s against "
                     f"{grid:.0f} s for the `idir-grid` trainings ({grid / t_mine:.1f}×).")
    m_mine = _mean(summary, "cidir", "delta_rss_mb")
    mems = {m: _mean(summary, m, "delta_rss_mb") for m in PEERS if m in summary}
    lighter = {m: v for m, v in mems.items() if v is not None and m_mine and v < m_mine}
    if lighter:
        parts.append("**Memory** (ΔRSS): cidir {:.0f} MB; lighter: {}.".format(
            m_mine, ", ".join(f"`{m}` {v:.0f} MB" for m, v in lighter.items())))
    alphas = [a for a in summary["cidir"].get("alpha", []) if a is not None]
    at_edge = sum(1 for a in alphas if a == 0.0)
    if at_edge:
        parts.append(f"cidir chose α = 0, the least-regularized end of its prior, on "
                     f"{at_edge} of {len(alphas)} pairs, where its search warns that the prior "
                     "may be too stiff (a smaller `lambda_min` and a refit would be a "
                     "user's next step; the benchmark keeps the library's default prior).")
    fold = _mean(summary, "cidir", "folding_percent")
    if fold:
        parts.append(f"cidir folds {fold:.3f}% of the evaluated voxels at the chosen α.")
    return " ".join(parts)


def conditioning_cost(task: str, entry: dict) -> str | None:
    """The per-pair gap on the primary metric between IDIR retrained at cidir's α
    (``idir-at-cidir``) and ``cidir``, over the pairs where both finished; None without."""
    key = PRIMARY[task]
    gaps = []
    for name, pair in entry["pairs"].items():
        runs = pair["runs"]
        a, b = runs.get("cidir"), runs.get("idir-at-cidir")
        if a and b and a.get("ok") and b.get("ok"):
            va, vb = a["metrics"].get(key), b["metrics"].get(key)
            if va is not None and vb is not None:
                gaps.append((name, vb - va if key.startswith("dice") else va - vb))
    if not gaps:
        return None
    unit = "Dice" if key.startswith("dice") else "mm TRE"
    listing = ", ".join(f"`{n}` {g:+.4f}" for n, g in gaps)
    mean = float(np.mean([g for _, g in gaps]))
    return (f"**Conditioning cost** (IDIR retrained at cidir's α, better by; positive = "
            f"IDIR better): mean {mean:+.4f} {unit} over {len(gaps)} pairs ({listing}).")
