"""Runs: the run folder's files (``folder``), and what each CLI command does (``fit``:
fit and resume; ``apply``; ``commands``: select, export, evaluate, report; ``demo``;
``dirlab``),
with what keeps a run folder trustworthy: pre-flight checks (``preflight``), run identity
(``identity``), portable checksummed inputs (``inputs``), the writer's lock (``lock``),
staged fits switched in atomically (``staging``) and Ctrl-C handling (``interrupt``)."""

from cidir.runs.folder import RunFolder

__all__ = ["RunFolder"]
