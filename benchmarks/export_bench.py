"""The exporter against the wire: end-to-end rate, bare COPY rate, peak memory, incremental run.

:func:`measure_export` exports a ledger to a fresh lake and measures, in the same run:

- the rate of a bare ``COPY (SELECT <the exporter's columns>) TO STDOUT (FORMAT
  binary)`` drained without parsing;
- the end-to-end export (Postgres to committed Parquet) in a child process, so its
  peak resident memory (``ru_maxrss``) is the export's alone;
- both interleaved over a few rounds (the machine is shared and drifts), compared
  by their medians;
- an incremental export of 10,000 new rows on top of the full lake;
- for context, the bare COPY as two connections at once (the exporter reads a
  large range over two; the target is against the one-connection COPY).

Run alone::

    python -m benchmarks.export_bench --rows 10000000 [--rounds 3] [--dsn DSN] [--out FILE.json]

Without ``--dsn`` it starts an embedded server in a temporary folder and seeds it
with :func:`ducto_olap.synth.seed_ledger`; with ``--dsn`` it seeds only an empty
ledger. The JSON written holds the machine, versions, sizes and every timing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from ducto_olap.export.reader import HEAP_PAGES, ledger_query

INCREMENTAL_ROWS = 10_000
TARGET_RATIO = 0.75
TARGET_PEAK_RSS_MB = 600
TARGET_INCREMENTAL_SECONDS = 1.0

_CHILD = """
import json, resource, sys
from ducto_olap.export import Exporter
result = Exporter(sys.argv[1], sys.argv[2], progress=False).run()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({**result.to_dict(), "peak_rss_mb": round(peak / 1024, 1)}))
"""


def measure_export(dsn: str, lake_dir: str | Path, rounds: int = 3) -> dict[str, Any]:
    """Export the ledger at ``dsn`` to ``lake_dir`` and measure it against a bare COPY.

    A round is a bare COPY, then a full export to a fresh lake; one more bare COPY
    closes the last round. The machine is shared and its speed drifts within
    minutes, so the two are interleaved and compared by their medians; each
    round's own ratio (its export against the COPYs on either side) is kept too.

    ``lake_dir`` should not hold a lake yet (the full export must be a full one).
    Afterwards it holds the whole ledger, including the incremental rows.
    """
    lake = Path(lake_dir)
    rows = _ledger_rows(dsn)

    copies, exports = [bare_copy(dsn)], []
    for number in range(1, rounds + 1):
        target = lake if number == rounds else lake.with_name(f"{lake.name}-round{number}")
        exports.append(_export_in_child(dsn, target))
        copies.append(bare_copy(dsn))
        if target != lake:
            shutil.rmtree(target)

    copy_rate = statistics.median(copy["rows_per_second"] for copy in copies)
    export_rate = statistics.median(export["rows_per_second"] for export in exports)
    paired = [
        export["rows_per_second"] * 2 / (before["rows_per_second"] + after["rows_per_second"])
        for export, before, after in zip(exports, copies, copies[1:], strict=False)
    ]

    two_streams = bare_copy_two_streams(dsn)
    _append_rows(dsn, INCREMENTAL_ROWS)
    incremental = _export_in_process(dsn, lake)

    return {
        "ledger_rows": rows,
        "rounds": rounds,
        "bare_copies": copies,
        "bare_copy_rows_per_second": round(copy_rate),
        "exports": exports,
        "export": exports[-1],
        "export_rows_per_second": round(export_rate),
        "ratio_to_bare_copy": round(export_rate / copy_rate, 3) if copy_rate else 0.0,
        "ratio_per_round": [round(ratio, 3) for ratio in paired],
        "bare_copy_two_streams": two_streams,
        "peak_rss_mb": max(export["peak_rss_mb"] for export in exports),
        "incremental": incremental,
        "incremental_seconds": incremental["seconds"],
        "targets": {
            "ratio_to_bare_copy": TARGET_RATIO,
            "peak_rss_mb": TARGET_PEAK_RSS_MB,
            "incremental_seconds": TARGET_INCREMENTAL_SECONDS,
        },
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
    }


def bare_copy(dsn: str) -> dict[str, Any]:
    """Drain ``COPY (<the exporter's SELECT>) TO STDOUT (FORMAT binary)``, parsing nothing.

    One connection, as the issue defines it; only the COPY is timed (the row
    count before it is not).
    """
    with psycopg.connect(dsn) as connection:
        connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        rows = _scalar(connection, "SELECT count(*) FROM credit_transactions")
        started = time.perf_counter()
        received = _drain_copy(connection)
        seconds = time.perf_counter() - started
    return _copy_rate(rows, received, seconds)


def bare_copy_two_streams(dsn: str) -> dict[str, Any]:
    """The bare COPY as two connections at once, each half of the heap's pages.

    For context only: the exporter reads a large range so, and the target
    compares it with the one-connection COPY the issue defines. Each half is
    drained by a process of its own (two threads would share one GIL).
    """
    with psycopg.connect(dsn) as connection:
        pages = _scalar(connection, HEAP_PAGES)
    halves = [(None, pages // 2), (pages // 2, None)]
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    started = time.perf_counter()
    with context.Pool(2) as pool:
        received = pool.starmap(_drain_half, [(dsn, half) for half in halves])
    seconds = time.perf_counter() - started
    return _copy_rate(_ledger_rows(dsn), sum(received), seconds)


def _drain_half(dsn: str, pages: tuple[int | None, int | None]) -> int:
    with psycopg.connect(dsn) as connection:
        return _drain_copy(connection, pages)


def _drain_copy(
    connection: psycopg.Connection[Any], pages: tuple[int | None, int | None] = (None, None)
) -> int:
    """Bytes of the exporter's SELECT (over ``pages`` of the heap) as a binary COPY."""
    received = 0
    query = ledger_query(0, 2**62, pages)
    with connection.cursor().copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as copy:
        while block := copy.read():
            received += len(block)
    return received


def _copy_rate(rows: int, received: int, seconds: float) -> dict[str, Any]:
    return {
        "rows": rows,
        "bytes": received,
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows / seconds) if seconds else 0,
    }


def _export_in_child(dsn: str, lake: Path) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, dsn, str(lake)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _export_in_process(dsn: str, lake: Path) -> dict[str, Any]:
    from ducto_olap.export import Exporter

    return Exporter(dsn, lake, progress=False).run().to_dict()


def _append_rows(dsn: str, count: int) -> None:
    with psycopg.connect(dsn) as connection:
        connection.execute(
            "INSERT INTO credit_transactions (user_id, amount, type, operation_type, metadata) "
            "SELECT 'bench-' || (g %% 100), -0.5, 'usage', 'inference', "
            "jsonb_build_object('model', 'bench-model', 'request_id', g) "
            "FROM generate_series(1, %s) AS g",
            (count,),
        )


def _ledger_rows(dsn: str) -> int:
    with psycopg.connect(dsn) as connection:
        return _scalar(connection, "SELECT count(*) FROM credit_transactions")


def _scalar(connection: psycopg.Connection[Any], query: str) -> int:
    row = connection.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def main(argv: list[str] | None = None) -> None:
    """Seed (if needed), measure, print and save the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="ledger rows to seed")
    parser.add_argument("--dsn", default=None, help="an existing database (seeded if empty)")
    parser.add_argument("--out", type=Path, default=None, help="write the results JSON here")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved bare COPY / export rounds (median)"
    )
    args = parser.parse_args(argv)

    from benchmarks.machine import machine
    from ducto_olap.store.embedded import cleanup, embedded_dsn
    from ducto_olap.synth import seed_ledger

    work = Path(tempfile.mkdtemp(prefix="ducto-export-bench-"))
    dsn = args.dsn or embedded_dsn(work / "pg")
    try:
        seeded = None
        if _table_missing_or_empty(dsn):
            # One writer, so the heap is in created_at order as a live ledger's is:
            # two writers at once interleave their pages, days apart.
            seeded = seed_ledger(
                dsn, rows=args.rows, users=100_000, days=365, seed=7, workers=1
            ).to_dict()
        measured = measure_export(dsn, work / "lake", rounds=args.rounds)
        report = {"benchmark": "export", "machine": machine(), "seed": seeded, **measured}
        text = json.dumps(report, indent=2)
        print(text)
        if args.out is not None:
            args.out.write_text(text + "\n")
    finally:
        if args.dsn is None:
            cleanup(work / "pg")
        shutil.rmtree(work, ignore_errors=True)


def _table_missing_or_empty(dsn: str) -> bool:
    with psycopg.connect(dsn) as connection:
        exists = connection.execute("SELECT to_regclass('credit_transactions')").fetchone()
        if exists is None or exists[0] is None:
            return True
        return _scalar(connection, "SELECT count(*) FROM credit_transactions") == 0


if __name__ == "__main__":
    main()
