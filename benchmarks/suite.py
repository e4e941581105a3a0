"""The benchmark suite: per ledger size, seed, export, then the five questions on every engine.

For each size the suite makes a fresh database, seeds it with
:func:`ducto_olap.synth.seed_ledger` over ``days`` days, prepares the fair
Postgres baseline (:mod:`benchmarks.baseline`), exports it to a fresh lake,
and times every question on every engine over the ``window_days`` days that
end where the ledger ends. Postgres's answer is the reference: any engine
that answers differently fails the run. Everything lands in ``<mode>.json``;
the table and the chart are rendered from that file.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from benchmarks import baseline, render
from benchmarks.machine import machine, postgres_version
from benchmarks.timing import (
    ENGINES,
    TUNED,
    digest,
    measure_cold_once,
    measure_warm,
    summarize,
)
from ducto_olap.questions import QUESTIONS
from ducto_olap.synth import seed_ledger

DEFAULT_END = datetime(2025, 6, 1, tzinfo=UTC)


@dataclasses.dataclass
class SuiteConfig:
    """What one run measures; the defaults are the numbers the README quotes."""

    sizes: list[int]
    repeat: int = 5
    engines: tuple[str, ...] = ENGINES
    out: Path = Path("benchmarks/results")
    cold: bool = False
    dsn: str | None = None
    users: int = 10_000
    days: int = 90
    window_days: int = 30
    seed: int = 42
    end: datetime = DEFAULT_END
    work_dir: Path | None = None
    keep: bool = False

    @property
    def mode(self) -> str:
        return "cold" if self.cold else "warm"

    @property
    def window(self) -> tuple[datetime, datetime]:
        return self.end - timedelta(days=self.window_days), self.end


def run_suite(config: SuiteConfig, command: list[str] | None = None) -> dict[str, Any]:
    """Run every size, write ``<out>/<mode>.json``, ``.md`` and ``.png``; return the JSON.

    The returned ``ok`` is False when any engine's answer differed from Postgres's.
    """
    engines = ("postgres", *[engine for engine in config.engines if engine != "postgres"])
    work = Path(config.work_dir or tempfile.mkdtemp(prefix="ducto-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    server_dsn, pgdata = _server(config.dsn, work)

    start, end = config.window
    payload: dict[str, Any] = {
        "suite": "ducto_olap benchmarks",
        "mode": config.mode,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command or [],
        "machine": {**machine(), "postgres": postgres_version(server_dsn)},
        "config": {
            "sizes": config.sizes,
            "repeat": config.repeat,
            "engines": list(engines),
            "users": config.users,
            "days": config.days,
            "window": {"start": start.isoformat(), "end": end.isoformat()},
            "seed": config.seed,
            "top_users_limit": 10,
            "embedded_postgres": config.dsn is None,
        },
        "sizes": [],
    }
    try:
        for rows in config.sizes:
            payload["sizes"].append(_run_size(config, engines, server_dsn, work, rows))
    finally:
        if pgdata is not None and not config.keep:
            from ducto_olap.store.embedded import cleanup

            cleanup(pgdata)
        if config.work_dir is None and not config.keep:
            shutil.rmtree(work, ignore_errors=True)

    payload["ok"] = all(size["answers_match"] for size in payload["sizes"])
    config.out.mkdir(parents=True, exist_ok=True)
    json_path = config.out / f"{config.mode}.json"
    json_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    render.write_outputs(payload, config.out)
    _say(f"wrote {json_path} and its table and chart")
    return payload


def _run_size(
    config: SuiteConfig, engines: tuple[str, ...], server_dsn: str, work: Path, rows: int
) -> dict[str, Any]:
    name = f"ducto_bench_{rows}"
    dsn = _fresh_database(server_dsn, name)
    lake = work / f"lake_{rows}"
    shutil.rmtree(lake, ignore_errors=True)

    _say(f"{rows:,} rows: seeding {config.users:,} users over {config.days} days")
    seeded = seed_ledger(
        dsn, rows=rows, users=config.users, days=config.days, seed=config.seed, end=config.end
    )
    _say(f"{rows:,} rows: seeded in {seeded.seconds:.1f} s; preparing the Postgres baseline")
    prepared_at = time.perf_counter()
    postgres = baseline.prepare(dsn)
    postgres["prepare_seconds"] = round(time.perf_counter() - prepared_at, 3)

    _say(f"{rows:,} rows: exporting to {lake}")
    export = _export(dsn, lake)
    # The incremental export adds rows; vacuum again so index-only scans stay index-only.
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE credit_transactions")

    timings = {}
    for engine in engines:
        _say(f"{rows:,} rows: timing the five questions on {engine} ({config.mode})")
        timings[engine] = _measure(config, engine, dsn, lake)
    sources = engines
    if "postgres" in engines:
        _say(f"{rows:,} rows: adding the tuned index; timing Postgres again")
        postgres["tuned"] = baseline.tune(dsn)
        timings[TUNED] = _measure(config, "postgres", dsn, lake)
        sources = (*engines, TUNED)

    questions, matched = _compare(timings, sources)
    if not config.keep:
        _drop_database(server_dsn, name)
        shutil.rmtree(lake, ignore_errors=True)
    return {
        "rows": rows,
        "seed": seeded.to_dict(),
        "postgres": postgres,
        "export": export,
        "questions": questions,
        "answers_match": matched,
    }


def _measure(config: SuiteConfig, engine: str, dsn: str, lake: Path) -> dict[str, dict[str, Any]]:
    start, end = config.window
    if not config.cold:
        return measure_warm(engine, dsn, lake, start, end, config.repeat)

    results = {}
    for question in QUESTIONS:
        runs, answer = [], []
        for _ in range(config.repeat):
            one = _cold_subprocess(engine, question, dsn, lake, start, end)
            runs.append(one["seconds"])
            answer = one["answer"]
        results[question] = {**summarize(runs), "answer": answer}
    return results


def _cold_subprocess(
    engine: str, question: str, dsn: str, lake: Path, start: datetime, end: datetime
) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "benchmarks", "cold-one", "--engine", engine,
        "--question", question, "--dsn", dsn, "--lake", str(lake),
        "--start", start.isoformat(), "--end", end.isoformat(),
    ]  # fmt: skip
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def cold_one(
    engine: str, question: str, dsn: str, lake: Path, start: datetime, end: datetime
) -> str:
    """The JSON a ``--cold`` subprocess prints: one timing and its answer."""
    return json.dumps(measure_cold_once(engine, question, dsn, lake, start, end))


def _compare(
    timings: dict[str, dict[str, dict[str, Any]]], engines: tuple[str, ...]
) -> tuple[dict[str, dict[str, Any]], bool]:
    matched = True
    questions: dict[str, dict[str, Any]] = {}
    for question in QUESTIONS:
        reference = timings["postgres"][question]
        per_engine = {}
        for engine in engines:
            measured = dict(timings[engine][question])
            answer = measured.pop("answer")
            same = answer == reference["answer"]
            matched = matched and same
            measured.update(
                answer_rows=len(answer),
                answer_digest=digest(answer),
                matches_postgres=same,
                ratio_to_postgres=_ratio(measured, reference),
            )
            if TUNED in timings:
                measured["ratio_to_tuned_postgres"] = _ratio(measured, timings[TUNED][question])
            if not same:
                measured["first_difference"] = _first_difference(answer, reference["answer"])
                _say(f"MISMATCH: {engine} {question}: {measured['first_difference']}")
            per_engine[engine] = measured
        questions[question] = per_engine
    return questions, matched


def _ratio(measured: dict[str, Any], reference: dict[str, Any]) -> float | None:
    return round(measured["median"] / reference["median"], 6) if reference["median"] > 0 else None


def _first_difference(answer: list[Any], reference: list[Any]) -> dict[str, Any]:
    for index, (mine, theirs) in enumerate(zip(answer, reference, strict=False)):
        if mine != theirs:
            return {"index": index, "engine": mine, "postgres": theirs}
    return {"index": min(len(answer), len(reference)), "rows": len(answer),
            "postgres_rows": len(reference)}  # fmt: skip


def _export(dsn: str, lake: Path) -> dict[str, Any]:
    try:
        from benchmarks.export_bench import measure_export
    except ImportError:
        measure_export = None

    if measure_export is not None:
        measured: dict[str, Any] = measure_export(dsn, lake, rounds=1)
        return {"source": "benchmarks.export_bench.measure_export", **measured}

    from ducto_olap.export import Exporter

    result = Exporter(dsn, lake, progress=False).run()
    return {
        "source": "Exporter.run (benchmarks.export_bench not available)",
        "rows": result.rows,
        "files": result.files,
        "seconds": round(result.seconds, 3),
        "rows_per_second": round(result.rows_per_second),
    }


def _server(dsn: str | None, work: Path) -> tuple[str, Path | None]:
    if dsn is not None:
        return dsn, None
    from ducto_olap.store.embedded import embedded_dsn

    pgdata = work / "pg"
    _say(f"starting the embedded PostgreSQL server in {pgdata}")
    return embedded_dsn(pgdata), pgdata


def _fresh_database(server_dsn: str, name: str) -> str:
    _drop_database(server_dsn, name)
    with psycopg.connect(server_dsn, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(server_dsn, dbname=name)


def _drop_database(server_dsn: str, name: str) -> None:
    with psycopg.connect(server_dsn, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _say(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
