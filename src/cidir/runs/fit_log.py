"""RUN/fit.log: the course of a fit in plain text — what was trained on what, the
calibration, the loss terms as training goes, interruptions and resumptions, the end.

It is what the ``cidir`` logger records at INFO while the fit runs (the same lines ``cidir
-v`` shows on stderr). The log is written in the fit's staging folder, appended to by
``--resume``, and moved into the run folder with the model.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LOG_NAME = "fit.log"
LOGGER = "cidir"
FORMAT = "%(asctime)s %(levelname)s %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
#: ``extra`` of a record that the caller also states (an error, an interruption): the file
#: keeps it, the console handler of the CLI leaves it out (see :func:`not_echoed`)
ECHOED = {"echoed": True}
log = logging.getLogger(__name__)


def not_echoed(record: logging.LogRecord) -> bool:
    """A logging filter: False for the records marked with :data:`ECHOED`."""
    return not getattr(record, "echoed", False)


@contextmanager
def log_to_file(path: Path) -> Iterator[None]:
    """Append the ``cidir`` logger's INFO (and higher) records to ``path`` while the block
    runs. The logger's level is lowered to INFO for the block when it is higher (and put
    back after), so the file gets the INFO lines whatever the application configured."""
    logger = logging.getLogger(LOGGER)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(level)


@contextmanager
def recorded_warnings() -> Iterator[list[str]]:
    """The messages of the ``cidir`` logger's WARNING (and higher) records while the block
    runs — what reading the inputs warned about before fit.log exists (a mask resampled
    onto its image's grid), for :func:`log_fit_start` to write into it."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Collect(logging.WARNING)
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def log_fit_start(plan: dict[str, Any], config: Any, machine: dict[str, Any],
                  start_iteration: int) -> None:
    """The header of a fit (or of a resumption): version, run id, grids, initial alignment,
    device and the configuration that matters most (the whole one is config.toml)."""
    from cidir import __version__

    if start_iteration:
        log.info("cidir %s: fit %s resumed at iteration %d", __version__, plan["run_id"],
                 start_iteration)
    else:
        log.info("cidir %s: fit %s started", __version__, plan["run_id"])
    for name in ("fixed", "moving"):
        grid = plan[f"{name}_grid"]
        log.info("%s grid: size %s, spacing %s mm, origin %s mm", name, grid["size"],
                 grid["spacing"], grid["origin"])
    if not start_iteration:  # already shown on stderr when the inputs were read
        for message in plan.get("input_warnings") or []:
            log.warning("inputs: %s", message, extra=ECHOED)
    log.info("initial alignment %s (%.1f s); moving image covers %.0f%% of the fixed points",
             plan["init"], plan["init_seconds"], 100 * plan["overlap"])
    log.info("device %s, %s torch threads, torch %s", machine["device"], machine["threads"],
             machine["torch"])
    if plan.get("init_model"):
        log.info("warm start from %s (run %s)", plan["init_model"]["path"],
                 plan["init_model"].get("run_id"))
    o, t, m = config.objective, config.training, config.model
    log.info("model %s width %d; similarity %s; regularizers %s; calibration %s; "
             "%d iterations", m.kind, m.width, o.similarity,
             ", ".join(f"{r.name} [{r.lambda_min:g}, {r.lambda_max:g}] {r.mapping}"
                       for r in o.regularizers) or "none", o.calibration, t.iterations)
