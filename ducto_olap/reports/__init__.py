"""Scheduled spend reports: HTML, Markdown, CSV and JSON files for a period.

Example:
    >>> from ducto_olap.reports import resolve_period, report_from_lake, write_report
    >>> period = resolve_period("yesterday", tz="Europe/Berlin")
    >>> write_report(report_from_lake("data/lake", period), Path("data/reports"), ["html"])
"""

from ducto_olap.reports.content import ReportContent, gather
from ducto_olap.reports.period import DEFAULT_PERIOD, PERIODS, ReportPeriod, resolve_period
from ducto_olap.reports.run import FORMATS, report_files, report_from_lake, write_report

__all__ = [
    "DEFAULT_PERIOD",
    "FORMATS",
    "PERIODS",
    "ReportContent",
    "ReportPeriod",
    "gather",
    "report_files",
    "report_from_lake",
    "resolve_period",
    "write_report",
]
