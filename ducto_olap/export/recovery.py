"""What every writer of a lake does first: take the lock, then clear a crashed run's leftovers.

Only commit records say which files count, so anything under
``_ducto/staging/``, and any file under ``transactions/`` or ``rollups/`` with
a name the writers give but no commit names, is debris of a run that stopped
before its record landed (or of a compaction that stopped before deleting the
files it replaced). Files with other names are not ours and are never deleted.
Removing debris needs the lock: an unlocked cleanup could delete the staged
files of a run that is still going.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from ducto_olap.errors import DuctoError, ExportError
from ducto_olap.lake.commit_log import LakeSnapshot, read_snapshot
from ducto_olap.lake.layout import ROLLUP_SCHEMAS, ROLLUPS, LakeLayout

logger = logging.getLogger("ducto_olap.export")

#: The name of every Parquet file an export or compaction writes (see
#: ``PartitionWriter._file_name``): zero-padded commit id, file number, kind.
OWN_FILE_NAME = re.compile(r"\d{10}-\d{5}-(export|compact)\.parquet")
_PARTITION = re.compile(r"date=\d{4}-\d{2}-\d{2}")
_STAGING_RUN = re.compile(r"\d{10}")


@contextlib.contextmanager
def lake_lock(layout: LakeLayout) -> Iterator[None]:
    """Hold the lake's exclusive writer lock (``_ducto/export.lock``) for the block.

    Raises:
        ExportError: another export or compaction holds it.
    """
    layout.meta_dir.mkdir(parents=True, exist_ok=True)
    path = layout.meta_dir / "export.lock"
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise ExportError(
                f"another export or compaction is writing {layout.root} (lock {path}); "
                f"wait for it to finish and run again"
            ) from error
        yield
    finally:
        os.close(descriptor)


def remove_leftovers(layout: LakeLayout) -> LakeSnapshot:
    """Delete the debris of an unfinished run; returns the lake's snapshot.

    Debris is every run's folder under ``_ducto/staging/`` and every file in a
    ``date=`` partition of ``transactions/`` or a rollup table (or directly in a
    rollup table's folder, where files spanning days live) that has a name
    this package writes (:data:`OWN_FILE_NAME`) but no commit names. Any other
    file is someone else's: it is left alone, with one warning (readers never
    see it, since they only read committed files).
    """
    snapshot = read_snapshot(layout, must_exist=False)
    committed = {layout.resolve(entry.path) for entry in snapshot.entries}

    removed = 0
    foreign: list[Path] = []
    if layout.staging_dir.is_dir():
        for child in sorted(layout.staging_dir.iterdir()):
            # A run stages under a folder named by its commit id, and nothing else.
            if _STAGING_RUN.fullmatch(child.name) and child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
                removed += 1
            else:
                foreign.append(child)

    for table in _table_dirs(layout):
        for path in sorted(table.rglob("*")):
            if path.is_dir() or path in committed:
                continue
            if _is_own_file(path, table):
                path.unlink()
                removed += 1
            else:
                foreign.append(path)
        for folder in sorted(table.iterdir()):
            if _is_partition(folder) and not any(folder.iterdir()):
                folder.rmdir()

    if removed:
        # Routine: any stopped run leaves some, and readers never saw them.
        logger.info("removed %d leftovers of an unfinished run in %s", removed, layout.root)
    if foreign:
        shown = ", ".join(layout.relative(path) for path in foreign[:3])
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        logger.warning(
            "left %d files ducto-olap did not write alone in %s (%s%s); no commit names "
            "them, so queries ignore them; move them out of the lake",
            len(foreign),
            layout.root,
            shown,
            more,
        )
    return snapshot


def _table_dirs(layout: LakeLayout) -> list[Path]:
    tables = [layout.transactions_dir, *(layout.rollups_dir / name for name in ROLLUP_SCHEMAS)]
    return [table for table in tables if table.is_dir() and not table.is_symlink()]


def _is_own_file(path: Path, table: Path) -> bool:
    # Only <table>/date=YYYY-MM-DD/<commit>-<n>-<kind>.parquet, as PartitionWriter names
    # them, and a rollup table's <table>/<commit>-<n>-<kind>.parquet (files spanning days).
    in_partition = path.parent.parent == table and _is_partition(path.parent)
    spanning = path.parent == table and table.parent.name == ROLLUPS
    return (
        (in_partition or spanning)
        and OWN_FILE_NAME.fullmatch(path.name) is not None
        and path.is_file()
        and not path.is_symlink()
    )


def _is_partition(folder: Path) -> bool:
    return (
        folder.is_dir()
        and not folder.is_symlink()
        and _PARTITION.fullmatch(folder.name) is not None
    )


def refresh_shell_script(layout: LakeLayout) -> None:
    """Rewrite ``_ducto/shell.sql`` for the commit that just landed.

    The commit already counts, so a failure here is a warning, not a failed run:
    DuckDB shells keep the previous script until the next commit refreshes it.
    """
    from ducto_olap.shell.script import write_shell_script

    try:
        write_shell_script(layout)
    except (DuctoError, OSError) as error:
        logger.warning("the lake's shell script was not refreshed: %s", error)


def failure(what: str, error: Exception) -> ExportError:
    """One line for an unexpected failure of ``what`` (an export or compaction of a lake).

    A file system error says which path it could not write and what to do.
    """
    if isinstance(error, OSError) and error.strerror:
        where = f" {error.filename}" if error.filename else ""
        return ExportError(
            f"{what} failed: cannot write{where}: {error.strerror}; "
            f"make the lake folder writable, or pass another --lake"
        )
    return ExportError(f"{what} failed: {error}")
