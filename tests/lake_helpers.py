"""Write a lake straight from ledger rows, without PostgreSQL or the exporter.

A test describes its ledger as :class:`LedgerRow` values; :func:`write_lake`
lands them as one commit of Parquet files (``LAKE_SCHEMA``, one file per UTC
date partition). With ``rollups=True`` the commit also holds the daily spend
rollups of its rows, exactly the shape the exporter leaves; without, it is a
lake written before rollups existed.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ducto_olap.export.rollups import RollupAccumulator
from ducto_olap.lake import LAKE_SCHEMA, CommitRecord, LakeLayout, read_snapshot, write_commit
from ducto_olap.lake.commit_log import file_entries
from ducto_olap.lake.layout import ROLLUP_SCHEMAS

# A model given as MISSING leaves the key out of metadata; None stores a JSON null.
MISSING: Any = object()


@dataclasses.dataclass(frozen=True)
class LedgerRow:
    """One ledger transaction as a test writes it (amount signed, as in the ledger)."""

    user_id: str
    amount: Decimal
    created_at: datetime
    type: str = "usage"
    model: Any = MISSING

    @property
    def metadata(self) -> dict[str, Any]:
        return {} if self.model is MISSING else {"model": self.model}

    @property
    def lake_model(self) -> str | None:
        return None if self.model is MISSING else self.model


def row(
    user_id: str,
    amount: str | int | Decimal,
    created_at: str | datetime,
    type: str = "usage",
    model: Any = MISSING,
) -> LedgerRow:
    """A ledger row from short literals: ``row("alice", "-1.5", "2024-03-01T12:00")``.

    A ``created_at`` string without an offset is UTC.
    """
    when = created_at if isinstance(created_at, datetime) else datetime.fromisoformat(created_at)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return LedgerRow(user_id, Decimal(amount), when, type, model)


_ids = itertools.count(1)


def write_lake(
    root: Path | LakeLayout,
    rows: Iterable[LedgerRow],
    *,
    files_per_day: int = 1,
    rollups: bool = False,
    sparse_gain: int | None = None,
) -> LakeLayout:
    """Land ``rows`` as the next commit of the lake at ``root`` (created if needed).

    With ``sparse_gain`` (and ``rollups``) every day's rollup of a table with more
    than 1/``sparse_gain`` of its spend rows is left out as sparse, however few.
    """
    layout = root if isinstance(root, LakeLayout) else LakeLayout(root)
    layout.root.mkdir(parents=True, exist_ok=True)
    snapshot = read_snapshot(layout, must_exist=False)
    commit_id = (snapshot.last_commit.commit_id + 1) if snapshot.last_commit else 1

    by_day: dict[date, list[LedgerRow]] = defaultdict(list)
    for ledger_row in rows:
        by_day[ledger_row.created_at.astimezone(UTC).date()].append(ledger_row)

    paths: list[Path] = []
    counts: list[int] = []
    accumulator = RollupAccumulator(
        None if sparse_gain is None else (lambda _: True),
        spare_newest=False,
        min_gain=sparse_gain,
        min_judged_rows=1,
    )
    for day, day_rows in sorted(by_day.items()):
        for part in range(files_per_day):
            chunk = day_rows[part::files_per_day]
            if chunk:
                paths.append(write_file(layout, day, chunk, f"{commit_id:06d}-{part}"))
                counts.append(len(chunk))
                accumulator.add(day, lake_table(chunk))
    if rollups:
        for day, table, totals in accumulator.tables():
            folder = layout.partition_dir(day, table)
            folder.mkdir(parents=True, exist_ok=True)
            paths.append(folder / f"{commit_id:06d}-rollup-{uuid.uuid4().hex[:8]}.parquet")
            pq.write_table(totals, paths[-1])
            counts.append(totals.num_rows)

    cursor = snapshot.cursor
    record = CommitRecord(
        commit_id=commit_id,
        kind="export",
        committed_at=datetime.now(UTC).isoformat(),
        xid_from=cursor,
        xid_to=cursor + 1,
        rows=sum(counts),
        added=tuple(file_entries(layout, paths, counts)),
        rollups=rollups,
        rollup_tables=sorted(ROLLUP_SCHEMAS) if rollups else None,
        sparse_rollups={
            table: sorted(day.isoformat() for day in days)
            for table, days in accumulator.sparse.items()
        },
    )
    write_commit(layout, record)
    return layout


def write_file(layout: LakeLayout, day: date, rows: Sequence[LedgerRow], name: str) -> Path:
    """Write one Parquet file into the partition of ``day``; it counts only once committed."""
    folder = layout.partition_dir(day)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{uuid.uuid4().hex[:8]}.parquet"
    pq.write_table(lake_table(rows), path)
    return path


def lake_table(rows: Sequence[LedgerRow]) -> pa.Table:
    """Rows as an Arrow table of ``LAKE_SCHEMA``."""
    columns: dict[str, list[Any]] = {
        "id": [next(_ids) for _ in rows],
        "user_id": [r.user_id for r in rows],
        "amount": [r.amount for r in rows],
        "type": [r.type for r in rows],
        "operation_type": [None for _ in rows],
        "model": [r.lake_model for r in rows],
        "metadata": [json.dumps(r.metadata) for r in rows],
        "created_at": [r.created_at.astimezone(UTC) for r in rows],
        "reservation_id": [None for _ in rows],
        "refund_of": [None for _ in rows],
        "write_xid": [1 for _ in rows],
    }
    return pa.table(columns, schema=LAKE_SCHEMA)


def load_store(store: Any, rows: Iterable[LedgerRow]) -> None:
    """Write ``rows`` as-is into a ``PostgresStore`` or ``MemoryStore``, as in the lake."""
    for ledger_row in rows:
        store.import_transaction(
            ledger_row.user_id,
            ledger_row.amount,
            ledger_row.type,
            metadata=ledger_row.metadata,
            created_at=ledger_row.created_at,
        )
