"""The ad-hoc queries shown in the README run over a lake."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from ducto_olap.shell import run_sql
from tests.lake_helpers import row, write_lake

README = Path(__file__).parent.parent / "README.md"


def readme_queries() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Ad-hoc SQL in DuckDB", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)
    return [statement.query for block in blocks for statement in duckdb.extract_statements(block)]


def test_the_readme_shows_the_four_example_queries() -> None:
    assert len(readme_queries()) == 4


@pytest.mark.parametrize("index", range(4))
def test_each_readme_query_runs(tmp_path: Path, index: int) -> None:
    lake = write_lake(
        tmp_path / "lake",
        [
            row("23b8c1e9-3924-46de-beb1-3b9046685257", "-1.5", "2026-11-02T10:00", model="gpt"),
            row("23b8c1e9-3924-46de-beb1-3b9046685257", "-2", "2026-11-10T11:00"),
            row("bob", "20", "2026-11-10T12:00", type="purchase"),
        ],
    )
    statement = readme_queries()[index]

    result = run_sql(lake, statement)

    assert result.rows
