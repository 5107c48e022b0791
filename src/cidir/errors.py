"""Errors a user can act on.

:class:`InputError` is raised for bad input (files, arguments, values); its message names
the file or argument, what was expected and what was found. The CLI turns it into a
one-line message and exit status 2, without a traceback. :class:`FitInterrupted` ends a fit
stopped by Ctrl-C (or SIGTERM) after its checkpoint was saved (exit status 128 + signal).
"""

from __future__ import annotations

import re


class InputError(ValueError):
    """Bad user input: the message names the file or argument, expected and found."""


class FitInterrupted(Exception):
    """A fit stopped by a signal; its message says how to resume it."""

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# C++ library text that says nothing to a user (an ITK reader failing on a garbage file)
_CPP_NOISE = ("basic_string", "std::", "__pos", "vector::", "bad_alloc", "stoi", "stod")


def itk_message(exc: BaseException, limit: int = 160) -> str:
    """The meaningful sentence of a SimpleITK/ITK error, on one line, without source paths.

    ITK errors read ``Exception thrown in SimpleITK ReadImage: /long/path/file.cxx:123:\\n
    ITK ERROR: SomeIO(0x55...): the reason``; this keeps ``the reason``. Messages that are
    only C++ library internals (``basic_string::replace: __pos ...``) give ``""``.
    """
    if isinstance(exc, UnicodeDecodeError):  # SimpleITK could not decode ITK's message
        return ""
    text = str(exc)
    for marker in ("sitk::ERROR:", "ITK ERROR:", "ERROR:"):
        if marker in text:
            text = text.rsplit(marker, 1)[1]
            break
    else:
        text = re.sub(r"^Exception thrown in SimpleITK \w+:\s*", "", text.strip())
    line = " ".join(text.split())
    line = re.sub(r"^\w+\(0x[0-9a-fA-F]+\):\s*", "", line)  # "MetaImageIO(0x55...): "
    line = re.sub(r"^\S+\.(cxx|hxx|h|cpp):\d+:\s*", "", line)  # a leftover source location
    line = re.sub(r"\s*Reason: No such file or directory$", "", line)  # errno left over
    if any(noise in line for noise in _CPP_NOISE):
        return ""
    if len(line) > limit:
        line = line[:limit].rsplit(" ", 1)[0] + " ..."
    return line
