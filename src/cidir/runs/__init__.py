"""Runs: the run folder's files, and what each CLI command does (fit, select, apply, export,
evaluate, report, demo, DIR-LAB protocol)."""

from cidir.runs.folder import RunFolder

__all__ = ["RunFolder"]
