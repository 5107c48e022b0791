"""Silencing native libraries that print on the process's stderr.

ITK's MetaIO (MHA/MHD) and some other readers write their diagnostics straight to the C++
``std::cerr`` before raising; cidir reports the failure in its own one-line message, so the
file descriptor 2 is pointed at ``/dev/null`` for the duration of such a call.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Within the context, output written to file descriptor 2 is discarded."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    try:
        sys.stderr.flush()
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
        finally:
            os.close(null)
        try:
            yield
        finally:
            os.dup2(saved, 2)
    finally:
        os.close(saved)
