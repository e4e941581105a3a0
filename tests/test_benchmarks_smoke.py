"""A smoke run of the whole benchmark suite at 10,000 rows: files written, answers matched."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from benchmarks import render
from benchmarks.__main__ import main
from ducto_olap.questions import QUESTIONS

ENGINES = ["postgres", "duckdb", "polars"]


def test_the_suite_times_every_question_on_every_engine(server_dsn: str, tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = CliRunner().invoke(
        main,
        ["run", "--rows", "10000", "--repeat", "1", "--users", "300", "--dsn", server_dsn,
         "--out", str(out), "--work-dir", str(tmp_path / "work")],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    payload = json.loads((out / "warm.json").read_text(encoding="utf-8"))
    assert payload["ok"] is True and payload["mode"] == "warm"
    assert payload["config"]["engines"] == ENGINES
    assert payload["machine"]["logical_cores"] >= 1
    assert payload["machine"]["postgres"].startswith("PostgreSQL")

    (size,) = payload["sizes"]
    assert size["rows"] == 10_000 and size["seed"]["rows"] == 10_000
    assert set(size["questions"]) == set(QUESTIONS)
    for question in QUESTIONS:
        cells = size["questions"][question]
        # Postgres is timed twice: the baseline, then with the tuned index.
        assert set(cells) == {*ENGINES, "postgres_tuned"}
        assert cells["duckdb"]["ratio_to_tuned_postgres"] > 0
        for cell in cells.values():
            assert cell["matches_postgres"] is True
            assert len(cell["runs"]) == 1 and cell["min"] <= cell["median"] <= cell["max"]
        assert len({cell["answer_digest"] for cell in cells.values()}) == 1
        assert cells["postgres"]["answer_rows"] > 0
    assert size["export"]["export_rows_per_second"] > 0
    assert size["export"]["bare_copy_rows_per_second"] > 0
    two_streams = size["export"]["bare_copy_two_streams"]
    assert two_streams["rows"] == size["export"]["ledger_rows"] and two_streams["bytes"] > 0
    assert size["export"]["incremental_seconds"] > 0
    assert any("bench_created_at" in index for index in size["postgres"]["indexes"])
    assert not any("bench_spend_created_at" in index for index in size["postgres"]["indexes"])
    assert any("bench_spend_created_at" in index for index in size["postgres"]["tuned"]["indexes"])
    assert "max_parallel_workers_per_gather" in size["postgres"]["settings"]

    table = (out / "warm.md").read_text(encoding="utf-8")
    assert "| `daily_spend` |" in table and "identical" in table
    assert "Postgres + covering index" in table and "DuckDB vs covering index" in table
    assert (out / "warm.png").stat().st_size > 10_000


def test_render_rebuilds_the_table_and_chart_from_the_json(tmp_path: Path) -> None:
    payload = {
        "mode": "warm",
        "created_at": "2025-06-01T00:00:00+00:00",
        "ok": False,
        "machine": {"cpu": "test cpu", "logical_cores": 2, "memory_gb": 1.0, "os": "Linux",
                    "postgres": "PostgreSQL 18.0, test",
                    "versions": {"python": "3", "duckdb": "1", "polars": "1", "pyarrow": "1"}},
        "config": {"engines": ENGINES, "repeat": 1, "users": 1, "days": 1, "seed": 0,
                   "window": {"start": "a", "end": "b"}},
        "sizes": [{
            "rows": 5,
            "postgres": {"settings": {}},
            "export": {"rows": 5, "rows_per_second": 900.0, "copy_rows_per_second": 1000.0},
            "questions": {question: {
                "postgres": {"median": 0.3, "min": 0.3, "max": 0.3, "matches_postgres": True},
                "duckdb": {"median": 0.01, "min": 0.01, "max": 0.02, "matches_postgres": True,
                           "ratio_to_postgres": 0.01 / 0.3},
                "polars": {"median": 0.1, "min": 0.1, "max": 0.1, "matches_postgres": False,
                           "ratio_to_postgres": 0.1 / 0.3},
            } for question in QUESTIONS},
        }],
    }  # fmt: skip
    saved = tmp_path / "warm.json"
    saved.write_text(json.dumps(payload), encoding="utf-8")

    table, chart = render.render_file(saved)

    text = table.read_text(encoding="utf-8")
    assert "30.0× faster (1/30: met)" in text
    assert "3.0× faster (1/15: **missed**)" in text
    assert "**MISMATCH**" in text and "NOT all identical" in text
    assert "0.90 (met)" in text
    assert chart.stat().st_size > 10_000
