"""Atomic file writes: a reader sees the old report or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ducto_olap.lake.commit_log import fsync_dir


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` by a temporary file in the same folder and a rename.

    A rerun replaces the file whole; a crash leaves the previous version in place
    (and at worst a ``.tmp`` file beside it, which the next run does not read).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        # mkstemp creates 0600 files; a report is meant to be read like any other file.
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

    fsync_dir(path.parent)
    return path
