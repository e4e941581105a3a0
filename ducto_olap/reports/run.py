"""Make a report from a lake and write its files: what ``ducto-olap report`` does.

Example:
    >>> period = resolve_period("yesterday", tz="America/New_York")
    >>> content = report_from_lake("data/lake", period, engine="duckdb")
    >>> write_report(content, Path("data/reports"), ["html", "md"])
    [PosixPath('data/reports/spend-2026-12-02.html'), PosixPath('data/reports/spend-2026-12-02.md')]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from ducto_olap.errors import ConfigError
from ducto_olap.lake import LakeSnapshot
from ducto_olap.reports.content import ReportContent, empty_content, gather
from ducto_olap.reports.period import ReportPeriod
from ducto_olap.reports.render_csv import render_csv
from ducto_olap.reports.render_html import render_html
from ducto_olap.reports.render_json import render_json
from ducto_olap.reports.render_markdown import render_markdown
from ducto_olap.reports.write import write_atomic

logger = logging.getLogger("ducto_olap.reports")

FORMATS = ("html", "md", "csv", "json")


def report_from_lake(
    lake: str | Path,
    period: ReportPeriod,
    *,
    engine: str = "duckdb",
    top: int = 10,
    now: datetime | None = None,
) -> ReportContent:
    """Ask the lake's engine the report's questions over ``period``.

    A lake with no committed files gives a report with no spend, not an error.

    Raises:
        LakeError: the lake folder is missing or its commit log is damaged.
        ConfigError: ``engine`` is not a known engine.
    """
    from ducto_olap.engines import open_analytics

    generated_at = now or datetime.now(UTC)
    analytics = open_analytics(lake, engine=engine)
    try:
        # Freshness is read before the questions: the data is at least this new.
        snapshot = analytics.snapshot()
        last_commit_at = last_commit_time(snapshot)
        # Resolved: the report names the real folder, not "rp/../data/lake".
        source = f"{engine} over {analytics.layout.root.resolve()}"
        if not snapshot.files:
            return empty_content(
                period,
                top=top,
                generated_at=generated_at,
                last_commit_at=last_commit_at,
                source_name=source,
            )
        return gather(
            analytics,
            period,
            top=top,
            generated_at=generated_at,
            last_commit_at=last_commit_at,
            source_name=source,
        )
    finally:
        analytics.close()


def last_commit_time(snapshot: LakeSnapshot) -> datetime | None:
    """When the lake's last commit landed, or None for a lake without commits."""
    commit = snapshot.last_commit
    if commit is None:
        return None
    moment = datetime.fromisoformat(commit.committed_at)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def report_files(content: ReportContent, formats: Sequence[str]) -> dict[str, str]:
    """The text of every file of the report, by file name, for the chosen formats.

    Raises:
        ConfigError: a format is not one of :data:`FORMATS`.
    """
    stem = content.period.stem
    files: dict[str, str] = {}
    for fmt in formats:
        if fmt == "html":
            files[f"{stem}.html"] = render_html(content)
        elif fmt == "md":
            files[f"{stem}.md"] = render_markdown(content)
        elif fmt == "csv":
            files.update(render_csv(content, stem))
        elif fmt == "json":
            files[f"{stem}.json"] = render_json(content)
        else:
            raise ConfigError(f"unknown report format {fmt!r}; choose from {', '.join(FORMATS)}")
    return files


def write_report(content: ReportContent, out: Path, formats: Sequence[str]) -> list[Path]:
    """Render and write the report's files into ``out``, replacing earlier runs' files.

    Every file is rendered before the first is written, so a rendering error leaves
    the folder as it was; each file is replaced atomically.

    Raises:
        OSError: a file cannot be written into ``out`` (e.g. permission denied).
    """
    started = time.perf_counter()
    files = report_files(content, formats)
    written = [write_atomic(out / name, text) for name, text in files.items()]
    logger.info(
        "report %s: %d files in %s in %.3fs",
        content.period.stem,
        len(written),
        out,
        time.perf_counter() - started,
    )
    return written
