"""Reporting: the run's HTML page (``report.html``) and its figures."""

from cidir.reporting.html import write_report

__all__ = ["write_report"]
