"""One writer at a time: an advisory lock on a run folder.

Commands that write into a run (``fit``, ``select``, ``evaluate``, ``report``) hold
``RUN/.cidir.lock``, locked with ``fcntl.flock`` and holding ``{"pid", "host", "command",
"since"}`` (JSON) for the message another process gets: ``run folder RUN is in use by process
PID (cidir fit since ...)``, at once, exit 2. The kernel releases a ``flock`` when its process
dies, so a lock left by a killed process (``kill -9``, a crash) is free: the next command
takes it and notes the recovery. A clean release empties and removes the file. ``flock`` is
local to a machine: two hosts writing one run folder over NFS are not excluded.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path

from cidir.errors import InputError
from cidir.io.atomic import cannot_write

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory lock
    fcntl = None

LOCK_NAME = ".cidir.lock"


def _describe(holder: dict) -> str:
    host = holder.get("host")
    on_host = f" on {host}" if host and host != socket.gethostname() else ""
    return (f"process {holder.get('pid', '?')}{on_host} ({holder.get('command', 'cidir')} "
            f"since {holder.get('since', '?')})")


def _read_holder(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    try:
        holder = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        holder = {"pid": "?"}
    return holder if isinstance(holder, dict) else {"pid": "?"}


def holder(folder: str | os.PathLike) -> str | None:
    """Who holds ``folder``'s lock (``process PID (cidir fit since ...)``), None when free."""
    path = Path(folder) / LOCK_NAME
    if fcntl is None:  # pragma: no cover
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _describe(_read_holder(fd))
    finally:
        os.close(fd)  # also releases the shared lock, if taken
    return None


class RunLock:
    """Context manager holding the lock of ``folder`` (created when missing)."""

    def __init__(self, folder: str | os.PathLike, command: str) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.command = f"cidir {command}"
        self._fd: int | None = None
        self.recovered: dict | None = None  # the holder a killed process left behind

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise cannot_write(self.folder, exc) from None
        for _ in range(10):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise cannot_write(self.path, exc) from None
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise InputError(f"run folder {self.folder} is in use by "
                                     f"{_describe(holder)}; wait for it to finish") from None
            # the file may have been released and removed between open and flock: retry
            with contextlib.suppress(FileNotFoundError):
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            os.close(fd)
        else:  # pragma: no cover - ten races in a row
            raise InputError(f"run folder {self.folder}: could not take its lock {self.path}")
        previous = _read_holder(fd)
        if previous:
            self.recovered = previous
            print(f"note: {self.folder}: recovered the lock left by {_describe(previous)}, "
                  "which ended without releasing it", file=sys.stderr)
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                  "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(holder).encode("utf-8"))
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            self.path.unlink()
        os.close(fd)  # closing releases the flock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
