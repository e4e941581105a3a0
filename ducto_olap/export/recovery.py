"""What every writer of a lake does first: take the lock, then clear a crashed run's leftovers.

Only commit records say which files count, so anything else under
``transactions/``, ``rollups/`` or ``_ducto/staging/`` is debris of a run that stopped before
its record landed (or of a compaction that stopped before deleting the files
it replaced). Removing it needs the lock: an unlocked cleanup could delete the
staged files of a run that is still going.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import shutil
from collections.abc import Iterator

from ducto_olap.errors import DuctoError, ExportError
from ducto_olap.lake.commit_log import LakeSnapshot, read_snapshot
from ducto_olap.lake.layout import LakeLayout

logger = logging.getLogger("ducto_olap.export")


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
    """Delete staging files and partition files no commit names; returns the snapshot."""
    snapshot = read_snapshot(layout, must_exist=False)
    committed = {layout.resolve(entry.path) for entry in snapshot.entries}

    removed = 0
    if layout.staging_dir.exists():
        for child in layout.staging_dir.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
            removed += 1

    tables = [layout.transactions_dir]
    if layout.rollups_dir.is_dir():
        tables += sorted(path for path in layout.rollups_dir.iterdir() if path.is_dir())
    for table in tables:
        if not table.is_dir():
            continue
        for path in table.rglob("*"):
            if path.is_file() and path not in committed:
                path.unlink()
                removed += 1
        for folder in sorted(table.iterdir()):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()

    if removed:
        logger.warning("removed %d leftovers of an unfinished run in %s", removed, layout.root)
    return snapshot


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
