"""``cidir cohort --backend ray`` on a real local Ray instance (started here on 127.0.0.1):
the same models as the local backend, and a worker killed mid-pair is retried and resumes
from its checkpoint. Skipped only when ray is not installed (CI installs it)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from cidir.cohort import run_cohort
from cidir.config import RunConfig
from runs_helpers import write_pair
from test_cohort import _manifest, _row

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'cidir[ray]')")

TINY = {"model.width": 16, "model.hidden_layers": 2, "model.harmonizer_widths": [16],
        "training.batch_size": 200, "objective.calibration_iterations": 5,
        "selection.num_alphas": 3, "selection.sample_points": 2000,
        "selection.folding_points": 500}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False,
             log_to_driver=False, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_pair(tmp_path_factory.mktemp("pair"))


def _models(out: Path, ident: str) -> dict[str, np.ndarray]:
    return load_file(str(out / ident / "model.safetensors"))


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_ray_cohort_equals_the_local_backend(local_ray, files, tmp_path):
    """Four pairs as Ray tasks of one CPU each: all finish, with the local backend's models
    (same per-pair seeds, one thread each)."""
    import torch

    config = RunConfig().with_overrides({**TINY, "training.iterations": 20})
    manifest = _manifest(tmp_path / "m.csv", [_row(files, f"p{i}") for i in range(4)])
    on_ray = run_cohort(manifest, tmp_path / "ray", config, workers=2, threads=1,
                        backend="ray")
    assert [r["status"] for r in on_ray.records] == ["ok"] * 4
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = run_cohort(manifest, tmp_path / "local", config, workers=1)
        assert [r["status"] for r in local.records] == ["ok"] * 4
    finally:
        torch.set_num_threads(threads)
    for i in range(4):
        assert _same(_models(tmp_path / "ray", f"p{i}"), _models(tmp_path / "local", f"p{i}"))
    summary = json.loads((tmp_path / "ray" / "cohort.json").read_text())
    assert summary["settings"]["backend"] == "ray"


def _pair_workers() -> list[int]:
    """PIDs of Ray worker processes running a cohort pair (Ray names them after the task)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "_pair_in_ray" in cmdline:
                pids.append(int(entry.name))
    return pids


def test_a_killed_worker_is_retried_and_resumes(local_ray, files, tmp_path):
    """SIGKILL of a worker mid-pair, once a checkpoint exists: Ray retries the task, the pair
    resumes from the checkpoint, the cohort completes, the model is the uninterrupted one."""
    config = RunConfig().with_overrides({**TINY, "training.iterations": 400,
                                         "training.checkpoint_every": 25})
    manifest = _manifest(tmp_path / "m.csv", [_row(files, "p0"), _row(files, "p1")])
    out = tmp_path / "ray"
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(records=run_cohort(
        manifest, out, config, workers=2, threads=1, backend="ray").records))
    runner.start()
    killed = None
    deadline = time.monotonic() + 240
    while killed is None and time.monotonic() < deadline and runner.is_alive():
        # every pair has a checkpoint: whichever worker is killed, its pair can resume
        if (all(list(out.glob(f"{p}/.fit-*/checkpoint.safetensors")) for p in ("p0", "p1"))
                and _pair_workers()):
            killed = _pair_workers()[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    runner.join(timeout=300)
    assert killed is not None, "no worker was caught mid-pair"
    assert [r["status"] for r in result["records"]] == ["ok", "ok"]
    assert any(r["fit"] == "resumed" for r in result["records"]), result["records"]
    whole = run_cohort(manifest, tmp_path / "whole", config, workers=2, threads=1,
                       backend="ray")
    assert [r["status"] for r in whole.records] == ["ok", "ok"]
    for ident in ("p0", "p1"):
        assert _same(_models(out, ident), _models(tmp_path / "whole", ident)), ident
