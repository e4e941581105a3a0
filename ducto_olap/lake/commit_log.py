"""The commit log: which Parquet files of a lake count.

A commit is one landed export (or compaction). Its record is a JSON file
``_ducto/commits/<commit_id>.json`` that appears by an exclusive atomic link,
so a reader sees a commit whole or not at all, and two writers can never both
land the same commit id. The set of committed files is the replay of all
records in id order: each adds files and may remove files (compaction).
Anything in ``transactions/`` or ``rollups/`` that no record names is ignored
by readers: a leftover of a crashed run (the next writer removes it, if it has
a name the writers give) or a file someone else put there (left alone).

A folder is a lake once it has ``_ducto/commits/`` (:func:`init_lake`), and each
record names the ledger it was exported from (``ledger_id``).

A commit with ``rollups=True`` wrote the rollups of every transaction file it
added (a date without spend gets no rollup file), except the dates it lists in
``sparse_rollups`` for a rollup table: their rollups would have been about as
large as their rows, so it left them out. A date's rollups of a table are
complete when each of its transaction files came from a commit with
``rollups=True`` that did not leave that table out for the date; other dates
(sparse ones, and ones with a file written before rollups existed) are
answered from their transaction files. A commit lists the rollup tables it
wrote (``rollup_tables``; older ones wrote the two daily tables), so a week is
read from the weekly table only when every commit with files of it wrote one.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import tempfile
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

from ducto_olap.errors import LakeError
from ducto_olap.lake.layout import (
    META,
    ROLLUP_SCHEMAS,
    SCHEMA_VERSION,
    SPEND_BY_MODEL_DAY,
    SPEND_BY_USER_DAY,
    TRANSACTIONS,
    LakeLayout,
    partition_date,
    table_of,
)

_RECORD_WIDTH = 10
# FileEntry has a field named ``date``, which hides the type inside its body.
_Date = date
ROLLUP_TABLES = frozenset(ROLLUP_SCHEMAS)
DAILY_ROLLUP_TABLES = frozenset({SPEND_BY_USER_DAY, SPEND_BY_MODEL_DAY})


@dataclasses.dataclass(frozen=True, slots=True)
class FileEntry:
    """One committed Parquet file: path relative to the lake root, partition, size, table.

    A rollup file may hold several days: ``date`` is its first and ``last_date``
    its last (None: the one day ``date``).
    """

    path: str
    date: str
    rows: int
    bytes: int
    table: str = TRANSACTIONS
    last_date: str | None = None

    def overlaps(self, first: _Date, last: _Date) -> bool:
        """Whether the file holds rows of a day in ``[first, last]``."""
        return self.date <= last.isoformat() and (self.last_date or self.date) >= first.isoformat()


@dataclasses.dataclass(frozen=True, slots=True)
class CommitRecord:
    """One landed commit.

    ``xid_from``/``xid_to`` is the ledger range it covers: every committed row whose
    ``write_xid`` is in ``[xid_from, xid_to)``. ``xid_to`` is the cursor the next
    export starts from. A compaction covers no new range (``xid_from == xid_to``).
    ``ledger_id`` is the identity of the ledger the rows came from (the one row of
    its ``ducto_olap_ledger`` table); None for a ledger without one and for
    records written before identities existed.
    """

    commit_id: int
    kind: str
    committed_at: str
    xid_from: int
    xid_to: int
    rows: int
    added: tuple[FileEntry, ...]
    removed: tuple[str, ...] = ()
    max_id: int | None = None
    horizon_lag_rows: int = 0
    schema_version: int = SCHEMA_VERSION
    rollups: bool = False
    ledger_id: str | None = None
    #: Rollup table -> ISO dates of this commit's files whose rollups it left out.
    sparse_rollups: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    #: The rollup tables the commit wrote (with ``rollups``); None for commits
    #: written before the weekly table existed, which wrote the two daily ones.
    rollup_tables: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["added"] = [dataclasses.asdict(entry) for entry in self.added]
        data["removed"] = list(self.removed)
        return data

    def tables_without_rollups(self, day: str) -> frozenset[str]:
        """The rollup tables this commit did not write for its files of date ``day``."""
        if not self.rollups:
            return ROLLUP_TABLES
        written = DAILY_ROLLUP_TABLES if self.rollup_tables is None else set(self.rollup_tables)
        sparse = {table for table, days in self.sparse_rollups.items() if day in days}
        return frozenset((ROLLUP_TABLES - written) | sparse)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CommitRecord:
        fields = {field.name for field in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in fields}
        values["added"] = tuple(FileEntry(**entry) for entry in data.get("added", ()))
        values["removed"] = tuple(data.get("removed", ()))
        return cls(**values)


@dataclasses.dataclass(frozen=True, slots=True)
class LakeSnapshot:
    """The state of a lake as of its last commit.

    ``files`` are the committed transaction files, ``rollups`` the committed rollup
    files, ``rollup_dates`` the ISO dates whose transactions all came from commits
    that wrote rollups, ``sparse_dates`` those of them where a commit left a rollup
    table out (per table).
    """

    layout: LakeLayout
    commits: tuple[CommitRecord, ...]
    files: tuple[FileEntry, ...]
    rollups: tuple[FileEntry, ...] = ()
    rollup_dates: frozenset[str] = frozenset()
    sparse_dates: dict[str, frozenset[str]] = dataclasses.field(default_factory=dict)

    @property
    def last_commit(self) -> CommitRecord | None:
        return self.commits[-1] if self.commits else None

    @property
    def ledger_id(self) -> str | None:
        """The identity of the ledger the lake was exported from: the last one recorded."""
        for commit in reversed(self.commits):
            if commit.ledger_id is not None:
                return commit.ledger_id
        return None

    @property
    def cursor(self) -> int:
        """The ``write_xid`` the next export starts from (0 for a new lake)."""
        return self.commits[-1].xid_to if self.commits else 0

    @property
    def rows(self) -> int:
        """Ledger rows in the committed transaction files."""
        return sum(entry.rows for entry in self.files)

    @property
    def entries(self) -> tuple[FileEntry, ...]:
        """Every committed file: transactions and rollups."""
        return self.files + self.rollups

    def paths(
        self, first: date | None = None, last: date | None = None, table: str = TRANSACTIONS
    ) -> list[Path]:
        """Absolute paths of the committed ``table`` files with partition in ``[first, last]``."""
        selected = []
        for entry in self.files if table == TRANSACTIONS else self.rollups:
            if entry.table == table and entry.overlaps(first or date.min, last or date.max):
                selected.append(self.layout.resolve(entry.path))
        return selected

    def has_rollups(self, day: date, table: str | None = None) -> bool:
        """Whether ``day``'s rollups of ``table`` (default: of every rollup table) cover
        every committed transaction of that date."""
        key = day.isoformat()
        if key not in self.rollup_dates:
            return False
        tables = ROLLUP_TABLES if table is None else (table,)
        return not any(key in self.sparse_dates.get(name, ()) for name in tables)


def read_snapshot(lake: LakeLayout | str | Path, *, must_exist: bool = True) -> LakeSnapshot:
    """Replay the commit log of a lake.

    A folder is a lake once it has ``_ducto/commits/``: the exporter creates it
    as soon as a run has read the ledger, even with no rows to export, so an
    empty ledger gives a valid empty lake while a stray folder (or one where a
    first export failed before reading the ledger) is no lake at all.

    Args:
        lake: the lake folder or its layout.
        must_exist: refuse a folder that is not a lake; the exporter passes False
            to start a new one.

    Raises:
        LakeError: the folder does not exist or is not a lake (when ``must_exist``),
            or a record is unreadable or removes a file that was never added.
    """
    layout = lake if isinstance(lake, LakeLayout) else LakeLayout(lake)
    if must_exist and not layout.root.is_dir():
        raise LakeError(
            f"no lake at {layout.root}; run `ducto-olap export` first or pass --lake PATH"
        )
    if must_exist and not layout.commits_dir.is_dir():
        raise LakeError(
            f"{layout.root} is not a lake (no {META}/commits); pass the folder an export "
            f"wrote, or create a lake with ducto-olap export --lake PATH"
        )

    commits = tuple(_read_records(layout))
    files: dict[str, FileEntry] = {}
    # The rollup tables each transaction file's commit did not write for it, and
    # the files of commits that wrote no rollups at all.
    missing: dict[str, frozenset[str]] = {}
    unrolled: set[str] = set()
    for commit in commits:
        for removed in commit.removed:
            if files.pop(removed, None) is None:
                raise LakeError(
                    f"commit {commit.commit_id} of {layout.root} removes {removed}, "
                    f"which no earlier commit added; the commit log is damaged"
                )
            missing.pop(removed, None)
            unrolled.discard(removed)
        for entry in commit.added:
            files[entry.path] = entry
            if entry.table == TRANSACTIONS:
                missing[entry.path] = commit.tables_without_rollups(entry.date)
                if not commit.rollups:
                    unrolled.add(entry.path)

    ordered = sorted(files.values(), key=lambda entry: (entry.date, entry.path))
    transactions = tuple(entry for entry in ordered if entry.table == TRANSACTIONS)
    rollups = tuple(entry for entry in ordered if entry.table != TRANSACTIONS)
    never = {files[path].date for path in unrolled}
    covered = frozenset(entry.date for entry in transactions if entry.date not in never)
    sparse: dict[str, set[str]] = {}
    for path, tables in missing.items():
        for table in tables:
            sparse.setdefault(table, set()).add(files[path].date)
    return LakeSnapshot(
        layout,
        commits,
        transactions,
        rollups,
        covered,
        {table: frozenset(dates) for table, dates in sparse.items()},
    )


def init_lake(layout: LakeLayout) -> None:
    """Make ``layout``'s folder a lake (``_ducto/commits/``), durably; a no-op for a lake."""
    if layout.commits_dir.is_dir():
        return
    layout.commits_dir.mkdir(parents=True, exist_ok=True)
    fsync_dir(layout.meta_dir)
    fsync_dir(layout.root)


def write_commit(layout: LakeLayout, record: CommitRecord) -> Path:
    """Land a commit: after this returns, readers see its files; before, they don't.

    Raises:
        LakeError: a commit with this id already landed (another writer won).
    """
    layout.commits_dir.mkdir(parents=True, exist_ok=True)
    final = layout.commits_dir / f"{record.commit_id:0{_RECORD_WIDTH}d}.json"
    payload = json.dumps(record.to_json(), indent=1, sort_keys=True).encode()

    handle, temporary = tempfile.mkstemp(dir=layout.commits_dir, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, final)
        except FileExistsError as error:
            raise LakeError(
                f"commit {record.commit_id} already exists in {layout.root}; "
                f"another export ran at the same time, run again"
            ) from error
    finally:
        os.unlink(temporary)

    fsync_dir(layout.commits_dir)
    return final


def fsync_dir(path: Path) -> None:
    """Make a rename or link inside ``path`` durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def file_entries(
    layout: LakeLayout,
    paths: Iterable[Path],
    rows: Iterable[int],
    spans: Iterable[tuple[date, date] | None] | None = None,
) -> list[FileEntry]:
    """Commit-log entries for files already renamed into their partitions.

    ``spans`` gives each file's first and last day when it holds several (a
    rollup file); a file without one takes the date of its ``date=`` partition.
    """
    entries = []
    files = zip(paths, rows, strict=True)
    for (path, count), span in zip(files, spans or itertools.repeat(None), strict=False):
        relative = layout.relative(path)
        first, last = span if span is not None else (partition_date(relative), None)
        entries.append(
            FileEntry(
                path=relative,
                date=first.isoformat(),
                rows=count,
                bytes=path.stat().st_size,
                table=table_of(relative),
                last_date=None if last is None or last == first else last.isoformat(),
            )
        )
    return entries


def _read_records(layout: LakeLayout) -> Iterable[CommitRecord]:
    if not layout.commits_dir.is_dir():
        return
    for path in sorted(layout.commits_dir.glob("*.json")):
        try:
            record = CommitRecord.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as error:
            raise LakeError(f"commit record {path} is unreadable: {error}") from error
        if record.schema_version > SCHEMA_VERSION:
            raise LakeError(
                f"{path} has lake schema version {record.schema_version}, newer than this "
                f"ducto-olap understands ({SCHEMA_VERSION}); upgrade ducto-olap"
            )
        yield record
