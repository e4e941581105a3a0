"""``ducto-olap report`` at its limits: empty and huge windows, a huge --top, a folder it
cannot write, an empty --out; and the Markdown prose and lake path as a reader sees them."""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from markdown_it import MarkdownIt

from ducto_olap.cli.main import cli
from ducto_olap.engines import open_analytics
from ducto_olap.errors import WindowError
from ducto_olap.reports import gather, resolve_period
from ducto_olap.reports.content import MAX_BARS
from ducto_olap.reports.render_markdown import escape
from tests.lake_helpers import row, write_lake
from tests.test_report import LEDGER, NOW, report

CLOCK = datetime.fromisoformat(NOW)


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    write_lake(tmp_path / "lake", LEDGER)
    return tmp_path / "lake"


def refusal(*args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of a report run that is expected to be refused."""
    result = CliRunner().invoke(cli, ["-q", "report", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_an_empty_window_is_refused_and_leaves_that_days_report_alone(
    lake: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    base = ["--lake", str(lake), "--format", "md", "--out", str(out), "--now", NOW]
    code, paths, _ = report(*base, "--start", "2026-11-02", "--end", "2026-11-03")
    assert code == 0 and [path.name for path in paths] == ["spend-2026-11-02.md"]
    before = paths[0].read_bytes()

    code, stdout, stderr = refusal(*base, "--start", "2026-11-02", "--end", "2026-11-02")

    # Option errors of report (an unknown format, --start after --end) share cli/common's code.
    assert code in (1, 2) and stdout == ""
    line = one_error_line(stderr)
    assert "empty window" in line and "give an --end after the --start" in line
    assert paths[0].read_bytes() == before
    assert sorted(path.name for path in out.iterdir()) == ["spend-2026-11-02.md"]


@pytest.mark.parametrize(
    ("start", "end", "tz"),
    [
        ("2026-11-02", "2026-11-02", None),
        ("2026-11-02T06:00", "2026-11-02T06:00", None),
        # The same instant written twice: 01:00 in New York is 06:00 UTC.
        ("2026-11-02T01:00", "2026-11-02T06:00Z", "America/New_York"),
    ],
)
def test_a_window_whose_start_is_its_end_is_refused(start: str, end: str, tz: str | None) -> None:
    with pytest.raises(WindowError, match="empty window"):
        resolve_period(start=start, end=end, tz=tz, now=CLOCK)


@pytest.mark.parametrize(
    ("start", "end", "tz", "what"),
    [
        # 0001-01-01 00:00 in Tokyo is 0000-12-31 15:00 UTC; 9999-12-31 23:00 in New York
        # is 10000-01-01 04:00 UTC: neither is a datetime.
        ("0001-01-01", "0001-01-03", "Asia/Tokyo", "--start '0001-01-01'"),
        ("0001-01-02", "9999-12-31T23:00", "America/New_York", "--end '9999-12-31T23:00'"),
        ("0001-01-02", "9999-12-31T23:59:59.999999+00:00", "Asia/Tokyo", "--end"),
    ],
)
def test_ends_beyond_the_datetime_range_in_utc_are_one_line_errors(
    start: str, end: str, tz: str, what: str
) -> None:
    with pytest.raises(WindowError, match=f"^{what}.* outside the years 1 to 9999 in UTC"):
        resolve_period(start=start, end=end, tz=tz, now=CLOCK)


def test_part_day_stems_of_early_years_have_four_digit_years() -> None:
    period = resolve_period(start="0001-01-01T12:00", end="0001-01-02", now=CLOCK)

    assert period.stem == "spend-0001-01-01T1200_0001-01-02T0000"


def test_a_window_of_millennia_reports_every_number_and_says_why_there_is_no_chart(
    lake: Path, tmp_path: Path
) -> None:
    args = ["--lake", str(lake), "--now", NOW, "--out", str(tmp_path / "out")]
    window = ["--start", "0001-01-01", "--end", "9999-12-31", "--tz", "America/New_York"]

    code, paths, err = report(*args, *window, "--format", "html,md,json")

    assert (code, err) == (0, "")
    files = {path.suffix: path.read_text() for path in paths}
    stats = json.loads(files[".json"])["stats"]
    assert stats["total_credits_consumed"] == "1236837.6401"  # every spend row of LEDGER
    assert "3,652,058 days" in files[".md"]
    assert "more than 1,000 years long, too long to chart, so there is no chart" in files[".html"]
    # The model chart only: no per-day chart of 3.6 million bars.
    assert files[".html"].count("<svg") == 1


def chart(lake: Path, start: str, end: str) -> tuple[str | None, list[tuple[date, Decimal]]]:
    period = resolve_period(start=start, end=end, now=CLOCK)
    with open_analytics(lake) as analytics:
        content = gather(analytics, period, generated_at=CLOCK)
    return content.chart_unit, content.spend_over_time()


def test_long_windows_are_charted_by_month_then_by_year_with_exact_zero_filled_sums(
    lake: Path,
) -> None:
    unit, days = chart(lake, "2026-11-01", "2026-11-11")
    assert unit == "day" and len(days) == 10
    assert days[1] == (date(2026, 11, 2), Decimal("120.5001"))
    assert days[0] == (date(2026, 11, 1), Decimal("1000.0000"))
    assert days[9] == (date(2026, 11, 10), Decimal(0))

    # 2,192 days: too many bars, so one bar per month, November the sum of its days.
    unit, months = chart(lake, "2021-01-01", "2027-01-01")
    assert unit == "month" and len(months) == 72 <= MAX_BARS
    assert months[-2] == (date(2026, 11, 1), Decimal("1236837.6401"))
    assert sum(amount for _, amount in months) == months[-2][1]
    assert {amount for _, amount in months[:-2]} == {Decimal(0)}

    unit, years = chart(lake, "1900-01-01", "2027-01-01")
    assert unit == "year" and [day.year for day, _ in years] == list(range(1900, 2027))
    assert years[126] == (date(2026, 1, 1), months[-2][1])

    unit, bars = chart(lake, "0001-01-01", "9999-12-31")
    assert (unit, bars) == (None, [])


def test_the_html_of_a_decade_charts_months_and_says_so(lake: Path, tmp_path: Path) -> None:
    args = ["--lake", str(lake), "--now", NOW, "--out", str(tmp_path / "out"), "--format", "html"]

    code, paths, _ = report(*args, "--start", "2017-01-01", "--end", "2027-01-01")

    html = paths[0].read_text()
    assert code == 0 and html.count("<svg") == 2
    assert "too long for a bar per day, so the chart shows every month" in html


def test_top_is_bounded_with_a_clear_message(lake: Path, tmp_path: Path) -> None:
    code, _, stderr = refusal(
        "--lake", str(lake), "--out", str(tmp_path), "--top", "99999999999999999999"
    )

    assert code == 2
    assert "Invalid value for '--top'" in stderr and "1<=x<=10000" in stderr
    assert "duckdb" not in stderr.lower() and not list(tmp_path.glob("spend-*"))
    period = resolve_period("last-7d", now=CLOCK)
    with open_analytics(lake) as analytics, pytest.raises(WindowError, match="from 1 to 10,000"):
        gather(analytics, period, top=10**20, generated_at=CLOCK)


def test_a_folder_that_cannot_be_written_is_one_line_naming_it(lake: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / "reports"

    code, stdout, stderr = refusal("--lake", str(lake), "--now", NOW, "--out", str(out))

    assert (code, stdout) == (1, "")
    assert one_error_line(stderr) == (
        f"error: cannot write reports into {out}: not a directory; choose another --out"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_permission_denied(lake: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir(mode=0o555)

    code, _, stderr = refusal("--lake", str(lake), "--now", NOW, "--out", str(out))

    assert code == 1
    assert one_error_line(stderr) == (
        f"error: cannot write reports into {out}: permission denied; choose another --out"
    )


def test_an_empty_out_is_refused_instead_of_writing_into_the_current_folder(
    lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    code, stdout, stderr = refusal("--lake", str(lake), "--now", NOW, "--out", "")

    assert code in (1, 2) and stdout == ""
    assert "--out is empty" in one_error_line(stderr)
    assert not list(tmp_path.glob("spend-*"))


def test_markdown_prose_is_not_escaped_and_the_lake_path_is_resolved(
    lake: Path, tmp_path: Path
) -> None:
    roundabout = tmp_path / "elsewhere" / ".." / "lake"
    (tmp_path / "elsewhere").mkdir()
    args = ["--lake", str(roundabout), "--format", "md,json", "--out", str(tmp_path / "out")]

    code, paths, _ = report(*args, "--now", "2099-01-02T06:00:00+00:00")

    assert code == 0
    text, data = paths[0].read_text(), json.loads(paths[1].read_text())
    note = next(line for line in text.splitlines() if line.startswith("> **Note:**"))
    assert "\\(" not in note and "\\`" not in note
    assert "<code>ducto-olap export</code>" in MarkdownIt("commonmark").render(note)
    assert f"by duckdb over {escape(str(lake.resolve()))}" in text
    assert data["source"] == f"duckdb over {lake.resolve()}" and ".." not in text


def test_a_user_string_in_the_prose_is_still_escaped(tmp_path: Path) -> None:
    lake = tmp_path / "lake_[x](y)"
    write_lake(lake, [row("ann", "-1", "2026-11-02T12:00")])
    out = str(tmp_path / "out")

    code, paths, _ = report("--lake", str(lake), "--format", "md", "--out", out, "--now", NOW)

    assert code == 0
    assert "lake\\_\\[x\\]\\(y\\)" in paths[0].read_text()
