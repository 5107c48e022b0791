"""Trained pairs for the α-selection study (docs/selection.md): each benchmark pair fitted once
with the library's default configuration, the model kept for the study's later calls.

    python benchmarks/selection_fits.py [--tasks phantom lung-mri brain2d] [--pairs 2]
        [--work benchmarks/work/selection] [--shared-data ../shared/data]

A pair's model is stored as ``WORK/<task>/<pair>/model.safetensors`` with the SHA-256 of the
resolved configuration; it is reused while that configuration is unchanged and refitted
otherwise. The pair itself (images, labels, landmarks, true field) is rebuilt from its task
(:mod:`benchmarks.tasks`) each time: the phantom is deterministic from its seed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.pairs import PairData  # noqa: E402
from benchmarks.tasks import TaskSpec, build  # noqa: E402
from cidir.config import RunConfig  # noqa: E402
from cidir.fields import ConditionedTransform  # noqa: E402
from cidir.io.model_store import load_model, read_metadata, save_model  # noqa: E402
from cidir.training import fit  # noqa: E402

TASKS = ("phantom", "phantom-sliding", "lung-mri", "brain2d")
WORK = ROOT / "benchmarks" / "work" / "selection"
SHARED = ROOT.parent / "shared" / "data"


@dataclass
class FittedPair:
    """A benchmark pair and its trained transform (``fit_seconds``: of the fit that made it)."""

    pair: PairData
    transform: ConditionedTransform
    config: RunConfig
    fit_seconds: float


def config_sha(config: RunConfig) -> str:
    """SHA-256 of what the fit depends on (model, objective, training): a change of the
    selection settings, applied after the fit, keeps the cached models."""
    fit_sections = {k: v for k, v in config.to_dict().items() if k != "selection"}
    return hashlib.sha256(json.dumps(fit_sections, sort_keys=True).encode()).hexdigest()


def task_pairs(task: str, count: int, shared: Path) -> tuple[list[PairData], str | None]:
    """The first ``count`` pairs of a task (phantom: seeds 0..count-1 at DIR-LAB size)."""
    spec = TaskSpec(phantom_seeds=tuple(range(count)), lung_pairs=count, brain_pairs=count)
    pairs, reason = build(task, spec, shared, None)
    return pairs[:count], reason


def fitted(pair: PairData, work: Path, config: RunConfig | None = None) -> FittedPair:
    """The pair's model from ``work`` when its configuration matches, else a new fit (saved)."""
    config = config or RunConfig()
    digest = config_sha(config)
    path = work / pair.task / pair.name / "model.safetensors"
    if path.is_file() and read_metadata(path).get("study_config_sha") == digest:
        transform, _ = load_model(path)
        seconds = float(read_metadata(path).get("fit_seconds", "nan"))
        return FittedPair(pair, transform, config, seconds)
    start = time.perf_counter()
    result = fit(pair.fixed, pair.moving, config, fixed_mask=pair.fixed_mask, device="cpu",
                 init_matrix=pair.init_matrix)
    seconds = time.perf_counter() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(path, result.transform, config,
               {"study_config_sha": digest, "fit_seconds": f"{seconds:.2f}"})
    print(f"[{pair.task} {pair.name}] fitted in {seconds:.0f} s", flush=True)
    return FittedPair(pair, result.transform, config, seconds)


def fitted_task(task: str, count: int, work: Path = WORK, shared: Path = SHARED
                ) -> tuple[list[FittedPair], str | None]:
    """Every pair of a task fitted (or reused); ([], reason) when the task is skipped."""
    pairs, reason = task_pairs(task, count, shared)
    return [fitted(p, work) for p in pairs], reason


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), or the platform's processor string."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def study_record(script: str, argv: list[str]) -> dict:
    """What every study result records: command, machine, CPU, torch threads, commit, date."""
    import torch

    from benchmarks.run_benchmarks import code_version, machine_info

    return {"command": " ".join(["python", script, *argv]), "machine": machine_info(),
            "cpu": cpu_model(), "threads": torch.get_num_threads(),
            "code_version": code_version(), "date": time.strftime("%Y-%m-%d")}


def provenance_line(record: dict) -> str:
    """The sentence above each table of docs/selection.md."""
    return (f"Measured {record['date']} on {record['cpu']} ({record['machine']['cpu_cores']} "
            f"cores, {record['threads']} torch threads), commit {record['code_version']}, by "
            f"`{record['command']}`.")


def add_arguments(p: argparse.ArgumentParser, pairs: int = 2) -> None:
    """The options every selection-study script shares."""
    p.add_argument("--tasks", nargs="+", default=["phantom", "lung-mri", "brain2d"],
                   choices=TASKS)
    p.add_argument("--pairs", type=int, default=pairs, help="pairs (phantom: seeds) per task")
    p.add_argument("--work", default=str(WORK), help="where trained models are kept")
    p.add_argument("--shared-data", default=str(SHARED))


def study_parser(doc: str, pairs: int, tasks: list[str], out: str) -> argparse.ArgumentParser:
    """The command line of a study script: the shared options, its default tasks and pairs,
    ``--out`` (its results JSON, default benchmarks/results/OUT) and ``--doc``."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    add_arguments(p, pairs=pairs)
    p.set_defaults(tasks=tasks)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / out))
    p.add_argument("--doc", default=str(ROOT / "docs" / "selection.md"))
    return p


def each_fitted(args: argparse.Namespace) -> Iterator[FittedPair]:
    """Every fitted pair of the study's tasks (``args`` from :func:`study_parser`)."""
    for task in args.tasks:
        done, reason = fitted_task(task, args.pairs, Path(args.work), Path(args.shared_data))
        if reason:
            print(f"{task}: skipped ({reason})", flush=True)
        yield from done


def save_study(args: argparse.Namespace, script: str, argv: list[str], results: list,
               blocks: dict[str, str]) -> dict:
    """Write the results JSON (with :func:`study_record`) and each table into the doc
    between the markers ``<!-- NAME:start -->`` / ``<!-- NAME:end -->`` of ``blocks``."""
    from benchmarks.ablation_report import write_block

    report = {**study_record(script, argv), "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1), encoding="utf-8")
    for name, text in blocks.items():
        write_block(Path(args.doc), f"<!-- {name}:start -->", f"<!-- {name}:end -->",
                    provenance_line(report) + "\n\n" + text)
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    for task in args.tasks:
        done, reason = fitted_task(task, args.pairs, Path(args.work), Path(args.shared_data))
        print(f"{task}: {len(done)} pairs" + (f" (skipped: {reason})" if reason else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
