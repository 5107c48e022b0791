"""Aggregation over pairs and the Markdown tables of ``docs/benchmarks.md``.

Figures per task and method: mean ± sd over pairs (sd over pairs, not over landmarks).
Time: ``method_wall_seconds`` per pair = registration (every training / weight-grid run)
+ choice of α / weight + the dense field, in the worker process; evaluation excluded.
Memory: peak RSS of the worker process through the method (MB) and its increase over the
process after imports and data loading (ΔRSS, MB).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from benchmarks.reading import COLUMNS, conditioning_cost, honest_paragraph

METRICS = ("tre_mm", "tre_snapped_mm", "field_error_mm", "dice_sel", "dice_eval",
           "folding_percent", "std_log_jacobian")
RUN_FIGURES = ("method_wall_seconds", "register_seconds", "select_seconds", "peak_rss_mb",
               "delta_rss_mb")
#: the compared methods of the protocol (baselines aside), in table order
PROTOCOL_METHODS = ("cidir", "idir", "idir-grid", "idir-at-cidir", "elastix", "ants", "sitk")

def _stats(values: list[float]) -> dict:
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return {"mean": None, "sd": None, "n": 0}
    return {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
            "n": len(v)}


def aggregate(entry: dict) -> dict:
    """Mean ± sd over the pairs of a task, per method."""
    by_method: dict[str, list[dict]] = {}
    for pair in entry["pairs"].values():
        for method, run in pair["runs"].items():
            by_method.setdefault(method, []).append(run)
    out = {}
    for method, runs in by_method.items():
        ok = [r for r in runs if r.get("ok")]
        s = {"pairs_ok": len(ok), "pairs_failed": len(runs) - len(ok),
             "errors": sorted({r.get("error", "")[:300] for r in runs if not r.get("ok")})}
        for key in METRICS:
            s[key] = _stats([r["metrics"].get(key) for r in ok])
        for key in RUN_FIGURES:
            s[key] = _stats([r.get(key) for r in ok])
        s["alpha"] = [r.get("choice", {}).get("alpha") for r in ok]
        out[method] = s
    before = [p["before"] for p in entry["pairs"].values()]
    out["_before"] = {k: _stats([b.get(k) for b in before])
                      for k in ("tre_mm", "tre_snapped_mm", "field_error_mm")}
    return out


def _fmt(s: dict | None, digits: int = 2) -> str:
    if not s or s.get("mean") is None:
        return "–"
    if s["n"] > 1:
        return f"{s['mean']:.{digits}f} ± {s['sd']:.{digits}f}"
    return f"{s['mean']:.{digits}f}"


def _alpha_text(method: str, alphas: list, settings: dict) -> str:
    if method in ("identity", "affine", "ants", "sitk") or not alphas:
        return "–"
    text = ", ".join(f"{a:g}" for a in alphas if a is not None)
    return text if method != "elastix" else f"{text} (w = 0.01·10⁴ᵅ)"


def _table(task: str, summary: dict, settings: dict) -> list[str]:
    cols = COLUMNS[task]
    head = (["method"] + [c[1] for c in cols]
            + ["fold % (det J ≤ 0)", "α chosen", "time / pair (s)", "peak RSS (MB)",
               "ΔRSS (MB)", "pairs"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, s in summary.items():
        if method.startswith("_"):
            continue
        digits = 3 if task in ("lung-mri", "brain2d") else 2
        row = [f"`{method}`"] + [_fmt(s[c[0]], 3 if c[0].startswith("dice") else digits)
                                 for c in cols]
        row += [_fmt(s["folding_percent"], 3), _alpha_text(method, s["alpha"], settings),
                _fmt(s["method_wall_seconds"], 1), _fmt(s["peak_rss_mb"], 0),
                _fmt(s["delta_rss_mb"], 0),
                f"{s['pairs_ok']}" + (f" ({s['pairs_failed']} failed)" if s["pairs_failed"]
                                      else "")]
        lines.append("| " + " | ".join(row) + " |")
    return lines


TITLES = {"phantom": "Phantom 4D-CT (inhale ← exhale, inside the lung mask)",
          "phantom-sliding": "Phantom 4D-CT with sliding and exhale density (inhale ← exhale, "
                             "inside the lung mask)",
          "lung-mri": "Lung MRI inter-subject (lung-mri-lobes)",
          "brain2d": "Brain MRI 2D (mindboggle-2d)", "dirlab": "DIR-LAB 4DCT"}
NOTES = {
    "phantom": "α (and the `idir-grid` / `elastix` weight) chosen by the Dice of the phantom "
               "labels 1-5, which are also reported (not independent). TRE on the phantom's "
               "landmark pairs; field error = mean ‖u − u_true‖ in the inhale lungs; "
               "folding in the inhale lungs.",
    "phantom-sliding": "The phantom's `sliding` variant (`cidir phantom --variant sliding`): the "
                       "lungs, mediastinum and liver move with the full breathing motion while "
                       "the chest wall, ribs and spine stay nearly still (5 % of it, plus the "
                       "continuous antero-posterior / lateral chest-wall excursion), and the "
                       "exhale lungs are denser (mass conserved, about 20 HU). The true field "
                       "is smooth inside the lungs and steps by up to about 17 mm "
                       "cranio-caudally at their outer boundary, where the still wall begins: "
                       "a method that drags the lung surface along with the wall is wrong in "
                       "the lung periphery, so the field error in the lungs (largest next to "
                       "the wall) measures how well it lets the lungs slide; the landmarks "
                       "lie at least 7.5 mm from the wall, so TRE measures it only where the "
                       "error reaches that deep. Selection, TRE, field error and folding as "
                       "for the smooth phantom.",
    "lung-mri": "Every method starts from the same initial affine (cidir.alignment `affine`, "
                "lung masks); α / weight chosen by lung-mask Dice (labels 1, 2); judged by "
                "lobe Dice (labels 1-5), never seen by the selection. Folding in the fixed "
                "lungs.",
    "brain2d": "Labels cast to int; α / weight chosen by the Dice of the even label ids, "
               "judged on the odd ids. Folding inside the fixed brain (labels > 0). Images "
               "are already affinely aligned to a template: no initial affine.",
    "dirlab": "T00 → T50, threshold lung masks, α by lung Dice, TRE on the 300 landmarks.",
}


MODE_TITLES = {"full": "Full protocol", "quick": "Quick mode (`--quick`)",
               "tiny": "Tiny smoke settings (`--tiny`, figures meaningless)"}


def coverage(entry: dict, settings: dict | None = None) -> tuple[int, int]:
    """(finished runs, planned runs) of a task: planned pairs × planned methods
    (``idir-at-cidir``: only the first ``conditioning_pairs`` pairs)."""
    pairs = len(entry.get("planned_pairs", entry["pairs"]))
    methods = entry.get("planned_methods", ())
    conditioning = min(pairs, (settings or {}).get("conditioning_pairs", 3))
    planned = sum(conditioning if m == "idir-at-cidir" else pairs for m in methods)
    done = sum(1 for pair in entry["pairs"].values() for r in pair["runs"].values()
               if r.get("ok"))
    return done, planned


def _settings_lines(s: dict) -> list[str]:
    return [
        f"- `cidir`: library defaults of `RunConfig` with overrides {s.get('cidir') or '{}'}; "
        "α chosen by `search_alpha` (Dice rule, ties to the smoother α).",
        f"- `idir`: the same network with fixed SIREN activations, trained at α = "
        f"{s['idir_alpha']} (one weight λ(α) of the same log mapping). The three IDIR rows "
        "train at IDIR's own schedule, Adam lr 10⁻⁴ at a constant rate over 800 iterations "
        "(`IDIR_TRAINING` in benchmarks/methods/inr.py; runs before 2026-12-03 used it for "
        "cidir too): at cidir's lr 10⁻³ the plain SIREN diverged.",
        f"- `idir-grid`: IDIR retrained for each α of {s['grid_alphas']} "
        f"({len(s['grid_alphas'])} trainings; time is their total), best by the same Dice "
        "rule." + (f" **A {len(s['grid_alphas'])}-weight grid, not 11.**"
                   if len(s["grid_alphas"]) < 11 else ""),
        f"- `idir-at-cidir`: IDIR retrained once at the α `cidir` chose on the pair, with "
        "cidir's calibrated λ scale (the same absolute weight), on the first "
        f"{s.get('conditioning_pairs', 3)} pairs of each task: its gap to `cidir` on those "
        "pairs is the cost of conditioning.",
        f"- `elastix`: default `bspline` map (Mattes MI + `TransformBendingEnergyPenalty`), "
        f"settings {s['elastix']}, penalty weight w = 0.01·10⁴ᵅ for α in the same grid "
        "(one run per weight; time is their total), best by the same Dice rule.",
        f"- `ants`: `ants.registration(..., 'SyNOnly')` after the common affine, "
        f"{s['ants'] or 'antspyx defaults'}.",
        f"- `sitk`: SimpleITK fast symmetric-forces demons, multi-resolution {s['sitk']}, "
        "histogram matching, one setting.",
    ]


def _header_lines(report: dict, json_name: str) -> list[str]:
    """The part's title, command, machine, settings and the calls its runs come from."""
    m = report["machine"]
    finished = report.get("finished_utc")
    when = (f"started {report['started_utc'][:19]} UTC, "
            + (f"finished {finished[:19]} UTC" if finished else "**interrupted**"))
    lines = [
        "", f"# {MODE_TITLES.get(report['mode'], report['mode'])}", "",
        f"Produced by `{report['command']}` ({when}; {report['total_seconds'] / 60:.1f} min "
        f"in this call, {report.get('reused_runs', 0)} runs reused from earlier calls). "
        f"Code {report.get('code_version') or 'unknown'}. All figures: `{json_name}`.",
        "",
        f"Machine: {m['cpu_cores']} CPU cores ({m['platform']}), device {m['device']}, "
        f"{m['threads_per_run']} threads per run, Python {m['python']}, torch {m['torch']}, "
        f"itk-elastix {m.get('itk-elastix')}, antspyx {m.get('antspyx')}, "
        f"SimpleITK {m.get('SimpleITK')}. The machine is shared with other work: times are "
        "indicative.",
        "", "Settings:", "",
    ] + _settings_lines(report["settings"])
    calls = report.get("calls", [])
    if len(calls) > 1:
        lines += ["", f"The runs of these tables come from {len(calls)} calls (`--resume`):", ""]
        for c in calls:
            end = (c.get("finished_utc") or "interrupted")[:19]
            lines.append(f"- `{c['command']}` ({c['started_utc'][:19]} → {end} UTC, code "
                         f"{c.get('code_version') or 'unknown'}): {c.get('runs_done', '?')} "
                         f"runs done, {c.get('runs_reused', '?')} reused")
    return lines


def _notes_lines(report: dict) -> list[str]:
    """Mode, code versions, notes, skipped methods and tasks absent from this mode."""
    lines: list[str] = []
    if report["mode"] != "full":
        lines += ["", f"**{report['mode']} mode**: fewer pairs, fewer iterations and a smaller "
                  "weight grid than the full protocol (see `settings` and `task_spec` in the "
                  "JSON). The figures are not those of the full benchmark."]
    versions = sorted({r.get("code_version") or "unknown" for t in report["tasks"].values()
                       for pair in t["pairs"].values() for r in pair["runs"].values()})
    if len(versions) > 1:
        lines += ["", "Runs come from several code versions (`--resume` across commits): "
                  + ", ".join(f"`{v}`" for v in versions) + "; see `code_version` per run."]
    for note in report.get("notes", []):
        lines += ["", f"Note: {note}"]
    if report.get("skipped_methods"):
        lines += ["", "Skipped methods: " + "; ".join(
            f"`{k}`: {v}" for k, v in report["skipped_methods"].items())]
    absent = [TITLES[t] for t in TITLES if t not in report["tasks"]]
    if absent:
        lines += ["", "Tasks not run in this mode: " + "; ".join(absent) + "."]
    return lines


def _task_lines(report: dict, task: str, entry: dict) -> list[str]:
    """One task's section: coverage, pairs, the before row, the table, the reading."""
    lines = ["", f"## {TITLES[task]}", ""]
    if entry.get("skipped"):
        return lines + [f"Skipped: {entry['skipped']}."]
    missing = [f"`{mm}`" for mm in PROTOCOL_METHODS
               if mm not in entry.get("planned_methods", PROTOCOL_METHODS)
               and mm not in report.get("skipped_methods", {})]
    if missing:
        lines += [f"**Not run on this task**: {', '.join(missing)} (no call named them; "
                  "`--resume --methods ...` adds them).", ""]
    done, planned = coverage(entry, report.get("settings"))
    if planned and done < planned:
        lines += [f"**Incomplete: {done} of {planned} planned runs** (pairs × methods) "
                  "have finished; means are over the pairs each method finished (the "
                  "`pairs` column), so rows may cover different pairs. "
                  "`--resume` adds the missing runs.", ""]
    summary = entry.get("summary") or aggregate(entry)
    names = ", ".join(f"`{n}`" for n in entry["pairs"])
    lines += [f"Pairs ({len(entry['pairs'])}): {names}. {NOTES[task]}", ""]
    b = summary.get("_before", {})
    if b.get("tre_mm", {}).get("mean") is not None:
        extra = (f", field error {_fmt(b['field_error_mm'])} mm"
                 if b.get("field_error_mm", {}).get("mean") is not None else "")
        lines += [f"Before registration: TRE {_fmt(b['tre_mm'])} mm (snapped "
                  f"{_fmt(b['tre_snapped_mm'])}){extra}.", ""]
    lines += _table(task, summary, report["settings"])
    for mm, v in summary.items():
        if not mm.startswith("_") and v.get("errors"):
            lines += ["", f"`{mm}` failed: " + "; ".join(v["errors"])]
    lines += ["", honest_paragraph(task, summary)]
    cost = conditioning_cost(task, entry)
    return lines + (["", cost] if cost else [])


def _report_lines(report: dict, json_name: str) -> list[str]:
    lines = _header_lines(report, json_name) + _notes_lines(report)
    for task, entry in report["tasks"].items():
        lines += _task_lines(report, task, entry)
    return lines


def write_markdown(reports: list[dict], path: Path, json_names: list[str]) -> None:
    """The Markdown of ``docs/benchmarks.md``: how it is measured, then one part per mode
    (full, quick, ...) with its tables; written atomically."""
    lines = [
        "# Benchmarks: cidir against IDIR, elastix, ANTs and SimpleITK",
        "",
        "Written by `benchmarks/run_benchmarks.py` from its results files (one per mode; "
        "`--quick` rewrites only the quick part, the full protocol only the full part).",
        "",
        "## How it is measured",
        "",
        "- One subprocess per (method, pair). Every method's result is converted to one "
        "convention: a displacement field on the fixed grid, mm, LPS, fixed → moving, the "
        "initial affine included. TRE maps the fixed landmarks through it (linear "
        "interpolation of the field), Dice warps the moving labels onto the fixed grid "
        "(nearest neighbour), folding is % of `sitk.DisplacementFieldJacobianDeterminant` "
        "≤ 0 — the same code for every method.",
        "- **time / pair**: registration (all trainings or weight-grid runs) + choice of α / "
        "weight + the dense field; evaluation excluded. **peak RSS**: the worker's "
        "peak resident memory (Linux `VmHWM`, which unlike `ru_maxrss` is not inherited "
        "from the runner) after the method, imports and inputs included; **ΔRSS**: its "
        "increase over the process after imports and data loading.",
        "- Peers are optional: `pip install -e '.[peers]'` (itk-elastix, antspyx). A peer that "
        "cannot be imported is skipped with the reason recorded.",
    ]
    if not reports:
        lines += ["", "No results yet."]
    for report, name in zip(reports, json_names, strict=True):
        lines += _report_lines(report, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    """Re-write the Markdown from results JSON files (optionally adding notes to the first):
    ``python -m benchmarks.report DOC.md RESULTS.json [...] [--note TEXT ...]``."""
    import argparse
    import json

    p = argparse.ArgumentParser(description=main.__doc__.split("\n")[0])
    p.add_argument("doc")
    p.add_argument("json", nargs="+")
    p.add_argument("--note", action="append", default=[])
    args = p.parse_args(argv)
    paths = [Path(j) for j in args.json]
    reports = [json.loads(path.read_text(encoding="utf-8")) for path in paths]
    if args.note:
        reports[0].setdefault("notes", []).extend(args.note)
        tmp = paths[0].with_name(paths[0].name + ".tmp")
        tmp.write_text(json.dumps(reports[0], indent=1), encoding="utf-8")
        os.replace(tmp, paths[0])
    write_markdown(reports, Path(args.doc), [str(path) for path in paths])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
