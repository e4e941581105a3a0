"""``ducto-olap sql`` and ``ducto-olap shell`` through the real command line."""

from __future__ import annotations

import csv
import io
import json
import os
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ducto_olap.cli import sql_cmd  # noqa: F401  (registers the commands)
from ducto_olap.cli.main import cli
from ducto_olap.errors import QueryError
from ducto_olap.lake import LakeLayout
from ducto_olap.shell import check_read_only, find_duckdb_cli, manual_command
from ducto_olap.shell.launch import ENV_DUCKDB_CLI
from ducto_olap.shell.script import sql_string
from ducto_olap.shell.sql import duckdb_message
from tests.lake_helpers import row, write_file, write_lake

START = datetime(2026, 11, 1, tzinfo=UTC)
WINDOW = "'2026-11-01', '2026-11-03'"


@pytest.fixture
def lake(tmp_path: Path) -> LakeLayout:
    return write_lake(
        tmp_path / "o'brien lake",
        [
            row("alice", "-1.5", "2026-11-01T10:00", model="gpt-4o"),
            row("bob", "-2.0001", "2026-11-02T23:59:59.999999", model=None),
            row("bob", "-100", "2026-11-03T00:00", model="gpt-4o"),
            row("carol", "50", "2026-11-01T11:00", type="purchase"),
        ],
    )


def invoke(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


def sql(lake: LakeLayout, statement: str, *options: str) -> Result:
    return invoke("sql", statement, "--lake", str(lake.root), *options)


def error_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1, result.output
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_json_keeps_decimals_exact_as_strings(lake: LakeLayout) -> None:
    result = sql(lake, f"SELECT * FROM daily_spend({WINDOW})", "--format", "json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"date": "2026-11-01", "total_spend": "1.5000", "transaction_count": 1},
        {"date": "2026-11-02", "total_spend": "2.0001", "transaction_count": 1},
    ]


def test_csv_and_table_formats(lake: LakeLayout) -> None:
    as_csv = sql(lake, f"SELECT * FROM spend_by_model({WINDOW})", "--format", "csv")
    table = sql(lake, f"SELECT * FROM aggregate_stats({WINDOW})")

    assert list(csv.reader(io.StringIO(as_csv.stdout))) == [
        ["model", "total_spend", "transaction_count"],
        ["unknown", "2.0001", "1"],
        ["gpt-4o", "1.5000", "1"],
    ]
    assert table.exit_code == 0, table.stderr
    for value in ("total_credits_consumed", "3.5001", "1.7501", "unknown", "bob"):
        assert value in table.stdout


def test_nested_values_and_empty_results_in_json(lake: LakeLayout) -> None:
    nested = sql(
        lake,
        "SELECT [amount] AS amounts, {'at': created_at} AS info FROM spend ORDER BY id LIMIT 1",
        "--format",
        "json",
    )
    empty = sql(lake, "SELECT * FROM spend WHERE false", "--format", "json")

    assert json.loads(nested.stdout) == [
        {"amounts": ["-1.5000"], "info": {"at": "2026-11-01T10:00:00+00:00"}}
    ]
    assert json.loads(empty.stdout) == []


def test_statement_from_stdin(lake: LakeLayout) -> None:
    result = invoke(
        "sql",
        "-",
        "--lake",
        str(lake.root),
        "--format",
        "csv",
        stdin="SELECT count(*) AS n\nFROM spend",
    )

    assert result.stdout == "n\n3\n"


def test_a_leftover_of_a_crashed_export_is_counted_once(lake: LakeLayout) -> None:
    write_file(lake, START.date(), [row("alice", "-1.5", START)], "999999-0")

    result = sql(
        lake, "SELECT count(*) AS n, count(DISTINCT id) AS ids FROM transactions", "--format", "csv"
    )

    assert result.stdout == "n,ids\n4,4\n"


def test_an_old_lake_gets_its_shell_script(lake: LakeLayout) -> None:
    lake.shell_script.unlink(missing_ok=True)

    assert sql(lake, "SELECT 1").exit_code == 0
    assert "CREATE OR REPLACE MACRO spend_by_user" in lake.shell_script.read_text()


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("COPY (SELECT * FROM spend) TO '{out}'", id="copy-to"),
        pytest.param("CREATE TABLE t AS SELECT * FROM spend", id="create-table"),
        pytest.param("ATTACH '{out}' AS other", id="attach"),
        pytest.param("INSERT INTO transactions SELECT * FROM transactions", id="insert"),
        pytest.param("EXPORT DATABASE '{out}'", id="export"),
        pytest.param("INSTALL httpfs", id="install"),
        pytest.param("LOAD httpfs", id="load"),
        pytest.param("SET enable_external_access = true", id="set"),
        pytest.param("CALL checkpoint()", id="call"),
        pytest.param("PRAGMA import_database('{out}')", id="pragma-import"),
        pytest.param("EXPLAIN ANALYZE COPY (SELECT 1) TO '{out}'", id="explain-analyze-copy"),
        pytest.param("SELECT 1; COPY (SELECT 1) TO '{out}'", id="two-statements"),
        pytest.param("DROP VIEW spend", id="drop"),
        pytest.param("PIVOT spend ON user_id USING sum(spend)", id="pivot-creates-a-type"),
    ],
)
def test_statements_that_write_are_refused(
    lake: LakeLayout, tmp_path: Path, statement: str
) -> None:
    out = tmp_path / "out.csv"

    result = sql(lake, statement.format(out=out))

    line = error_line(result)
    assert line.startswith("error: ducto-olap sql runs read-only queries; ")
    assert "refused" in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        ("ATTACH 'x.db' AS other", "ATTACH statements are refused"),
        ("insert into transactions select * from transactions", "INSERT statements are refused"),
        ("EXPORT DATABASE 'out'", "EXPORT statements are refused"),
        ("USE system", "USE statements are refused"),
        ("CHECKPOINT", "CHECKPOINT statements are refused"),
        ("-- why\n/* not */ DETACH other", "DETACH statements are refused"),
        ("SELECT 1; SELECT 2", "2 statements in one call are refused"),
        ("PRAGMA import_database('out')", "PRAGMA import_database is refused"),
    ],
)
def test_a_refusal_names_the_statement_as_typed(statement: str, named: str) -> None:
    with pytest.raises(QueryError) as refused:
        check_read_only(statement)

    assert str(refused.value) == (
        f"ducto-olap sql runs read-only queries; {named}. Use SELECT, WITH, FROM, VALUES, "
        "DESCRIBE, SUMMARIZE, SHOW, EXPLAIN or a reading PRAGMA, one statement per call"
    )


def test_help_lists_the_statements_the_readme_allows() -> None:
    help_text = " ".join(invoke("sql", "--help").stdout.split())
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    allowed = ["SELECT", "WITH", "FROM", "VALUES", "DESCRIBE", "SUMMARIZE", "SHOW", "EXPLAIN"]

    assert (
        "(SELECT, WITH, FROM, VALUES, DESCRIBE, SUMMARIZE, SHOW, EXPLAIN or a reading PRAGMA)"
        in (help_text)
    )
    sentence = readme[readme.index("only one reading statement") :].split(")")[0]
    assert [word for word in allowed if f"`{word}`" in sentence] == allowed
    assert "reading `PRAGMA`s" in sentence


def test_csv_writes_nested_values_as_json_text_not_python(lake: LakeLayout) -> None:
    statement = (
        "SELECT {'a': CAST(1.50 AS DECIMAL(5, 2))} AS s, [amount] AS l, "
        "CAST('\\xAA' AS BLOB) AS b, INTERVAL 3 DAY AS d, INTERVAL '-90 minutes' AS m, "
        "INTERVAL '1.5 seconds' AS f, true AS t, NULL AS n FROM spend ORDER BY id LIMIT 1"
    )

    as_csv = sql(lake, statement, "--format", "csv")
    table = sql(lake, statement)

    assert as_csv.exit_code == 0, as_csv.stderr
    assert list(csv.reader(io.StringIO(as_csv.stdout))) == [
        ["s", "l", "b", "d", "m", "f", "t", "n"],
        ['{"a": "1.50"}', '["-1.5000"]', "aa", "P3D", "-PT1H30M", "PT1.5S", "true", ""],
    ]
    assert '{"a": "1.50"}' in table.stdout and "Decimal" not in table.stdout


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("SELECT * FROM read_csv({other})", id="read-csv"),
        pytest.param("SELECT * FROM read_parquet({leftover})", id="uncommitted-file"),
        pytest.param("SELECT * FROM glob({folder})", id="glob"),
        pytest.param("SELECT * FROM sniff_csv({other})", id="sniff-csv"),
        pytest.param("SELECT * FROM read_blob({other})", id="read-blob"),
    ],
)
def test_a_select_reads_no_file_but_the_committed_ones(
    lake: LakeLayout, tmp_path: Path, statement: str
) -> None:
    other = tmp_path / "secret.csv"
    other.write_text("a\n1\n")
    leftover = write_file(lake, START.date(), [row("x", "-1", START)], "999999-0")

    paths = {"other": other, "leftover": leftover, "folder": f"{lake.root}/**"}
    result = sql(lake, statement.format(**{key: sql_string(str(p)) for key, p in paths.items()}))

    assert "Permission Error" in error_line(result)


@pytest.mark.parametrize(
    "statement",
    [
        "DESCRIBE transactions",
        "SUMMARIZE SELECT amount FROM spend",
        "SHOW TABLES",
        "EXPLAIN SELECT * FROM spend",
        "PRAGMA table_info('spend')",
        "WITH s AS (SELECT * FROM spend) SELECT count(*) FROM s",
        "FROM spend LIMIT 1",
    ],
)
def test_reading_statements_run(lake: LakeLayout, statement: str) -> None:
    result = sql(lake, statement, "--format", "json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)


def test_a_syntax_error_gives_duckdbs_message_and_where(lake: LakeLayout) -> None:
    line = error_line(sql(lake, "SELECT *\nFROM spend\nWHERE amount = = 1"))

    assert line.startswith("error: Parser Error: syntax error at or near")
    assert "(line 3, column 16: WHERE amount = = 1)" in line


def test_a_binder_error_is_one_line(lake: LakeLayout) -> None:
    line = error_line(sql(lake, "SELECT no_such_column FROM spend"))

    assert line.startswith("error: Binder Error: Referenced column")
    assert "no_such_column" in line


def test_missing_lake_is_one_line(tmp_path: Path) -> None:
    line = error_line(invoke("sql", "SELECT 1", "--lake", str(tmp_path / "nowhere")))

    assert line.startswith("error: no lake at ")


def test_an_empty_statement_is_refused_with_a_hint() -> None:
    with pytest.raises(QueryError, match="no SQL statement given"):
        check_read_only("  ;  ")


def test_duckdb_message_keeps_a_truncated_excerpt_without_a_column() -> None:
    import duckdb

    with pytest.raises(duckdb.ParserException) as caught:
        duckdb.extract_statements("SELECT " + "a, " * 60 + "FROM FROM x")

    message = duckdb_message(caught.value)
    assert "\n" not in message
    assert message.startswith("Parser Error: syntax error at or near")
    assert "line 1" in message


def test_shell_without_a_cli_prints_how_to_get_one(
    lake: LakeLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_DUCKDB_CLI, str(lake.root / "no-such-duckdb"))

    line = error_line(invoke("shell", "--lake", str(lake.root)))

    assert "pip install 'ducto-olap[shell]'" in line
    assert line.endswith(f"then run: {manual_command(lake.shell_script)}")
    assert shlex.split(manual_command(lake.shell_script)) == [
        "duckdb",
        "-init",
        str(lake.shell_script),
    ]
    assert lake.shell_script.is_file()


def test_every_command_here_has_help_with_an_example() -> None:
    for command in ("sql", "shell"):
        result = invoke(command, "--help")
        assert result.exit_code == 0
        assert "Example" in result.stdout


def test_shell_starts_the_real_cli_on_the_lake(lake: LakeLayout) -> None:
    if find_duckdb_cli() is None:
        pytest.skip("no DuckDB CLI installed (pip install 'ducto-olap[shell]')")
    program = Path(sys.executable).parent / "ducto-olap"
    if not program.exists():
        pytest.skip("the ducto-olap console script is not installed")

    done = subprocess.run(
        [str(program), "shell", "--lake", str(lake.root)],
        input=f"SELECT user_id, total_spend FROM top_users(1, {WINDOW});\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PATH": "/usr/bin:/bin"},
    )

    assert done.returncode == 0, done.stderr
    assert "bob" in done.stdout
    assert "2.0001" in done.stdout
