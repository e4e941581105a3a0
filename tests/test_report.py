"""``ducto-olap report``: every format equals the engines' answers, escapes user strings,
buckets days in --tz, says when there is no spend, and reruns in place."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import NamedTuple

import pytest
from click.testing import CliRunner
from markdown_it import MarkdownIt

from ducto_olap.cli.main import _register, cli
from ducto_olap.engines import open_analytics
from ducto_olap.models import (
    AggregateStatsRow,
    DailySpendRow,
    Rows,
    SpendByModelRow,
    TopUserRow,
)
from ducto_olap.reports import display, gather, resolve_period
from ducto_olap.reports.render_json import report_dict
from ducto_olap.reports.render_markdown import escape
from tests.lake_helpers import row, write_lake

_register()

SCRIPT_MODEL = "<script>alert(1)</script>"
ODD_USER = "eve|`rm -rf`|*x*_y_"
NOW = "2026-11-09T12:00:00+00:00"  # last-7d is then 2026-11-02 .. 2026-11-08 (UTC)
WEEK = (datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 9, tzinfo=UTC))
STEM = "spend-2026-11-02_2026-11-08"

LEDGER = [
    row("alice", "-120.5000", "2026-11-02T09:00", model="gpt-4o"),
    row("alice", "-0.0001", "2026-11-02T10:00", model="gpt-4o"),
    row("bob", "-1234567.8900", "2026-11-03T23:59:59", model=SCRIPT_MODEL),
    row(ODD_USER, "-42", "2026-11-05T00:00", model=None),
    row(ODD_USER, "-8.25", "2026-11-08T23:00", model="claude-3-5-haiku"),
    row("carol", "-99", "2026-11-08T12:00"),
    row("alice", "500", "2026-11-04T08:00", type="credit"),  # not spend
    row("dave", "-1000", "2026-11-09T00:00", model="gpt-4o"),  # after the window
    row("dave", "-1000", "2026-11-01T23:59:59", model="gpt-4o"),  # before it
]


def report(*args: str) -> tuple[int, list[Path], str]:
    result = CliRunner().invoke(cli, ["-q", "report", *args], catch_exceptions=False)
    paths = [Path(line) for line in result.stdout.splitlines() if line]
    return result.exit_code, paths, result.stderr


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    write_lake(tmp_path / "lake", LEDGER)
    return tmp_path / "lake"


@pytest.fixture
def week_report(lake: Path, tmp_path: Path) -> dict[str, Path]:
    code, paths, err = report(
        "--lake", str(lake), "--period", "last-7d", "--now", NOW, "--out", str(tmp_path / "out")
    )
    assert (code, err) == (0, "")
    return {path.name.removeprefix(STEM): path for path in paths}


class Cells(HTMLParser):
    """The text of every table row of an HTML page, cell by cell."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.scripts = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_rows(html: str) -> tuple[list[list[str]], int]:
    parser = Cells()
    parser.feed(html)
    return parser.rows, parser.scripts


class Answers(NamedTuple):
    stats: AggregateStatsRow
    by_model: Rows[SpendByModelRow]
    daily: Rows[DailySpendRow]
    top: Rows[TopUserRow]


def expected_answers(lake: Path, tz: str | None = None, engine: str = "duckdb") -> Answers:
    start, end = WEEK
    with open_analytics(lake, engine=engine) as analytics:
        return Answers(
            analytics.aggregate_stats(start, end, tz=tz),
            analytics.spend_by_model(start, end),
            analytics.daily_spend(start, end, tz=tz),
            analytics.top_users(10, start, end),
        )


def test_the_files_of_a_report_are_named_from_the_period(week_report: dict[str, Path]) -> None:
    assert sorted(week_report) == sorted(
        [".html", ".md", ".json", "-stats.csv", "-by-model.csv", "-daily.csv", "-top-users.csv"]
    )


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_json_equals_the_engines_answers(lake: Path, tmp_path: Path, engine: str) -> None:
    code, paths, _ = report(
        "--lake",
        str(lake),
        "--period",
        "last-7d",
        "--now",
        NOW,
        "--engine",
        engine,
        "--format",
        "json",
        "--out",
        str(tmp_path / "out"),
    )
    data = json.loads(paths[0].read_text())
    answers = expected_answers(lake, engine=engine)
    stats = answers.stats

    assert code == 0
    assert data["stats"] == {
        "total_credits_consumed": str(stats.total_credits_consumed),
        "active_users": stats.active_users,
        "avg_daily_spend": str(stats.avg_daily_spend),
        "days_with_spend": 4,
        "top_model": SCRIPT_MODEL,
        "top_user": "bob",
    }
    assert data["stats"]["total_credits_consumed"] == "1234837.6401"
    assert data["spend_by_model"] == json.loads(
        json.dumps(answers.by_model.to_dicts(), default=str)
    )
    assert data["daily_spend"] == json.loads(json.dumps(answers.daily.to_dicts(), default=str))
    assert data["top_users"] == json.loads(json.dumps(answers.top.to_dicts(), default=str))
    assert data["period"]["start"] == "2026-11-02T00:00:00+00:00"
    assert data["lake"]["last_commit_at"] is not None


def test_csv_files_equal_the_engines_answers(lake: Path, week_report: dict[str, Path]) -> None:
    answers = expected_answers(lake)

    def read(suffix: str) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(week_report[suffix].read_text())))

    stats = read("-stats.csv")
    assert len(stats) == 1
    assert Decimal(stats[0]["total_credits_consumed"]) == answers.stats.total_credits_consumed
    assert stats[0]["avg_daily_spend"] == str(answers.stats.avg_daily_spend)
    assert stats[0]["top_model"] == SCRIPT_MODEL

    assert [
        (r["model"], r["total_spend"], int(r["transaction_count"])) for r in read("-by-model.csv")
    ] == [(r.model, str(r.total_spend), r.transaction_count) for r in answers.by_model]
    assert [(r["date"], r["total_spend"]) for r in read("-daily.csv")] == [
        (r.date, str(r.total_spend)) for r in answers.daily
    ]
    assert [(r["user_id"], r["total_spend"]) for r in read("-top-users.csv")] == [
        (r.user_id, str(r.total_spend)) for r in answers.top
    ]


def test_html_tables_show_the_engines_numbers_and_escape_user_strings(
    lake: Path, week_report: dict[str, Path]
) -> None:
    html = week_report[".html"].read_text()
    rows, scripts = html_rows(html)
    answers = expected_answers(lake)

    for model in answers.by_model:
        assert [model.model, display.amount(model.total_spend), str(model.transaction_count)] in [
            r[1:] for r in rows
        ]
    for user in answers.top:
        assert [user.user_id, display.amount(user.total_spend)] in [r[1:] for r in rows]
    for day in answers.daily:
        assert [day.date, display.amount(day.total_spend), str(day.transaction_count)] in rows
    assert "1,234,567.8900" in html

    # The model name is text everywhere: in the cards, the table and the SVG chart.
    assert scripts == 0
    assert "<script" not in html.lower()
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3
    # Self-contained: nothing to fetch, only in-page references.
    for fetch in ("src=", "<link", "@import", "url(http", "url('", 'url("'):
        assert fetch not in html
    assert set(re.findall(r'href="(.)', html)) <= {"#"}


def test_markdown_tables_show_the_engines_numbers_and_escape_user_strings(
    lake: Path, week_report: dict[str, Path]
) -> None:
    text = week_report[".md"].read_text()
    rendered = MarkdownIt("commonmark").enable("table").render(text)
    rows, scripts = html_rows(rendered)
    answers = expected_answers(lake)

    # A CommonMark renderer sees every user string as plain text in its own cell.
    assert scripts == 0
    assert "<script" not in rendered and "<code>" not in rendered and "<em>" not in rendered
    for model in answers.by_model:
        assert [model.model, display.amount(model.total_spend), str(model.transaction_count)] in [
            r[1:] for r in rows
        ]
    for user in answers.top:
        assert [user.user_id, display.amount(user.total_spend)] in [r[1:] for r in rows]
    for day in answers.daily:
        assert [day.date, display.amount(day.total_spend), str(day.transaction_count)] in rows
    assert ["Top model", SCRIPT_MODEL] in rows
    assert f"| 4 | {escape(ODD_USER)} | 50.2500 |" in text


def test_markdown_escape_keeps_a_row_one_line_and_inert() -> None:
    nasty = "a|b\n<img src=x onerror=alert(1)>`c`[l](http://x)![i](y)&amp;~s~"
    rendered = (
        MarkdownIt("commonmark")
        .enable(["table", "strikethrough"])
        .render(f"| x |\n| --- |\n| {escape(nasty)} |\n")
    )
    rows, _ = html_rows(rendered)

    assert rows == [["x"], [nasty.replace("\n", " ")]]
    assert "<img" not in rendered and "<a " not in rendered and "<s>" not in rendered


def test_an_empty_window_is_a_valid_report_that_says_there_was_no_spend(
    lake: Path, tmp_path: Path
) -> None:
    code, paths, err = report(
        "--lake",
        str(lake),
        "--start",
        "2025-01-01",
        "--end",
        "2025-02-01",
        "--now",
        NOW,
        "--out",
        str(tmp_path / "out"),
    )
    files = {path.name: path.read_text() for path in paths}

    assert (code, err) == (0, "")
    assert "No spend in this window." in files["spend-2025-01-01_2025-01-31.html"]
    assert "No spend in this window." in files["spend-2025-01-01_2025-01-31.md"]
    data = json.loads(files["spend-2025-01-01_2025-01-31.json"])
    assert data["stats"]["total_credits_consumed"] == "0.0000"
    assert data["spend_by_model"] == data["daily_spend"] == data["top_users"] == []
    assert files["spend-2025-01-01_2025-01-31-daily.csv"] == "date,total_spend,transaction_count\n"


def test_a_lake_without_commits_is_an_empty_report_and_a_missing_lake_an_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "empty" / "_ducto" / "commits").mkdir(parents=True)  # an initialized lake
    code, paths, _ = report(
        "--lake",
        str(tmp_path / "empty"),
        "--now",
        NOW,
        "--format",
        "md",
        "--out",
        str(tmp_path / "out"),
    )
    assert code == 0
    assert "No spend in this window." in paths[0].read_text()
    assert "the lake has no commit yet" in paths[0].read_text()

    result = CliRunner().invoke(cli, ["report", "--lake", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no lake at ") or result.stderr.startswith(
        "error: no lake at "
    )
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "home" / "reports").exists()


def test_new_york_days_bucket_rows_across_the_dst_change(tmp_path: Path) -> None:
    # 2026-11-01 is the US DST end: that New York day runs 04:00Z to 05:00Z next day.
    write_lake(
        tmp_path / "lake",
        [
            row("ann", "-1", "2026-11-01T03:30"),  # 2026-10-31 23:30 EDT
            row("ann", "-2", "2026-11-01T04:30"),  # 2026-11-01 00:30 EDT
            row("ann", "-4", "2026-11-02T04:30"),  # 2026-11-01 23:30 EST, hour 25 of the day
            row("ann", "-8", "2026-11-02T05:30"),  # 2026-11-02 00:30 EST
        ],
    )
    lake, out = str(tmp_path / "lake"), str(tmp_path / "out")

    code, paths, _ = report(
        "--lake",
        lake,
        "--tz",
        "America/New_York",
        "--now",
        "2026-11-02T12:00:00+00:00",
        "--format",
        "json,md",
        "--out",
        out,
    )
    day = json.loads(paths[0].read_text())
    assert code == 0
    assert paths[0].name == "spend-2026-11-01.json"
    assert day["period"]["start"] == "2026-11-01T00:00:00-04:00"
    assert day["period"]["end"] == "2026-11-02T00:00:00-05:00"
    assert day["daily_spend"] == [
        {"date": "2026-11-01", "total_spend": "6.0000", "transaction_count": 2}
    ]
    assert "25 h" in paths[1].read_text()

    code, paths, _ = report(
        "--lake",
        lake,
        "--tz",
        "America/New_York",
        "--start",
        "2026-10-31",
        "--end",
        "2026-11-03",
        "--now",
        NOW,
        "--format",
        "json",
        "--out",
        out,
    )
    days = json.loads(paths[0].read_text())
    assert [(d["date"], d["total_spend"]) for d in days["daily_spend"]] == [
        ("2026-10-31", "1.0000"),
        ("2026-11-01", "6.0000"),
        ("2026-11-02", "8.0000"),
    ]
    assert days["stats"]["avg_daily_spend"] == "5.0000"

    # The same rows in UTC days fall differently: the time zone is what moved them.
    code, paths, _ = report(
        "--lake",
        lake,
        "--start",
        "2026-10-31",
        "--end",
        "2026-11-03",
        "--now",
        NOW,
        "--format",
        "json",
        "--out",
        str(tmp_path / "utc"),
    )
    assert [d["date"] for d in json.loads(paths[0].read_text())["daily_spend"]] == [
        "2026-11-01",
        "2026-11-02",
    ]


def test_a_rerun_replaces_the_files_in_place(lake: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--lake", str(lake), "--period", "last-7d", "--now", NOW, "--out", str(out)]

    _, first, _ = report(*args)
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    _, second, _ = report(*args)
    again = {path.name: path.read_bytes() for path in out.iterdir()}

    assert first == second
    assert again == before
    assert len(before) == 7

    write_lake(lake, [row("zed", "-1000000", "2026-11-06T12:00", model="gpt-4o")])
    _, third, _ = report(*args)
    after = {path.name: path.read_bytes() for path in out.iterdir()}
    assert third == first and sorted(after) == sorted(before)
    stats = json.loads(after[f"{STEM}.json"])["stats"]
    assert stats["total_credits_consumed"] == "2234837.6401"
    assert after[f"{STEM}.md"].count(b"## Spend by model") == 1
    assert re.findall(rb"\| \d+ \| zed \|", after[f"{STEM}.md"]) == [b"| 2 | zed |"]


def test_report_refuses_unknown_formats_and_lists_the_choices(lake: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--lake", str(lake), "--format", "html,pdf"])

    # The code of a bad option value is cli/common's (1, or 2 as for click's usage errors).
    assert result.exit_code in (1, 2)
    assert "unknown report format pdf; choose a comma-separated list of html, md, csv, json" in (
        result.stderr
    )


def test_export_first_exports_then_reports(store: object, tmp_path: Path) -> None:
    from ducto_olap import PostgresStore

    assert isinstance(store, PostgresStore)
    store.add_credits("alice", 100)
    hold = store.reserve_credits("alice", "12.5", "inference")
    store.deduct_credits("alice", hold.reservation_id, "12.5", metadata={"model": "gpt-4o"})

    code, paths, _ = report(
        "--export-first",
        "--dsn",
        store.dsn,
        "--lake",
        str(tmp_path / "lake"),
        "--start",
        "2000-01-01",
        "--end",
        "2999-12-31",
        "--format",
        "json",
        "--out",
        str(tmp_path / "out"),
    )

    assert code == 0
    assert json.loads(paths[0].read_text())["stats"]["total_credits_consumed"] == "12.5000"


@pytest.mark.parametrize("tz", [None, "America/New_York"])
def test_the_memory_store_and_the_lake_give_the_same_report(lake: Path, tz: str | None) -> None:
    from ducto_olap.store.memory import MemoryStore

    memory = MemoryStore()
    for ledger_row in LEDGER:
        memory.import_transaction(
            ledger_row.user_id,
            ledger_row.amount,
            ledger_row.type,
            metadata=ledger_row.metadata,
            created_at=ledger_row.created_at,
        )
    period = resolve_period("last-7d", tz=tz, now=datetime.fromisoformat(NOW))
    clock = datetime.fromisoformat(NOW)

    from_memory = report_dict(gather(memory, period, generated_at=clock))
    with open_analytics(lake) as analytics:
        from_lake = report_dict(gather(analytics, period, generated_at=clock))

    assert from_memory == from_lake
    assert from_lake["stats"]["top_model"] == SCRIPT_MODEL


def test_a_window_past_the_last_commit_says_newer_spend_is_missing(
    lake: Path, tmp_path: Path
) -> None:
    args = ["--lake", str(lake), "--format", "md,json", "--out", str(tmp_path / "out")]

    _, stale, _ = report(*args, "--now", "2099-01-02T06:00:00+00:00")
    _, fresh, _ = report(*args, "--now", NOW)

    assert "is before the end of this window" in stale[0].read_text()
    assert json.loads(stale[1].read_text())["lake"]["stale"] is True
    assert "is before the end of this window" not in fresh[0].read_text()
    assert json.loads(fresh[1].read_text())["lake"]["stale"] is False
