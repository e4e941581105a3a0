"""What both lake engines share: the lake, its commit log, and the files a window reads.

An engine never lists the ``transactions/`` folder: it replays the commit log
for every question, so it reads exactly the committed files (a leftover of a
crashed export is invisible) and never answers from a stale file list.
"""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar, TypeVar

from ducto_olap.errors import QueryError
from ducto_olap.lake import LakeLayout, LakeSnapshot, read_snapshot
from ducto_olap.questions import SpendQuestions
from ducto_olap.window import Window

logger = logging.getLogger("ducto_olap.engines")

T = TypeVar("T")

# Reads of a window that meet files a concurrent compaction deleted, before giving up.
_ATTEMPTS = 3


class LakeAnalytics(SpendQuestions):
    """The five questions over the committed files of a lake.

    Args:
        lake: the lake folder (``str`` or ``Path``) or its :class:`LakeLayout`.

    Raises:
        LakeError: the lake folder does not exist; run ``ducto-olap export`` first.
    """

    engine: ClassVar[str] = ""

    def __init__(self, lake: LakeLayout | str | Path) -> None:
        self.layout = lake if isinstance(lake, LakeLayout) else LakeLayout(lake)
        self.snapshot()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.layout.root)!r})"

    def __enter__(self) -> LakeAnalytics:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release what the engine holds; the base engine holds nothing."""

    def snapshot(self) -> LakeSnapshot:
        """The lake as of its last landed commit, read afresh.

        Raises:
            LakeError: the lake folder is missing or its commit log is damaged.
        """
        return read_snapshot(self.layout)

    def files_for(self, window: Window) -> list[Path]:
        """The committed files a question over ``window`` reads, in partition order.

        Partitions are UTC dates of ``created_at``, so only the partitions from the
        window's first to its last UTC date can hold a row of it.
        """
        dates = window.utc_dates()
        if dates is None:
            return []
        return self.snapshot().paths(*dates)

    @abstractmethod
    def explain(self, window: Window) -> str:
        """The engine's own plan of ``spend_by_user`` over ``window``, naming the files read."""

    def _read(self, question: str, window: Window, run: Callable[[list[Path]], T], empty: T) -> T:
        """``run`` over the window's committed files, or ``empty`` when there are none.

        A compaction may land and delete files between listing them and reading
        them; the question is then asked again over the new commit's files.
        """
        for attempt in range(1, _ATTEMPTS + 1):
            files = self.files_for(window)
            if not files:
                return empty
            try:
                with self._timed(question, files):
                    return run(files)
            except QueryError:
                if attempt == _ATTEMPTS or all(path.exists() for path in files):
                    raise
                logger.debug("%s %s: files replaced while reading, again", self.engine, question)
        raise AssertionError("unreachable")

    @contextmanager
    def _timed(self, question: str, files: list[Path]) -> Iterator[None]:
        started = time.perf_counter()
        yield
        logger.info(
            "%s %s: %d files in %.3fs",
            self.engine,
            question,
            len(files),
            time.perf_counter() - started,
        )
