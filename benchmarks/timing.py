"""Timing the five questions on one source, and answers in a form that compares exactly.

A source is the Postgres store or a lake engine; every one is asked through
the same public methods a user calls, so a timing includes building the result
rows. Answers are kept as plain JSON (amounts as their exact decimal text), so
an answer from a subprocess compares with one from this process, and a
difference in a single digit or in the scale of an amount is a mismatch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from ducto_olap.cli.output import plain
from ducto_olap.questions import QUESTIONS, SpendQuestions

ENGINES = ("postgres", "duckdb", "polars")
#: Postgres timed again after the suite adds its tuned index (see baseline.py).
TUNED = "postgres_tuned"
TOP_USERS_LIMIT = 10


def open_source(engine: str, dsn: str, lake: Path) -> SpendQuestions:
    """The store or lake engine named ``engine`` (one of :data:`ENGINES`)."""
    if engine == "postgres":
        from ducto_olap.store.postgres import PostgresStore

        return PostgresStore(dsn, max_connections=1)

    from ducto_olap.engines import open_analytics

    return open_analytics(lake, engine=engine)


def preload() -> None:
    """Import every engine's libraries, so a cold timing does not include imports."""
    import duckdb  # noqa: F401
    import polars  # noqa: F401
    import pyarrow
    import pyarrow.parquet  # noqa: F401

    import ducto_olap.engines
    import ducto_olap.store.postgres  # noqa: F401


def close_source(source: SpendQuestions) -> None:
    close = getattr(source, "close", None)
    if close is not None:
        close()


def asker(
    source: SpendQuestions, question: str, start: datetime, end: datetime
) -> Callable[[], Any]:
    """A no-argument call that asks ``source`` one question over ``[start, end)``."""
    if question == "top_users":
        return lambda: source.top_users(TOP_USERS_LIMIT, start, end)
    method = getattr(source, question)
    return lambda: method(start, end)


def answer_json(answer: Any) -> list[dict[str, Any]]:
    """The answer as plain records: amounts and dates as exact text."""
    rows: list[Any] = [answer] if dataclasses.is_dataclass(answer) else list(answer)
    return [{key: plain(value) for key, value in dataclasses.asdict(row).items()} for row in rows]


def digest(records: list[dict[str, Any]]) -> str:
    """A short fingerprint of an answer, to show in the JSON that two answers are one."""
    text = json.dumps(records, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def time_question(
    ask: Callable[[], Any], repeat: int, *, warmup: bool = True
) -> tuple[list[float], list[dict[str, Any]]]:
    """Seconds of ``repeat`` timed calls (after one untimed call if ``warmup``), and the answer."""
    answer = ask() if warmup else None
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = ask()
        runs.append(time.perf_counter() - started)
    return runs, answer_json(answer)


def summarize(runs: list[float]) -> dict[str, Any]:
    """Median, min and max of the runs, in seconds."""
    return {
        "runs": [round(run, 6) for run in runs],
        "median": round(statistics.median(runs), 6),
        "min": round(min(runs), 6),
        "max": round(max(runs), 6),
    }


def measure_warm(
    engine: str, dsn: str, lake: Path, start: datetime, end: datetime, repeat: int
) -> dict[str, dict[str, Any]]:
    """Every question on one engine in this process: one warm-up, then ``repeat`` runs."""
    source = open_source(engine, dsn, lake)
    try:
        results = {}
        for question in QUESTIONS:
            runs, answer = time_question(asker(source, question, start, end), repeat)
            results[question] = {**summarize(runs), "answer": answer}
        return results
    finally:
        close_source(source)


def measure_cold_once(
    engine: str, question: str, dsn: str, lake: Path, start: datetime, end: datetime
) -> dict[str, Any]:
    """One question asked once by a process that has asked nothing before (``--cold``).

    The timing covers opening the source too (a connection, the commit log),
    as a fresh process of a user pays it; imports are excluded.
    """
    preload()
    started = time.perf_counter()
    source = open_source(engine, dsn, lake)
    try:
        answer = asker(source, question, start, end)()
        seconds = time.perf_counter() - started
    finally:
        close_source(source)
    return {"seconds": seconds, "answer": answer_json(answer)}
