"""``ducto-olap query`` and ``ducto-olap demo`` driven as a user would, through click."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from ducto_olap import CreditMetadata, PostgresStore
from ducto_olap.cli.main import _register, cli
from ducto_olap.engines import DuckDBAnalytics
from ducto_olap.export import Exporter

QUESTIONS = ["spend-by-user", "spend-by-model", "top-users", "daily-spend", "aggregate-stats"]
START, END = "2026-11-01", "2026-11-08"

_register()


@pytest.fixture
def lake(store: PostgresStore, tmp_path: Path) -> Path:
    """A lake exported from a small ledger with ties, a null model and a quote in a user id."""
    day = datetime(2026, 11, 2, 9, tzinfo=UTC)
    for user, amount, model in [
        ("o'neil", "10.5", "gpt-4o"),
        ("bob", "10.5", None),
        ("carol", "0.0001", "claude-haiku-3.5"),
        ("bob", "7", "gpt-4o"),
    ]:
        store.add_credits(user, 100)
        hold = store.reserve_credits(user, amount, "inference")
        metadata = CreditMetadata(model=model) if model else {}
        store.deduct_credits(user, hold.reservation_id, amount, metadata=metadata, created_at=day)
        day += timedelta(days=1)
    path = tmp_path / "lake"
    Exporter(store.dsn, path, progress=False).run()
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("question", QUESTIONS)
def test_json_equals_the_engine(lake: Path, question: str) -> None:
    code, out, _ = run(
        "query", question, "--lake", str(lake), "--start", START, "--end", END, "--format", "json"
    )

    assert code == 0
    engine = DuckDBAnalytics(lake)
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC)
    expected = {
        "spend-by-user": lambda: engine.spend_by_user(start, end).to_dicts(),
        "spend-by-model": lambda: engine.spend_by_model(start, end).to_dicts(),
        "top-users": lambda: engine.top_users(10, start, end).to_dicts(),
        "daily-spend": lambda: engine.daily_spend(start, end).to_dicts(),
        "aggregate-stats": lambda: engine.aggregate_stats(start, end),
    }[question]()
    if question == "aggregate-stats":
        expected = {key: getattr(expected, key) for key in json.loads(out)}
    as_text = json.loads(json.dumps(expected, default=str))
    assert json.loads(out) == as_text


def test_amounts_are_exact_strings_in_json_and_csv(lake: Path) -> None:
    _, out, _ = run(
        "query",
        "spend-by-user",
        "--lake",
        str(lake),
        "--start",
        START,
        "--end",
        END,
        "--format",
        "json",
    )
    rows = json.loads(out)
    assert rows[0] == {"user_id": "bob", "total_spend": "17.5000", "transaction_count": 2}
    assert rows[-1]["total_spend"] == "0.0001"

    _, out, _ = run(
        "query",
        "spend-by-model",
        "--lake",
        str(lake),
        "--start",
        START,
        "--end",
        END,
        "--format",
        "csv",
    )
    table = list(csv.DictReader(io.StringIO(out)))
    assert [row["model"] for row in table] == ["gpt-4o", "unknown", "claude-haiku-3.5"]
    assert sum(Decimal(row["total_spend"]) for row in table) == Decimal("28.0001")


@pytest.mark.parametrize("question", QUESTIONS)
@pytest.mark.parametrize("engine", ["duckdb", "polars", "postgres"])
def test_every_engine_in_table_format(
    lake: Path, store: PostgresStore, question: str, engine: str
) -> None:
    code, out, _ = run(
        "query",
        question,
        "--engine",
        engine,
        "--lake",
        str(lake),
        "--dsn",
        store.dsn,
        "--start",
        START,
        "--end",
        END,
    )
    assert code == 0, out
    assert question in out and ("17.5000" in out or "28.0001" in out or "7.0000" in out)


def test_top_users_limit_and_tz(lake: Path) -> None:
    _, out, _ = run(
        "query",
        "top-users",
        "--limit",
        "1",
        "--lake",
        str(lake),
        "--start",
        START,
        "--end",
        END,
        "--format",
        "json",
    )
    assert json.loads(out) == [{"user_id": "bob", "total_spend": "17.5000"}]

    _, out, _ = run(
        "query",
        "daily-spend",
        "--tz",
        "Pacific/Kiritimati",
        "--lake",
        str(lake),
        "--start",
        START,
        "--end",
        END,
        "--format",
        "csv",
    )
    assert "2026-11-02,10.5000,1" in out  # 09:00 UTC is 23:00 on the same day at UTC+14


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["query", "spend-by-usr"], 2, "is not one of 'spend-by-user'"),
        (["query", "daily-spend", "--start", "yesterday"], 2, "error: --start 'yesterday' is not"),
        (["query", "daily-spend", "--start", "2026-12-05", "--end", "2026-12-01"], 2, "swap them"),
        (["query", "top-users", "--limit", "-1"], 2, "-1 is not in the range 0<=x<=2147483647"),
        (["query", "daily-spend", "--tz", "Nowhere/Land"], 2, "unknown time zone"),
        (["query", "spend-by-user", "--engine", "spark"], 2, "'spark' is not one of"),
        (["query", "spend-by-user", "--format", "xml"], 2, "'xml' is not one of"),
    ],
)
def test_bad_input_exits_with_one_line(
    lake: Path, args: list[str], code: int, message: str
) -> None:
    exit_code, _, err = run(*args, "--lake", str(lake))
    assert exit_code == code
    assert message in err


def test_missing_lake(tmp_path: Path) -> None:
    code, _, err = run("query", "spend-by-user", "--lake", str(tmp_path / "none"))
    assert code == 1
    assert err.strip().splitlines() == [
        f"error: no lake at {tmp_path / 'none'}; run `ducto-olap export` first or pass --lake PATH"
    ]


def test_every_command_has_help_with_an_example() -> None:
    for name, command in cli.commands.items():
        code, out, _ = run(name, "--help")
        assert code == 0, name
        assert "ducto-olap " + name in out, f"{name} --help shows no example"
        assert command.help, name


def test_demo_runs_twice_and_reports_agreement(server_dsn: str, tmp_path: Path) -> None:
    lake = tmp_path / "demo-lake"
    for _ in range(2):
        code, out, err = run("demo", "--dsn", server_dsn, "--lake", str(lake), "--format", "json")
        assert code == 0, err
        assert "Polars and Postgres gave identical answers" in err

    answers = json.loads(out)
    daily = answers["daily-spend"]
    assert len(daily) == 7
    assert all(row["transaction_count"] == 3 for row in daily)
    stats = answers["aggregate-stats"]
    assert stats["active_users"] == 3
    assert Decimal(stats["total_credits_consumed"]) == sum(Decimal(r["total_spend"]) for r in daily)


@pytest.mark.slow
def test_demo_on_the_embedded_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run("demo", "--users", "2", "--days", "3")
    assert code == 0, err
    assert "identical answers" in err and "daily-spend" in out
    assert (tmp_path / "home" / "demo-lake" / "_ducto").is_dir()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["query", "spend-by-user", "--start", ""], "--start '' is not an ISO date"),
        (["query", "top-users", "--limit", "99999999999999"], "0<=x<=2147483647"),
        (["query", "daily-spend", "--end", "9999-12-31T23:59:59-05:00"], "outside the years"),
        (["query", "daily-spend", "--tz", "UTC'; DROP TABLE x; --"], "unknown time zone"),
        (["compact", "--date", "20261102"], "write it as YYYY-MM-DD"),
        (["compact", "--date", "2026-W45-1"], "write it as YYYY-MM-DD"),
    ],
)
def test_more_bad_input_is_a_usage_error(lake: Path, args: list[str], message: str) -> None:
    code, _, err = run(*args, "--lake", str(lake))
    assert code == 2
    assert message in err


@pytest.mark.parametrize(
    "args",
    [
        ["export", "--dsn", ""],
        ["export", "--lake", " "],
        ["compact", "--lake", ""],
        ["query", "spend-by-user", "--lake", ""],
        ["sql", "SELECT 1", "--lake", ""],
        ["demo", "--lake", ""],
        ["seed", "--dsn", "", "--rows", "1"],
    ],
)
def test_an_empty_dsn_or_lake_is_refused_not_defaulted(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(*args)
    assert code == 2
    assert "is empty; pass a value, or leave the option out" in err
    assert not (tmp_path / "data").exists()


def test_dates_without_offset_are_read_in_tz(lake: Path) -> None:
    # 09:00 UTC on 2026-11-02 is 04:00 in New York; a New York window of that day holds it.
    _, out, _ = run(
        "query",
        "daily-spend",
        "--tz",
        "America/New_York",
        "--lake",
        str(lake),
        "--start",
        "2026-11-02",
        "--end",
        "2026-11-03",
        "--format",
        "csv",
    )
    assert out.splitlines() == ["date,total_spend,transaction_count", "2026-11-02,10.5000,1"]


def test_a_password_in_a_malformed_dsn_is_masked() -> None:
    code, _, err = run(
        "query", "spend-by-user", "--engine", "postgres", "--dsn", "postgresql://x:secret@[::1"
    )
    assert code == 1
    assert "secret" not in err and "***" in err


def test_demo_refuses_a_folder_that_is_not_its_lake(server_dsn: str, tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")

    code, _, err = run("demo", "--dsn", server_dsn, "--lake", str(precious))

    assert code == 2
    assert "is not empty and not a demo lake" in err
    assert (precious / "notes.txt").read_text() == "keep me"


def test_demo_under_a_file_is_a_usage_error(server_dsn: str, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")

    code, _, err = run("demo", "--dsn", server_dsn, "--lake", str(tmp_path / "afile" / "sub"))

    assert code == 2
    assert err.startswith("error: cannot make the demo lake ") and "Errno" not in err
    assert "give --lake a folder you can write" in err


def test_piped_tables_never_fold_amounts(lake: Path) -> None:
    _, out, _ = run("query", "spend-by-user", "--lake", str(lake), "--start", START, "--end", END)
    assert any("17.5000" in line and "bob" in line for line in out.splitlines())


def test_debug_tracebacks_mask_passwords_too() -> None:
    code, _, err = run(
        "--debug",
        "query",
        "spend-by-user",
        "--engine",
        "postgres",
        "--dsn",
        "postgresql://u:secret@[::1:1/x",
    )
    assert code == 1
    assert "Traceback" in err and "secret" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["seed", "--rows", "10", "--end", "0001-01-01"], "reaches before the year 1"),
        (["seed", "--rows", "10", "--models", ",,"], "names no model"),
        (["seed", "--rows", "10", "--days", "100000000"], "1<=x<=36500"),
    ],
)
def test_bad_seed_values_are_usage_errors(args: list[str], message: str) -> None:
    code, _, err = run(*args)
    assert code == 2
    assert message in err
