"""The Ray backend of ``cidir cohort``: each pair one Ray task (``pip install 'cidir[ray]'``).

Without an address a local Ray instance is started on this machine; ``--ray-address auto``
joins the cluster this machine belongs to (started with ``ray start`` on each node, e.g. by
Ray's Slurm recipe; see docs/cohorts.md), ``ray://host:10001`` a remote one. Each task asks
for ``num_cpus`` CPUs (its torch threads) and, on CUDA, a fraction of a GPU
(``num_gpus``), so that several small fits share one GPU. A task whose worker process dies
(out of memory, a node lost) is retried by Ray (``max_retries``); the retry resumes the
pair's fit from its last checkpoint in the shared output folder, which therefore must be on a
file system every node sees.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cidir.cohort.pair_task import PairTask, run_pair
from cidir.errors import InputError

MAX_RETRIES = 2


def ray_module() -> Any:
    """The ``ray`` package, or InputError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise InputError("--backend ray: the ray package is not installed; install it with "
                         "pip install 'cidir[ray]' (or pip install ray)") from None
    return ray


def _pair_in_ray(task: PairTask, threads: int) -> dict[str, Any]:
    """One pair inside a Ray worker, with its CPU share as torch threads."""
    from cidir.runtime import configure_threads

    configure_threads(threads)
    return run_pair(task)


def run_on_ray(tasks: list[PairTask], done: Callable[[dict[str, Any]], None], *,
               address: str | None, cpus_per_task: int, gpus_per_task: float) -> None:
    """Submit every pair as a Ray task and record each as it finishes."""
    ray = ray_module()
    started = not ray.is_initialized()
    if started:
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            kwargs["address"] = address
        else:
            kwargs["runtime_env"] = {"env_vars": {"OMP_WAIT_POLICY": "PASSIVE"}}
        ray.init(**kwargs)
    try:
        remote = ray.remote(num_cpus=cpus_per_task, num_gpus=gpus_per_task,
                            max_retries=MAX_RETRIES)(_pair_in_ray)
        pending = {remote.remote(task, cpus_per_task): task for task in tasks}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                task = pending.pop(ref)
                try:
                    done(ray.get(ref))
                except ray.exceptions.RayError as exc:
                    done({"id": task.id, "status": "failed",
                          "error": f"Ray task failed after {MAX_RETRIES} retries: "
                                   f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"})
    finally:
        if started:
            ray.shutdown()
