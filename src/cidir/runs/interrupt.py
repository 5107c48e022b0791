"""Ctrl-C during a fit: finish the current iteration, save a checkpoint, stop cleanly.

Inside :class:`SignalFlag`, the first SIGINT (Ctrl-C) or SIGTERM only records the signal; the
training loop stops after its current iteration and the fit saves its checkpoint. A second
signal raises :class:`KeyboardInterrupt` at once (the last periodic checkpoint stays). Signal
handlers can only be set from the main thread; elsewhere the flag never rises.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalFlag:
    """Records the first SIGINT/SIGTERM received within the context (``signum``)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __bool__(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> SignalFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
