"""One export run: new committed ledger rows into one new lake commit, exactly once.

A run, under an exclusive lock on ``_ducto/export.lock``:

1. removes leftovers of a crashed run (staging files, partition files no commit names);
2. opens a read-only snapshot and reads its horizon ``H`` and the ledger's identity
   (see :mod:`.reader`), refuses a lake exported from another ledger, and makes
   the folder a lake (``_ducto/commits/``) if it is not one yet;
3. streams the rows with ``cursor <= write_xid < H`` into staged Parquet files,
   and their daily spend rollups into staged files of their own;
4. renames them all into their partitions and lands the commit record ``[cursor, H)``.

Until step 4's record exists the commit does not count, so a crash anywhere
leaves readers on the previous commit and the next run starts over from the
same cursor. With no new rows a run writes nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ducto_olap.errors import DuctoError, ExportError
from ducto_olap.export.memory import export_memory
from ducto_olap.export.reader import LedgerReader
from ducto_olap.export.recovery import (
    failure,
    lake_lock,
    refresh_shell_script,
    remove_leftovers,
)
from ducto_olap.export.writer import PartitionWriter
from ducto_olap.lake.commit_log import (
    CommitRecord,
    LakeSnapshot,
    file_entries,
    init_lake,
    write_commit,
)
from ducto_olap.lake.layout import ROLLUP_SCHEMAS, TRANSACTIONS, LakeLayout
from ducto_olap.settings import mask_dsn

logger = logging.getLogger("ducto_olap.export")

#: The steps where a test can make a run fail, in the order a run passes them.
FAULT_POINTS = (
    "after_snapshot",
    "after_first_batch",
    "after_staging",
    "after_first_rename",
    "after_rename",
    "before_commit",
    "after_commit",
)


class InjectedFailure(ExportError):
    """Raised at the step named by ``fail_at``, to test crash recovery."""


@dataclasses.dataclass(frozen=True, slots=True)
class ExportResult:
    """What one export run did.

    ``commit_id`` is None when there were no new rows (nothing was written).
    ``xid_from``/``xid_to`` is the ledger range covered; ``horizon_lag_rows`` counts
    committed rows at or above the horizon, which the next run picks up. ``files``
    counts transaction files; the commit's rollup files come on top.
    """

    commit_id: int | None
    rows: int
    files: int
    xid_from: int
    xid_to: int
    horizon_lag_rows: int
    seconds: float
    lake: Path

    @property
    def rows_per_second(self) -> float:
        """Rows exported per second of wall time."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain values for ``--format table|json|csv``."""
        return {
            "commit_id": self.commit_id,
            "rows": self.rows,
            "files": self.files,
            "xid_from": self.xid_from,
            "xid_to": self.xid_to,
            "horizon_lag_rows": self.horizon_lag_rows,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second),
            "lake": str(self.lake),
        }


def _missing_folders(layout: LakeLayout) -> list[Path]:
    """The folders a first run would create for its lock, deepest first."""
    missing = [] if layout.meta_dir.exists() else [layout.meta_dir]
    folder = layout.root
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


class Exporter:
    """Export the committed ledger rows the lake does not have yet.

    Args:
        dsn_or_store: a libpq DSN, or a ``PostgresStore`` (its ``dsn`` is used).
        lake_path: the lake folder; created on the first run.
        fail_at: for tests only, one of :data:`FAULT_POINTS`: the run raises
            :class:`InjectedFailure` there, as a crash would stop it.
        progress: show a progress bar; default only when stderr is a terminal.

    Example:
        >>> result = Exporter("postgresql://localhost/credits", "data/lake").run()
        >>> result.rows, result.commit_id
        (1000000, 1)
    """

    def __init__(
        self,
        dsn_or_store: Any,
        lake_path: str | Path,
        *,
        fail_at: str | None = None,
        progress: bool | None = None,
    ) -> None:
        self.dsn: str = dsn_or_store if isinstance(dsn_or_store, str) else dsn_or_store.dsn
        self.layout = LakeLayout(lake_path)
        if fail_at is not None and fail_at not in FAULT_POINTS:
            raise ExportError(
                f"unknown fault point {fail_at!r}; choose one of {', '.join(FAULT_POINTS)}"
            )
        self.fail_at = fail_at
        self.progress = sys.stderr.isatty() if progress is None else progress

    def run(self) -> ExportResult:
        """Export once; see the module docstring for the steps and guarantees.

        Raises:
            ExportError: PostgreSQL, Arrow or the file system failed, or another
                export holds the lake's lock. The lake is left as it was.
        """
        started = time.perf_counter()
        self._refuse_a_folder_of_other_files()
        made = _missing_folders(self.layout)
        try:
            with export_memory(), lake_lock(self.layout):
                snapshot = remove_leftovers(self.layout)
                result = self._export(snapshot, started)
        except DuctoError:
            self._remove_if_still_no_lake(made)
            raise
        except Exception as error:
            self._remove_if_still_no_lake(made)
            raise failure(f"export to {self.layout.root}", error) from error

        _log(result)
        return result

    def _refuse_a_folder_of_other_files(self) -> None:
        # A first export would scatter the lake's folders among someone else's
        # files (a typo like --lake ~); a lake starts in a new or empty folder.
        root = self.layout.root
        if "_ducto" in root.parts:
            raise ExportError(
                f"{root} is inside a lake's _ducto folder, which its exports clean up; "
                f"pass a --lake outside it"
            )
        if self.layout.commits_dir.is_dir() or not root.is_dir():
            return
        others = sorted(entry.name for entry in root.iterdir() if entry.name != "_ducto")
        if others:
            shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            raise ExportError(
                f"{root} is not a lake and not empty ({shown}); "
                f"export into a new or empty folder with --lake"
            )

    def _remove_if_still_no_lake(self, made: list[Path]) -> None:
        # A first run that failed before the ledger answered made the folders only
        # for its lock: leave the path as it was, so it is still "no lake" to readers.
        if self.layout.commits_dir.exists():
            return
        with contextlib.suppress(OSError):
            (self.layout.meta_dir / "export.lock").unlink(missing_ok=True)
            for folder in made:
                folder.rmdir()

    def _export(self, snapshot: LakeSnapshot, started: float) -> ExportResult:
        cursor = snapshot.cursor
        commit_id = snapshot.last_commit.commit_id + 1 if snapshot.last_commit else 1

        with LedgerReader(self.dsn) as reader:
            horizon = reader.horizon
            self._check_same_ledger(snapshot, reader.ledger_id)
            if horizon < cursor:
                raise ExportError(
                    f"the lake {self.layout.root} is ahead of the ledger (cursor {cursor}, "
                    f"horizon {horizon}): it was exported from another database; "
                    f"pass the matching --dsn or export into a new --lake"
                )
            # The ledger answered: from now on the folder is a lake, even if it
            # stays empty because the ledger is.
            init_lake(self.layout)
            self._fault("after_snapshot")
            # A date the lake has no rows of yet is seen whole by this run (but for
            # late commits), so its rollups may be judged sparse; a date other
            # commits add to is not.
            known_dates = {entry.date for entry in snapshot.files}
            writer = PartitionWriter(
                self.layout, commit_id, whole_day=lambda day: day.isoformat() not in known_dates
            )
            try:
                max_id = self._stream(reader, writer, cursor, horizon)
                staged = writer.finish()
            except BaseException:
                writer.abort()
                raise
            lag = reader.lag_rows()

        rows = sum(entry.rows for entry in staged if entry.table == TRANSACTIONS)
        files = sum(1 for entry in staged if entry.table == TRANSACTIONS)
        if rows == 0:
            if not self.layout.shell_script.exists():
                refresh_shell_script(self.layout)
            return ExportResult(None, 0, 0, cursor, horizon, lag, _since(started), self.layout.root)
        self._fault("after_staging")

        paths = self._publish(writer)
        self._fault("before_commit")
        record = CommitRecord(
            commit_id=commit_id,
            kind="export",
            committed_at=datetime.now(UTC).isoformat(),
            xid_from=cursor,
            xid_to=horizon,
            rows=rows,
            added=tuple(
                file_entries(
                    self.layout,
                    paths,
                    (entry.rows for entry in staged),
                    (entry.span for entry in staged),
                )
            ),
            max_id=max_id,
            horizon_lag_rows=lag,
            rollups=True,
            sparse_rollups=writer.sparse_rollups,
            rollup_tables=sorted(ROLLUP_SCHEMAS),
            ledger_id=reader.ledger_id,
        )
        write_commit(self.layout, record)
        refresh_shell_script(self.layout)
        self._fault("after_commit")

        shutil.rmtree(writer.staging_root, ignore_errors=True)
        seconds = _since(started)
        return ExportResult(commit_id, rows, files, cursor, horizon, lag, seconds, self.layout.root)

    def _check_same_ledger(self, snapshot: LakeSnapshot, ledger_id: str | None) -> None:
        lake_ledger = snapshot.ledger_id
        if lake_ledger is None or lake_ledger == ledger_id:
            return
        found = ledger_id or "none (no ducto_olap_ledger table)"
        raise ExportError(
            f"the lake {self.layout.root} holds ledger {lake_ledger} but "
            f"{mask_dsn(self.dsn)} is ledger {found}; use another --lake for this "
            f"database, or rebuild this lake (delete it and export again)"
        )

    def _stream(
        self, reader: LedgerReader, writer: PartitionWriter, cursor: int, horizon: int
    ) -> int | None:
        import pyarrow.compute as pc

        max_id: int | None = None
        with _progress_bar(self.progress) as advance:
            for number, batch in enumerate(reader.batches(cursor, horizon)):
                writer.write(batch)
                batch_max = pc.max(batch.column("id")).as_py()
                max_id = batch_max if max_id is None else max(max_id, batch_max)
                advance(batch.num_rows)
                if number == 0:
                    self._fault("after_first_batch")
        return max_id

    def _publish(self, writer: PartitionWriter) -> list[Path]:
        def renamed(count: int) -> None:
            if count == 1:
                self._fault("after_first_rename")

        paths = writer.publish(on_renamed=renamed)
        self._fault("after_rename")
        return paths

    def _fault(self, point: str) -> None:
        if self.fail_at == point:
            raise InjectedFailure(f"export stopped at {point!r} (fault injection)")


@contextlib.contextmanager
def _progress_bar(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield lambda rows: None
        return

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (
        SpinnerColumn(),
        TextColumn("exporting {task.completed:,} rows"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("export", total=None, rate="")
        started = time.perf_counter()

        def advance(rows: int) -> None:
            elapsed = time.perf_counter() - started
            done = progress.tasks[0].completed + rows
            rate = f"{done / elapsed:,.0f} rows/s" if elapsed > 0 else ""
            progress.update(task, advance=rows, rate=rate)

        yield advance


def _log(result: ExportResult) -> None:
    if result.commit_id is None:
        logger.info(
            "export: no new rows (0 rows, 0 files, %.3f s, 0 rows/s, horizon lag %d rows)",
            result.seconds,
            result.horizon_lag_rows,
        )
        return
    logger.info(
        "export commit %d: %d rows, %d files, %.3f s, %.0f rows/s, horizon lag %d rows "
        "(write_xid %d..%d)",
        result.commit_id,
        result.rows,
        result.files,
        result.seconds,
        result.rows_per_second,
        result.horizon_lag_rows,
        result.xid_from,
        result.xid_to,
    )


def _since(started: float) -> float:
    return time.perf_counter() - started
