"""``cidir cohort``: every pair of a manifest, on a local process pool or Ray, resumable.

The manifest is validated whole first (:mod:`cidir.cohort.manifest`): a bad one writes
nothing. Each pair then runs as one task (:func:`cidir.cohort.pair_task.run_pair`) with its
own seed (derived from ``training.seed`` and its id). ``--workers N`` runs N pairs at a time
in N spawned processes, each with cores / N torch threads, so that they do not oversubscribe
the machine; with one worker the pairs run in this process. The summary
(``cohort.csv``, ``cohort.json``, ``cohort.html``) is rewritten after every pair, so an
interrupted cohort keeps what it finished; a rerun reuses complete pairs and resumes an
interrupted fit from its checkpoint.

A failing pair is recorded with its error and the others go on; a worker process that dies
(out of memory, killed) fails only the pairs it was running, which are retried once in a
fresh pool before being recorded as failed.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cidir.cohort.manifest import PairSpec, read_manifest
from cidir.cohort.pair_task import PairTask, derive_seed, run_pair
from cidir.cohort.summary import write_summary
from cidir.config import RunConfig
from cidir.errors import FitInterrupted, InputError
from cidir.io.outputs import check_output_folder
from cidir.runtime import available_cores

# (pairs done, pairs in all, the record just finished; None once at the start)
Progress = Callable[[int, int, dict[str, Any] | None], None]


@dataclass(frozen=True)
class CohortResult:
    """The records of every pair (manifest order) and where the summary went."""

    records: list[dict[str, Any]]
    out: Path
    seconds: float

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("status") == "failed"]


def plan_tasks(manifest: str | Path, out: str | Path, config: RunConfig,
               device: str = "cpu") -> list[PairTask]:
    """Validate the manifest and the output folder; one task per pair (nothing written)."""
    out = check_output_folder(out, "--out")
    pairs = read_manifest(manifest, config)
    return [_task(pair, config, out, device) for pair in pairs]


def _task(pair: PairSpec, config: RunConfig, out: Path, device: str) -> PairTask:
    pair_config = config.with_overrides(pair.overrides) if pair.overrides else config
    seed = derive_seed(pair_config.training.seed, pair.id)  # a `set` seed reseeds the pair
    pair_config = pair_config.with_overrides({"training.seed": seed, "selection.seed": seed})
    return PairTask(pair.id, {k: (str(v) if v is not None else None)
                              for k, v in pair.paths.items()},
                    pair.init, pair_config.to_toml(), str(out), device,
                    None if pair.init_model is None else str(pair.init_model))


BACKENDS = ("local", "ray")


def run_cohort(manifest: str | Path, out: str | Path, config: RunConfig, *,
               workers: int = 1, threads: int | None = None, device: str = "cpu",
               backend: str = "local", ray_address: str | None = None,
               progress: Progress | None = None) -> CohortResult:
    """Run (or resume) every pair of the manifest into ``out``; see the module docstring.
    ``threads``: torch threads per pair (default: cores / workers); ``backend`` ``ray``:
    each pair a Ray task of ``threads`` CPUs (:mod:`cidir.cohort.ray_backend`)."""
    if workers < 1:
        raise InputError(f"--workers: expected a positive integer, found {workers}")
    if backend not in BACKENDS:
        raise InputError(f"--backend: expected {' or '.join(BACKENDS)}, found {backend!r}")
    if backend == "ray":
        from cidir.cohort.ray_backend import ray_module

        ray_module()  # a clear error before anything is written when ray is missing
    tasks = plan_tasks(manifest, out, config, device)
    out_dir = Path(tasks[0].out)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    records: dict[str, dict[str, Any]] = {}
    order = [t.id for t in tasks]
    settings = {"manifest": str(Path(manifest).resolve()), "workers": workers,
                "backend": backend, "ray_address": ray_address, "device": device,
                "config": config.to_dict()}

    def done(record: dict[str, Any]) -> None:
        records[record["id"]] = record
        write_summary(out_dir, [records[i] for i in order if i in records], settings,
                      time.perf_counter() - start)
        if progress is not None:
            progress(len(records), len(tasks), record)

    if progress is not None:
        progress(0, len(tasks), None)
    threads = threads or max(1, available_cores() // min(workers, len(tasks)))
    if backend == "ray":
        from cidir.cohort.ray_backend import run_on_ray

        gpus = 1.0 / workers if device.startswith("cuda") else 0.0
        run_on_ray(tasks, done, address=ray_address, cpus_per_task=threads,
                   gpus_per_task=gpus)
    elif workers == 1 or len(tasks) == 1:
        _run_inline(tasks, done)
    else:
        _run_pool(tasks, min(workers, len(tasks)), threads, done)
    result = CohortResult([records[i] for i in order if i in records], out_dir,
                          time.perf_counter() - start)
    interrupted = [r["id"] for r in result.records if r.get("status") == "interrupted"]
    if interrupted:
        raise FitInterrupted(f"interrupted during pair(s) {', '.join(interrupted)}; run the "
                             f"same command again to resume", 130)
    return result


def _run_inline(tasks: Iterable[PairTask], done: Callable[[dict[str, Any]], None]) -> None:
    for task in tasks:
        record = run_pair(task)
        done(record)
        if record.get("status") == "interrupted":
            return


def _init_worker(threads: int) -> None:
    """A pool worker: its torch threads (cores / workers), OpenMP threads that sleep."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    from cidir.runtime import configure_threads

    configure_threads(threads)


def _run_pool(tasks: list[PairTask], workers: int, threads: int,
              done: Callable[[dict[str, Any]], None]) -> None:
    """The pairs on ``workers`` spawned processes; a dead worker's pairs are retried once."""
    import multiprocessing

    pending = list(tasks)
    attempts: dict[str, int] = {}
    while pending:
        context = multiprocessing.get_context("spawn")
        retry: list[PairTask] = []
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                 initargs=(threads,)) as pool:
            futures: dict[Future, PairTask] = {pool.submit(run_pair, t): t for t in pending}
            while futures:
                finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in finished:
                    task = futures.pop(future)
                    try:
                        done(future.result())
                    except BrokenProcessPool:
                        attempts[task.id] = attempts.get(task.id, 0) + 1
                        if attempts[task.id] > 1:
                            done({"id": task.id, "status": "failed",
                                  "error": "its worker process died twice (out of memory or "
                                           "killed)"})
                        else:
                            retry.append(task)
        pending = retry
        if pending:
            print(f"cidir cohort: a worker process died; retrying "
                  f"{', '.join(t.id for t in pending)}", file=sys.stderr)
