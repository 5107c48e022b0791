"""Reporting: the run's self-contained HTML page (``report.html``), its summary and figures."""

from cidir.reporting.html import write_report
from cidir.reporting.summary import RunRecord, file_date

__all__ = ["RunRecord", "file_date", "write_report"]
