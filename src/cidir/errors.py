"""Errors a user can act on.

:class:`InputError` is raised for bad input (files, arguments, values); its message names
the file or argument, what was expected and what was found. The CLI turns it into a
one-line message and exit status 2, without a traceback.
"""


class InputError(ValueError):
    """Bad user input: the message names the file or argument, expected and found."""
