"""Lake batches into Parquet files, written aside and renamed into their partitions.

:class:`PartitionWriter` splits each batch by the UTC date of ``created_at``,
buffers rows per partition and writes large row groups to files under
``_ducto/staging/<commit>/``. Memory is bounded by a byte budget: when the
buffers outgrow it, the largest partition is written out early, so a ledger
of any size streams through in a few hundred megabytes. :meth:`publish`
renames the fsynced files into ``transactions/date=YYYY-MM-DD/``; they count
only once the commit record that names them lands.

Every row written is also counted into the commit's daily spend rollups
(:mod:`.rollups`); :meth:`finish` writes them as staged files of their own,
which :meth:`publish` renames with the transaction files, so both land in the
same commit. A commit's rollups of a table are one file, outside the date
partitions, with a row group per day. Days whose rollups were left out as
sparse are listed by :attr:`PartitionWriter.sparse_rollups`, for the commit
record; a day judged sparse after some of its rollup rows were written keeps
those rows in the file, and readers skip them like every row of a day they do
not read from rollups.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ducto_olap.export import rollups
from ducto_olap.export.rollups import RollupAccumulator
from ducto_olap.lake.commit_log import fsync_dir
from ducto_olap.lake.layout import (
    LAKE_SCHEMA,
    ROLLUP_SCHEMAS,
    SPEND_BY_USER_WEEK,
    TRANSACTIONS,
    LakeLayout,
)

#: Rows per Parquet row group: large enough for fast scans and good compression.
ROW_GROUP_ROWS = 1 << 20
#: A file is closed and a new one started after this many rows.
FILE_ROWS = 4 * ROW_GROUP_ROWS
#: Arrow bytes buffered across all partitions before the oldest is written early.
#: A ledger arrives in about time order, so this holds its newest few days whole.
BUFFER_BYTES = 48 << 20
#: Files open at once; more partitions than this close the least recently used.
#: An open Parquet writer holds about a megabyte.
MAX_OPEN_FILES = 32
#: Rows per row group of a rollup file (see _RollupFile).
ROLLUP_GROUP_ROWS = 1 << 17
#: Files or folders fsynced at once. fsync waits on the disk, not the CPU, so
#: many at once cost little more than one.
FSYNC_THREADS = 8
#: Runs of one day at least this long are sliced, not copied.
MIN_SLICE_ROWS = 1024

_EPOCH = date(1970, 1, 1)
_MICROSECONDS_PER_DAY = 86_400_000_000
# Low-cardinality text gets dictionaries; ids, times and JSON compress better without.
_DICTIONARY_COLUMNS = ["user_id", "type", "operation_type", "model"]
# Min/max where a question or an analyst can prune with them: ids, amounts, times.
# Text prunes nothing and costs a string compare per row: free text (JSON, user
# ids that are often random UUIDs), and the few types and models, which every
# day's row group holds all of. Measured: an eighth of the encoding time.
_STATISTICS_COLUMNS = [
    name
    for name in LAKE_SCHEMA.names
    if name not in ("metadata", "user_id", "reservation_id", "type", "operation_type", "model")
]


@dataclasses.dataclass(frozen=True, slots=True)
class StagedFile:
    """A finished Parquet file in staging and the partition path it will be renamed to."""

    staging: Path
    final: Path
    rows: int
    table: str = TRANSACTIONS
    #: First and last day of a rollup file (it holds many); None for a partition's file.
    span: tuple[date, date] | None = None


def utc_days(batch: pa.RecordBatch) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Days since 1970-01-01 of each row's ``created_at`` in UTC (floor, so before 1970 too)."""
    micros = batch.column("created_at").cast(pa.int64()).to_numpy(zero_copy_only=False)
    days: np.ndarray[Any, np.dtype[np.int64]] = np.floor_divide(micros, _MICROSECONDS_PER_DAY)
    return days


def split_by_day(batch: pa.RecordBatch) -> list[tuple[date, pa.RecordBatch, pa.RecordBatch]]:
    """The rows of ``batch`` grouped by UTC date: ``(day, rows, batch they slice)``.

    The order of rows inside a day is not kept.

    A ledger arrives mostly in ``created_at`` order, so a batch is a few long runs
    of one day plus stragglers near the day boundaries. Long runs become
    zero-copy slices; only the stragglers are copied, one ``take`` for all of
    them. A batch in random order is thus all stragglers: one take, then slices.
    """
    days = utc_days(batch)
    starts = np.flatnonzero(np.diff(days)) + 1
    if len(starts) == 0:
        return [(_day(days[0]), batch, batch)]

    starts = np.concatenate(([0], starts))
    ends = np.concatenate((starts[1:], [len(days)]))
    long_runs = np.flatnonzero(ends - starts >= MIN_SLICE_ROWS)
    pieces = [
        (_day(days[starts[run]]), batch.slice(starts[run], ends[run] - starts[run]), batch)
        for run in long_runs.tolist()
    ]
    if len(long_runs) == len(starts):
        return pieces

    straggler = np.ones(len(days), dtype=bool)
    for run in long_runs.tolist():
        straggler[starts[run] : ends[run]] = False
    rows = np.flatnonzero(straggler)
    rows = rows[np.argsort(days[rows], kind="stable")]
    taken = batch.take(pa.array(rows))
    taken_days = days[rows]
    cuts = np.concatenate(([0], np.flatnonzero(np.diff(taken_days)) + 1, [len(rows)]))
    for start, end in itertools.pairwise(cuts.tolist()):
        pieces.append((_day(taken_days[start]), taken.slice(start, end - start), taken))
    return pieces


def _day(days_since_epoch: np.integer[Any]) -> date:
    return _EPOCH + timedelta(days=int(days_since_epoch))


class _Partition:
    def __init__(self, day: date) -> None:
        self.day = day
        self.pending: list[pa.RecordBatch] = []
        self.pins: list[int] = []
        self.pending_rows = 0
        self.writer: pq.ParquetWriter | None = None
        self.path: Path | None = None
        self.file_rows = 0


class _Pins:
    """Bytes held by buffered pieces: a slice keeps its whole parent batch alive."""

    def __init__(self) -> None:
        self.bytes = 0
        self._sizes: dict[int, int] = {}
        self._refs: dict[int, int] = {}
        self._next = 0

    def parent(self, batch: pa.RecordBatch) -> int:
        self._next += 1
        self._sizes[self._next] = batch.get_total_buffer_size()
        self._refs[self._next] = 0
        return self._next

    def hold(self, key: int) -> None:
        if self._refs[key] == 0:
            self.bytes += self._sizes[key]
        self._refs[key] += 1

    def release(self, key: int) -> None:
        self._refs[key] -= 1
        if self._refs[key] == 0:
            self.bytes -= self._sizes.pop(key)
            del self._refs[key]


class PartitionWriter:
    """Write one commit's files: buffer by partition, write aside, rename on publish.

    Args:
        layout: the lake.
        commit_id: the commit these files belong to; it is part of every file name
            so files of different commits never collide.
        kind: the last part of file names: ``export`` or ``compact``.
        compression: the Parquet codec.
        whole_day: whether this writer sees every row of a date (see
            :class:`RollupAccumulator`); None never leaves a sparse rollup out.
        spare_newest: never leave out the rollups of the newest date written.
        min_judged_rows: see :class:`RollupAccumulator`.
    """

    def __init__(
        self,
        layout: LakeLayout,
        commit_id: int,
        *,
        kind: str = "export",
        compression: str = "zstd",
        whole_day: Callable[[date], bool] | None = None,
        spare_newest: bool = True,
        min_judged_rows: int | None = None,
    ) -> None:
        self.layout = layout
        self.commit_id = commit_id
        self.kind = kind
        self.compression = compression
        self.staging_root = layout.staging_dir / f"{commit_id:010d}"
        self.staged: list[StagedFile] = []
        self._partitions: dict[date, _Partition] = {}
        self._open: OrderedDict[date, _Partition] = OrderedDict()
        self._pins = _Pins()
        self._file_number = 0
        self._rollups = RollupAccumulator(
            whole_day, spare_newest=spare_newest, min_judged_rows=min_judged_rows
        )
        self._rollup_files: dict[str, _RollupFile] = {}
        self._made_dirs: set[Path] = set()
        # Each file is fsynced as soon as it is closed, while the export streams on,
        # so that finish() waits only for the last few.
        self._fsync_pool: ThreadPoolExecutor | None = None
        self._fsyncs: list[Future[None]] = []

    @property
    def rows(self) -> int:
        """Ledger rows written or buffered so far."""
        staged = sum(entry.rows for entry in self.staged if entry.table == TRANSACTIONS)
        open_rows = sum(part.file_rows + part.pending_rows for part in self._partitions.values())
        return staged + open_rows

    def write(self, batch: pa.RecordBatch) -> None:
        """Add a lake batch; rows go to the partition of their UTC date."""
        if batch.num_rows == 0:
            return
        parents: dict[int, int] = {}
        for day, piece, parent in split_by_day(batch):
            key = parents.get(id(parent))
            if key is None:
                key = parents[id(parent)] = self._pins.parent(parent)
            part = self._partitions.get(day)
            if part is None:
                part = self._partitions[day] = _Partition(day)
                self._rollups.saw(day)
            part.pending.append(piece)
            part.pins.append(key)
            part.pending_rows += piece.num_rows
            self._pins.hold(key)
            if part.pending_rows >= ROW_GROUP_ROWS:
                self._flush(part)

        # Oldest first: in a ledger in created_at order that is the day that is
        # complete, so each day still becomes one large row group.
        while self._pins.bytes > BUFFER_BYTES:
            self._flush(min(self._partitions.values(), key=_oldest_pin))

    def finish(self) -> list[StagedFile]:
        """Write every buffer, close every file and write the rollups; returns the staged files."""
        for part in self._partitions.values():
            self._flush(part)
            self._close(part)
        self._partitions.clear()
        self._write_rollups()
        for rollup_file in self._rollup_files.values():
            self.staged.append(rollup_file.close())
            self._fsync_later(rollup_file.staging)
        self._rollup_files.clear()

        # The files must be durable before a commit names them.
        self._wait_for_fsyncs()
        # In place: publish() renames in this order and returns the paths in it.
        self.staged.sort(key=lambda entry: entry.final)
        return list(self.staged)

    @property
    def sparse_rollups(self) -> dict[str, list[str]]:
        """ISO dates per rollup table whose rollups this commit left out as sparse."""
        return {
            table: sorted(day.isoformat() for day in days)
            for table, days in sorted(self._rollups.sparse.items())
            if days
        }

    def abort(self) -> None:
        """Close open files without publishing anything (a failed run)."""
        for part in self._partitions.values():
            if part.writer is not None:
                part.writer.close()
                part.writer = None
        for rollup_file in self._rollup_files.values():
            rollup_file.writer.close()
        self._partitions.clear()
        self._open.clear()
        self._rollup_files.clear()
        if self._fsync_pool is not None:
            self._fsync_pool.shutdown(wait=True, cancel_futures=True)
            self._fsync_pool, self._fsyncs = None, []

    def add_rollup_rows(self, table_name: str, rows: pa.Table) -> None:
        """Carry rollup rows of other days into this commit's rollup file of ``table_name``
        (a compaction keeps the days it does not rewrite of the files it replaces)."""
        for day_rows in _by_day(rows):
            self._stage_rollup(day_rows["day"][0].as_py(), table_name, day_rows)

    def publish(self, on_renamed: Callable[[int], None] | None = None) -> list[Path]:
        """Rename the staged files into their partitions and make the renames durable.

        Args:
            on_renamed: called with the count of files renamed so far after each one
                (the exporter's fault injection uses it).
        """
        directories = set()
        for number, entry in enumerate(self.staged, start=1):
            self._make_dir(entry.final.parent)
            os.rename(entry.staging, entry.final)
            directories.add(entry.final.parent)
            if on_renamed is not None:
                on_renamed(number)
        # The partition folders, then the table folders that may have gained one.
        tables = {entry.table for entry in self.staged}
        parents = [self.layout.table_dir(table) for table in sorted(tables)]
        if tables - {TRANSACTIONS}:
            parents.append(self.layout.rollups_dir)
        with ThreadPoolExecutor(max_workers=FSYNC_THREADS) as pool:
            list(pool.map(fsync_dir, sorted(directories)))
        for directory in parents:
            fsync_dir(directory)
        return [entry.final for entry in self.staged]

    def _flush(self, part: _Partition) -> None:
        if not part.pending:
            return
        table = pa.Table.from_batches(part.pending, schema=LAKE_SCHEMA)
        for key in part.pins:
            self._pins.release(key)
        part.pending, part.pins, part.pending_rows = [], [], 0
        self._rollups.add(part.day, table)
        # Oldest first, as for the row buffers. A day written out early that gets
        # more rows later is summed again into another part of the rollup file.
        while self._rollups.held_bytes > rollups.HELD_BYTES:
            self._write_rollups(self._rollups.days()[0])

        offset = 0
        while offset < table.num_rows:
            writer = self._writer(part)
            room = FILE_ROWS - part.file_rows
            chunk = table.slice(offset, room)
            writer.write_table(chunk, row_group_size=ROW_GROUP_ROWS)
            part.file_rows += chunk.num_rows
            offset += chunk.num_rows
            if part.file_rows >= FILE_ROWS:
                self._close(part)

    def _writer(self, part: _Partition) -> pq.ParquetWriter:
        if part.writer is not None:
            self._open.move_to_end(part.day)
            return part.writer
        if len(self._open) >= MAX_OPEN_FILES:
            _, oldest = self._open.popitem(last=False)
            self._close(oldest)

        # Staged files lie flat: their names are unique within the commit, and one
        # folder per day and table cost a directory each for nothing.
        self._make_dir(self.staging_root)
        part.path = self.staging_root / self._file_name()
        # Amounts as INT64-backed DECIMAL(18,4): standard Parquet, and cheaper to
        # filter than fixed-length byte arrays.
        part.writer = pq.ParquetWriter(
            part.path,
            LAKE_SCHEMA,
            compression=self.compression,
            use_dictionary=_DICTIONARY_COLUMNS,
            write_statistics=_STATISTICS_COLUMNS,
            store_decimal_as_integer=True,
        )
        part.file_rows = 0
        self._open[part.day] = part
        return part.writer

    def _fsync_later(self, path: Path) -> None:
        if self._fsync_pool is None:
            self._fsync_pool = ThreadPoolExecutor(
                max_workers=FSYNC_THREADS, thread_name_prefix="ducto-fsync"
            )
        self._fsyncs.append(self._fsync_pool.submit(_fsync_file, path))

    def _wait_for_fsyncs(self) -> None:
        pool, fsyncs = self._fsync_pool, self._fsyncs
        self._fsync_pool, self._fsyncs = None, []
        if pool is None:
            return
        try:
            for fsync in fsyncs:
                fsync.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _make_dir(self, folder: Path) -> None:
        # A run touches each folder many times, and mkdir costs a system call each.
        if folder not in self._made_dirs:
            folder.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(folder)

    def _file_name(self) -> str:
        self._file_number += 1
        return f"{self.commit_id:010d}-{self._file_number:05d}-{self.kind}.parquet"

    def _write_rollups(self, day: date | None = None) -> None:
        """Stage the rollups of ``day`` (default: of every day left, and every week)."""
        days = [day] if day is not None else self._rollups.days()
        for each_day in days:
            for table_name, rollup in self._rollups.take(each_day):
                self._stage_rollup(each_day, table_name, rollup)
        for week, rollup in self._rollups.take_weeks(every=day is None):
            self._stage_rollup(week, SPEND_BY_USER_WEEK, rollup)

    def add_week_totals(self, week: date, totals: pa.Table) -> None:
        """Count per-user totals (``key, total_spend, transaction_count``) into ``week``'s
        rollup (a compaction recounts the weeks it rewrites days of)."""
        self._rollups.add_week(week, totals)

    def _stage_rollup(self, day: date, table_name: str, rollup: pa.Table) -> None:
        # One file per table for the whole commit, one row group per day taken:
        # readers pay per file opened far more than per row group.
        rollup_file = self._rollup_files.get(table_name)
        if rollup_file is None:
            self._make_dir(self.staging_root)
            name = self._file_name()
            rollup_file = self._rollup_files[table_name] = _RollupFile(
                self.staging_root / name,
                self.layout.table_dir(table_name) / name,
                table_name,
                self.compression,
            )
        rollup_file.write(day, rollup)

    def _close(self, part: _Partition) -> None:
        if part.writer is None or part.path is None:
            return
        part.writer.close()
        self._fsync_later(part.path)
        final = self.layout.partition_dir(part.day) / part.path.name
        self.staged.append(StagedFile(part.path, final, part.file_rows))
        self._open.pop(part.day, None)
        part.writer, part.path, part.file_rows = None, None, 0
        self._write_rollups(part.day)


class _RollupFile:
    """The staged rollup file of one table: many days, in row groups of several days.

    A reader pays about as much to start a row group of text and decimals as to
    read thousands of its rows, so days are gathered into row groups of about
    :data:`ROLLUP_GROUP_ROWS` rows, sorted by day so their min/max still prune.
    """

    def __init__(self, staging: Path, final: Path, table: str, compression: str) -> None:
        self.staging, self.final, self.table = staging, final, table
        self.rows = 0
        self.first: date | None = None
        self.last: date | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        # Readers filter by day, so only the day's min/max is worth keeping. Keys
        # stay dictionary-encoded: DuckDB reads them about a third faster so, though
        # each key is distinct within a day.
        self.writer = pq.ParquetWriter(
            staging, ROLLUP_SCHEMAS[table], compression=compression, write_statistics=["day"]
        )

    def write(self, day: date, rollup: pa.Table) -> None:
        self._pending.append(rollup)
        self._pending_rows += rollup.num_rows
        self.rows += rollup.num_rows
        self.first = day if self.first is None else min(self.first, day)
        self.last = day if self.last is None else max(self.last, day)
        if self._pending_rows >= ROLLUP_GROUP_ROWS:
            self._flush()

    def close(self) -> StagedFile:
        self._flush()
        self.writer.close()
        assert self.first is not None and self.last is not None, "a rollup file has rows"
        return StagedFile(self.staging, self.final, self.rows, self.table, (self.first, self.last))

    def _flush(self) -> None:
        if not self._pending:
            return
        group = pa.concat_tables(self._pending).sort_by("day")
        self.writer.write_table(group, row_group_size=max(group.num_rows, 1))
        self._pending, self._pending_rows = [], 0


def _by_day(rows: pa.Table) -> list[pa.Table]:
    """Rollup rows split by their ``day`` column."""
    return [rows.filter(pc.equal(rows["day"], day)) for day in pc.unique(rows["day"]).to_pylist()]


def _fsync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _oldest_pin(part: _Partition) -> float:
    return part.pins[0] if part.pins else float("inf")
