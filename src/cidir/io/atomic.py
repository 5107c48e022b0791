"""Atomic writes: a file appears complete under its final name, or not at all.

Each writer writes to a temporary file in the destination folder, flushes it, and renames
it over the destination with :func:`os.replace` (atomic on POSIX and Windows). A crash or an
interrupt leaves at most a hidden ``.*.tmp`` file, never a half-written output. A destination
that cannot be written (permission, a file where a folder should be, a full disk) raises
:class:`~cidir.errors.InputError` naming it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cidir.errors import InputError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _suffixes(path: Path) -> str:
    # keep every suffix (".nii.gz") so that writers choosing a format by extension work
    return "".join(path.suffixes)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    The temporary file has the same extension, so format-by-extension writers
    (SimpleITK, safetensors) can write to it. On any exception it is removed.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + _suffixes(path),
                                   dir=path.parent)
    except OSError as exc:
        raise cannot_write(path, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the output the permissions of an ordinary file
        os.chmod(tmp_path, 0o666 & ~_current_umask())
        os.replace(tmp_path, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(exc, OSError):
            raise cannot_write(path, exc) from None
        raise


def cannot_write(path: Path, exc: OSError) -> InputError:
    """The one-line error for an output that the file system refuses."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return InputError(f"output {path}: cannot write it ({reason})")


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically (UTF-8)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a binary file atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_json(path: str | os.PathLike, data) -> None:
    """Write JSON atomically (indented, NaN written as null is the caller's job)."""
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
