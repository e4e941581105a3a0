"""Compaction: merge each partition's small files into one, in a new commit.

Every export adds at least one file to each partition it touches, so a lake
fed often collects many small files. :func:`compact` rewrites a partition's
files into one (rows in the same order: file by file as committed) and lands a
``kind="compact"`` commit that adds the new file and removes the old ones. It
covers no new ledger range (``xid_from == xid_to == cursor``), so no answer
changes. The replaced files are deleted after the commit lands; a crash before
that leaves them for the next writer's cleanup.

The rollups of a compacted partition are re-aggregated from the rows being
rewritten (the writer counts them as it writes), and judged sparse or not
over the whole day. A rollup file spans the days of the commit that wrote it,
so every one holding a rewritten date is replaced: its rows of the other
days are carried into the compaction's rollup files, one per table.
A partition exported before rollups existed is rewritten even when it is a
single file, so it gains them.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Collection
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ducto_olap.errors import DuctoError, LakeError
from ducto_olap.export.memory import export_memory
from ducto_olap.export.recovery import failure, lake_lock, refresh_shell_script, remove_leftovers
from ducto_olap.export.rollups import spend_totals
from ducto_olap.export.writer import PartitionWriter
from ducto_olap.lake.commit_log import (
    CommitRecord,
    FileEntry,
    LakeSnapshot,
    file_entries,
    read_snapshot,
    write_commit,
)
from ducto_olap.lake.layout import (
    LAKE_SCHEMA,
    ROLLUP_SCHEMAS,
    SPEND_BY_USER_DAY,
    SPEND_BY_USER_WEEK,
    TRANSACTIONS,
    LakeLayout,
    week_start,
)

logger = logging.getLogger("ducto_olap.export")


@dataclasses.dataclass(frozen=True, slots=True)
class CompactResult:
    """What one compaction did; ``commit_id`` is None when no partition needed it.

    ``files_removed`` and ``files_added`` count transaction files (rollups not included).
    """

    commit_id: int | None
    partitions: int
    files_removed: int
    files_added: int
    rows: int
    seconds: float

    def to_dict(self) -> dict[str, object]:
        """Plain values for ``--format table|json|csv``."""
        return {
            "commit_id": self.commit_id,
            "partitions": self.partitions,
            "files_removed": self.files_removed,
            "files_added": self.files_added,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
        }


def compact(lake: str | Path | LakeLayout, day: date | None = None) -> CompactResult:
    """Merge the files of every partition (or only ``day``'s) that has more than one.

    Partitions without complete rollups are rewritten with them as well.

    Args:
        lake: the lake folder.
        day: compact only this UTC date's partition; default all.

    Raises:
        LakeError: there is no lake at ``lake``, or ``day`` has no partition in it.
        ExportError: another writer holds the lock, or writing failed.

    Example:
        >>> compact("data/lake").files_removed
        12
    """
    layout = lake if isinstance(lake, LakeLayout) else LakeLayout(lake)
    read_snapshot(layout)  # "no lake" or "not a lake", as readers say it

    started = time.perf_counter()
    try:
        with export_memory(), lake_lock(layout):
            result = _compact(layout, day, started)
    except DuctoError:
        raise
    except Exception as error:
        raise failure(f"compacting {layout.root}", error) from error

    logger.info(
        "compact commit %s: %d partitions, %d files into %d, %d rows, %.3f s",
        result.commit_id,
        result.partitions,
        result.files_removed,
        result.files_added,
        result.rows,
        result.seconds,
    )
    return result


def _compact(layout: LakeLayout, day: date | None, started: float) -> CompactResult:
    snapshot = remove_leftovers(layout)
    if day is not None and not any(entry.date == day.isoformat() for entry in snapshot.files):
        raise LakeError(f"no partition date={day.isoformat()} in {layout.root}; {_dates(snapshot)}")
    groups: dict[str, list[FileEntry]] = {}
    for entry in snapshot.files:
        if day is None or entry.date == day.isoformat():
            groups.setdefault(entry.date, []).append(entry)
    # A partition of one file is rewritten too when its rollups are incomplete (a
    # lake exported before rollups existed), so one compaction gives it them.
    groups = {
        key: entries
        for key, entries in groups.items()
        if len(entries) > 1 or key not in snapshot.rollup_dates
    }
    if not groups or snapshot.last_commit is None:
        return CompactResult(None, 0, 0, 0, 0, time.perf_counter() - started)

    commit_id = snapshot.last_commit.commit_id + 1
    # A compaction rewrites every row of its partitions, so it judges each whole
    # day's rollups afresh, the newest included.
    writer = PartitionWriter(
        layout, commit_id, kind="compact", whole_day=lambda _: True, spare_newest=False
    )
    # Rollup files span days: those holding a rewritten date (or its week) are
    # replaced, and their rows of the other days and weeks move into this
    # commit's rollup files. A rewritten date's week is counted afresh: from the
    # rewritten rows, plus the transaction files of the week's other dates.
    weeks = {week_start(date.fromisoformat(day)) for day in groups}
    redone = {SPEND_BY_USER_WEEK: {week.isoformat() for week in weeks}}
    old_rollups = [
        entry for entry in snapshot.rollups if _touches(entry, redone.get(entry.table, groups))
    ]
    try:
        for entries in groups.values():
            for entry in _commit_order(entries):
                parquet = pq.ParquetFile(layout.resolve(entry.path))
                for batch in parquet.iter_batches(batch_size=1 << 17):
                    writer.write(batch.cast(LAKE_SCHEMA))
        for entry in snapshot.files:
            week = week_start(date.fromisoformat(entry.date))
            if week in weeks and entry.date not in groups:
                writer.add_week_totals(week, _user_totals(layout, entry))
        for entry in old_rollups:
            kept = _rows_of_other_days(layout, entry, redone.get(entry.table, groups))
            if kept.num_rows:
                writer.add_rollup_rows(entry.table, kept)
        staged = writer.finish()
    except BaseException:
        writer.abort()
        raise

    paths = writer.publish()
    replaced = tuple(entry.path for entries in groups.values() for entry in entries)
    removed = replaced + tuple(entry.path for entry in old_rollups)
    rows = sum(entry.rows for entry in staged if entry.table == TRANSACTIONS)
    added = sum(1 for entry in staged if entry.table == TRANSACTIONS)
    record = CommitRecord(
        commit_id=commit_id,
        kind="compact",
        committed_at=datetime.now(UTC).isoformat(),
        xid_from=snapshot.cursor,
        xid_to=snapshot.cursor,
        rows=0,  # no new ledger rows: the same rows in fewer files
        added=tuple(
            file_entries(
                layout, paths, (entry.rows for entry in staged), (entry.span for entry in staged)
            )
        ),
        removed=removed,
        max_id=snapshot.last_commit.max_id,
        rollups=True,
        sparse_rollups=writer.sparse_rollups,
        rollup_tables=sorted(ROLLUP_SCHEMAS),
        ledger_id=snapshot.ledger_id,
    )
    write_commit(layout, record)
    refresh_shell_script(layout)

    for relative in removed:
        layout.resolve(relative).unlink(missing_ok=True)
    shutil.rmtree(writer.staging_root, ignore_errors=True)
    seconds = time.perf_counter() - started
    return CompactResult(commit_id, len(groups), len(replaced), added, rows, seconds)


def _touches(entry: FileEntry, dates: Collection[str]) -> bool:
    first, last = entry.date, entry.last_date or entry.date
    return any(first <= day <= last for day in dates)


def _user_totals(layout: LakeLayout, entry: FileEntry) -> pa.Table:
    rows = pq.read_table(layout.resolve(entry.path), columns=["user_id", "model", "type", "amount"])
    return spend_totals(rows)[SPEND_BY_USER_DAY]


def _rows_of_other_days(layout: LakeLayout, entry: FileEntry, dates: Collection[str]) -> pa.Table:
    rows = pq.read_table(layout.resolve(entry.path), schema=ROLLUP_SCHEMAS[entry.table])
    rewritten = pa.array([date.fromisoformat(day) for day in dates], pa.date32())
    return rows.filter(pc.invert(pc.is_in(rows["day"], value_set=rewritten)))


def _commit_order(entries: list[FileEntry]) -> list[FileEntry]:
    # File names start with the zero-padded commit id, then the file number.
    return sorted(entries, key=lambda entry: entry.path.rsplit("/", 1)[-1])


def _dates(snapshot: LakeSnapshot) -> str:
    dates = sorted({entry.date for entry in snapshot.files})
    if not dates:
        return "the lake has no partitions yet"
    if len(dates) == 1:
        return f"its only partition is date={dates[0]}"
    return f"its {len(dates)} partitions span date={dates[0]} to date={dates[-1]}"
