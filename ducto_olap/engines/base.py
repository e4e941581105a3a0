"""What both lake engines share: the lake, its commit log, and the files a window reads.

An engine never lists the ``transactions/`` folder: it replays the commit log
for every question, so it reads exactly the committed files (a leftover of a
crashed export is invisible) and never answers from a stale file list.

A window's whole UTC days (``[d, d + 1)`` inside ``[start, end)``) are read from
the daily spend rollups when the commit log says a day's rollups cover all its
transactions; the partial days at the edges, and whole days without complete
rollups, are read from the transaction files with the window's filter. Since
every transaction file holds one UTC date, the two sets never overlap and the
engine sums their totals per key. Per-user questions go one step coarser: a
whole ISO week inside the window whose days are all read from rollups, and
whose commits all wrote the weekly rollup, comes from that rollup instead of
seven daily ones.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path
from typing import ClassVar, TypeVar

from ducto_olap.errors import QueryError
from ducto_olap.lake import (
    SPEND_BY_USER_DAY,
    SPEND_BY_USER_WEEK,
    LakeLayout,
    LakeSnapshot,
    read_snapshot,
)
from ducto_olap.lake.layout import week_start
from ducto_olap.models import SpendByUserRow, TopUserRow
from ducto_olap.questions import SpendQuestions
from ducto_olap.window import Window

logger = logging.getLogger("ducto_olap.engines")

T = TypeVar("T")

# Reads of a window that meet files a concurrent compaction deleted, before giving up.
_ATTEMPTS = 3


@dataclasses.dataclass(frozen=True, slots=True)
class ReadPlan:
    """The files one question reads.

    ``transactions`` are read with the window's ``created_at`` filter; ``rollups``
    maps a rollup table to its files, of which only the rows of ``rollup_days``
    are read.
    """

    transactions: list[Path]
    rollups: dict[str, list[Path]]
    #: The days read from the rollup files. A rollup file may hold other days too
    #: (it spans its commit's days), so readers keep only the rows of these.
    rollup_days: tuple[date, ...] = ()
    #: The ISO weeks (Mondays) whose per-user spend is read from the weekly rollup,
    #: in place of the daily per-user rollup of their days.
    weeks: tuple[date, ...] = ()

    @property
    def files(self) -> list[Path]:
        """Every file of the plan."""
        return [*self.transactions, *(path for paths in self.rollups.values() for path in paths)]

    @property
    def uses_rollups(self) -> bool:
        return any(self.rollups.values())

    @property
    def user_days(self) -> tuple[date, ...]:
        """The rollup days whose per-user spend comes from the daily rollup."""
        weeks = set(self.weeks)
        return tuple(day for day in self.rollup_days if week_start(day) not in weeks)


def whole_utc_days(window: Window) -> tuple[date, date] | None:
    """The first and last UTC date ``d`` with ``[d, d + 1)`` inside the window, or None."""
    if window.is_empty:
        return None
    first = window.start.date()
    if window.start.time() != clock_time(0):
        if first == date.max:
            return None
        first += timedelta(days=1)
    if window.end.date() == date.min:
        return None
    last = window.end.date() - timedelta(days=1)
    return (first, last) if first <= last else None


def user_rows(users: list[str], totals: list[str], counts: list[int]) -> list[SpendByUserRow]:
    """Per-user result rows from an engine's result columns; totals are exact decimal text.

    A per-user answer has a row for every user who spent, so it is built column
    by column: whole columns become Python lists at C speed and the row type is
    mapped over them, which costs half of unpacking one result tuple at a time.
    """
    return list(map(SpendByUserRow, users, map(Decimal, totals), counts))


def top_user_rows(users: list[str], totals: list[str]) -> list[TopUserRow]:
    """Top-user result rows from result columns, as :func:`user_rows`."""
    return list(map(TopUserRow, users, map(Decimal, totals)))


def _whole_weeks(
    snapshot: LakeSnapshot, whole: tuple[date, date] | None, covered: list[date]
) -> list[date]:
    """The ISO weeks inside ``whole`` whose per-user spend the weekly rollup holds whole.

    A week qualifies when each of its dates with transactions is read from rollups
    (``covered``) and every commit with files of it wrote the weekly rollup.
    """
    if whole is None or not covered:
        return []
    read_from_rollups = set(covered)
    days_with_rows = {date.fromisoformat(entry.date) for entry in snapshot.files}
    weeks = []
    # Only weeks with a covered day can hold spend: a window of centuries stays cheap.
    monday = week_start(covered[0])
    if monday < whole[0]:
        monday += timedelta(days=7)
    while monday <= covered[-1] and monday + timedelta(days=6) <= whole[1]:
        days = [monday + timedelta(days=offset) for offset in range(7)]
        with_rows = [day for day in days if day in days_with_rows]
        if with_rows and all(
            day in read_from_rollups and snapshot.has_rollups(day, SPEND_BY_USER_WEEK)
            for day in with_rows
        ):
            weeks.append(monday)
        monday += timedelta(days=7)
    return weeks


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
        """The committed transaction files a question over ``window`` reads, in partition order.

        Partitions are UTC dates of ``created_at``, so only the partitions from the
        window's first to its last UTC date can hold a row of it; whole days with
        complete rollups are read from :meth:`rollup_files_for` instead.
        """
        return self.plan(window, tables=(SPEND_BY_USER_DAY,)).transactions

    def rollup_files_for(self, window: Window, table: str = SPEND_BY_USER_DAY) -> list[Path]:
        """The committed rollup files of ``table`` a question over ``window`` reads."""
        return self.plan(window, tables=(table,)).rollups[table]

    def plan(self, window: Window, tables: tuple[str, ...] = ()) -> ReadPlan:
        """The files a question over ``window`` reads, using the rollup ``tables`` it can.

        With no ``tables`` every partition of the window is read from its transactions.
        """
        dates = window.utc_dates()
        if dates is None:
            return ReadPlan([], {table: [] for table in tables})
        snapshot = self.snapshot()
        whole = whole_utc_days(window) if tables else None

        def from_rollups(day: date) -> bool:
            if whole is None or not whole[0] <= day <= whole[1]:
                return False
            return all(snapshot.has_rollups(day, table) for table in tables)

        in_window = [
            (entry, day)
            for entry in snapshot.files
            if dates[0] <= (day := date.fromisoformat(entry.date)) <= dates[1]
        ]
        # A day without transaction files has no spend, so it needs no rollup either.
        covered = sorted({day for _, day in in_window if from_rollups(day)})
        read_whole = set(covered)
        transactions = [
            snapshot.layout.resolve(entry.path) for entry, day in in_window if day not in read_whole
        ]
        weeks = _whole_weeks(snapshot, whole, covered) if SPEND_BY_USER_DAY in tables else []
        rollups: dict[str, list[Path]] = {table: [] for table in tables}
        if weeks:
            rollups[SPEND_BY_USER_WEEK] = []
        for entry in snapshot.rollups if covered else ():
            span = (weeks[0], weeks[-1]) if entry.table == SPEND_BY_USER_WEEK and weeks else None
            if entry.table in rollups and entry.overlaps(*(span or (covered[0], covered[-1]))):
                rollups[entry.table].append(snapshot.layout.resolve(entry.path))
        if not any(rollups.values()):
            return ReadPlan(transactions, rollups)
        return ReadPlan(transactions, rollups, tuple(covered), tuple(weeks))

    @abstractmethod
    def explain(self, window: Window) -> str:
        """The engine's own plan of ``spend_by_user`` over ``window``, naming the files read."""

    def _read(
        self,
        question: str,
        window: Window,
        run: Callable[[ReadPlan], T],
        empty: T,
        tables: tuple[str, ...] = (),
    ) -> T:
        """``run`` over the window's committed files, or ``empty`` when there are none.

        ``tables`` are the rollup tables the question can use for whole UTC days.
        A compaction may land and delete files between listing them and reading
        them; the question is then asked again over the new commit's files.
        """
        for attempt in range(1, _ATTEMPTS + 1):
            plan = self.plan(window, tables)
            files = plan.files
            if not files:
                return empty
            try:
                with self._timed(question, files):
                    return run(plan)
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
