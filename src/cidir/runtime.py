"""Where cidir computes: the torch device, CPU threads and OpenMP waiting (chosen so that
cidir processes sharing a machine do not trap each other).

PyTorch's CPU kernels run on an OpenMP pool whose idle threads, by default, spin on their
core for a while before sleeping. With two such processes on one machine each spins on cores
the other needs: on a 2-core machine two fits side by side ran 3× slower each than one
alone (``benchmarks/threads.py``, see docs/method-choices.md). cidir therefore asks OpenMP to
let idle threads sleep (``OMP_WAIT_POLICY=PASSIVE``), which must happen before torch is
imported: the ``cidir`` command does it first thing; library users who share a machine set
the variable themselves or call :func:`prefer_passive_waiting` before importing torch. A
value the user already set is respected. The thread count is ``--threads`` (default: the
cores this process may run on).
"""

from __future__ import annotations

import os
import resource
import sys
from typing import TYPE_CHECKING

from cidir.errors import InputError

if TYPE_CHECKING:
    import torch

WAIT_POLICY = "PASSIVE"


def prefer_passive_waiting() -> bool:
    """Set OMP_WAIT_POLICY=PASSIVE unless the user set it; True when it takes effect (torch
    not imported yet and no user value)."""
    if "OMP_WAIT_POLICY" in os.environ:
        return False
    os.environ["OMP_WAIT_POLICY"] = WAIT_POLICY
    return "torch" not in sys.modules


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask; os.cpu_count otherwise)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def configure_threads(threads: int | None) -> int:
    """Set torch's intra-op threads, and SimpleITK's (the initial alignment, resampling), to
    ``threads`` (None: :func:`available_cores`); returns the count in use. Raises ValueError
    for a count < 1."""
    import SimpleITK as sitk
    import torch

    count = available_cores() if threads is None else int(threads)
    if count < 1:
        raise ValueError(f"--threads: expected a positive integer, found {threads}")
    torch.set_num_threads(count)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(count)
    return count


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch device named by the user (cpu, cuda, cuda:N); InputError when it is not
    available."""
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"--device: expected cpu, cuda or cuda:N, found {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device}: CUDA is not available on this machine")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"--device: expected cpu, cuda or cuda:N, found {device!r}")
    return dev


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MB).

    Linux: ``VmHWM`` of /proc/self/status, which starts afresh at exec and with
    :func:`reset_peak_rss` (``ru_maxrss`` does not: a child keeps its parent's high-water
    mark across fork + exec). Elsewhere: ``ru_maxrss`` (KiB on Linux, bytes on macOS)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024.0


def reset_peak_rss() -> None:
    """Start this process's peak-RSS count afresh (Linux; elsewhere nothing), so that a
    worker running several jobs reports the peak of each."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        pass
