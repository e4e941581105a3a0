"""Daily spend rollups: the spend rows of a commit's files, summed per UTC day and key.

:class:`RollupAccumulator` takes the lake rows of one partition at a time, as
the writer writes them, and keeps partial sums per (day, user) and (day,
model): memory grows with the distinct keys, not the rows. The writer turns
its totals into the rollup files of the commit (see ``lake/layout.py``).

A day whose rollup would be about as large as its spend rows is left out
(:data:`MIN_ROLLUP_GAIN`), and the commit record lists it as sparse, so readers
answer it from its transaction files. That is judged only on days whose rows
the writer sees whole, never on a slice of a day that other commits add to.

Sums are ``decimal128(38, 4)``: amounts are cast before summing, so no total
of ``decimal128(18, 4)`` amounts can outgrow its type, and nothing is a float.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from ducto_olap.lake.layout import (
    ROLLUP_SCHEMAS,
    SPEND_BY_MODEL_DAY,
    SPEND_BY_USER_DAY,
    SPEND_BY_USER_WEEK,
    week_start,
)
from ducto_olap.questions import UNKNOWN_MODEL

SUM_TYPE = pa.decimal128(38, 4)
#: The key column of each rollup table.
ROLLUP_KEYS = {SPEND_BY_USER_DAY: "user_id", SPEND_BY_MODEL_DAY: "model"}
#: A day's rollup of a table is written only when it has at most 1/MIN_ROLLUP_GAIN
#: of the spend rows it sums. A sparse ledger (most users spend once a day or
#: less) has about one rollup row per spend row: reading it is no faster than
#: reading the rows, and writing it costs the export a tenth of its time.
MIN_ROLLUP_GAIN = 4
#: Days with fewer spend rows are never left out: they cost little either way,
#: and a small sample says little about the day.
MIN_JUDGED_SPEND_ROWS = 10_000
# Partial sums kept per (day, table) before they are folded into one.
_MAX_PARTS = 16
#: Bytes of partial sums held before the oldest day's are written out early. A
#: day's sums grow with its users, not its rows' count, so without a bound a dense
#: ledger (many users a day) would hold the sums of every open day.
HELD_BYTES = 16 << 20
#: Weeks whose per-user totals are kept in memory before the oldest is written.
OPEN_WEEKS = 3
_ZERO = pa.scalar(Decimal(0), pa.decimal128(18, 4))


def spend_totals(rows: pa.Table | pa.RecordBatch) -> dict[str, pa.Table]:
    """Spend of lake rows per user and per model: ``key, total_spend, transaction_count``.

    Spend rows are ``type = 'usage' AND amount < 0``; a row's spend is ``-amount``,
    and a null model counts as ``'unknown'``.
    """
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_batches([rows])
    # Only the four columns the sums need: filtering whole rows would copy the
    # metadata JSON too, which cost more than the grouping.
    table = table.select(["user_id", "model", "type", "amount"])
    spend = table.filter(pc.and_(pc.equal(table["type"], "usage"), pc.less(table["amount"], _ZERO)))
    amount = pc.negate(spend["amount"].cast(SUM_TYPE))
    keys = {
        SPEND_BY_USER_DAY: spend["user_id"],
        SPEND_BY_MODEL_DAY: pc.fill_null(spend["model"], UNKNOWN_MODEL),
    }
    return {name: _totals(pa.table({"key": key, "spend": amount})) for name, key in keys.items()}


def _totals(keyed: pa.Table) -> pa.Table:
    grouped = keyed.group_by("key", use_threads=False).aggregate(
        [("spend", "sum"), ("spend", "count")]
    )
    return pa.table(
        {
            "key": grouped["key"],
            "total_spend": grouped["spend_sum"].cast(SUM_TYPE),
            "transaction_count": grouped["spend_count"].cast(pa.int64()),
        }
    )


def fold(parts: list[pa.Table]) -> pa.Table:
    """Partial totals (``key, total_spend, transaction_count``) summed per key."""
    grouped = (
        pa.concat_tables(parts)
        .group_by("key", use_threads=False)
        .aggregate([("total_spend", "sum"), ("transaction_count", "sum")])
    )
    return pa.table(
        {
            "key": grouped["key"],
            "total_spend": grouped["total_spend_sum"].cast(SUM_TYPE),
            "transaction_count": grouped["transaction_count_sum"].cast(pa.int64()),
        }
    )


class RollupAccumulator:
    """The rollups of the rows written so far, per UTC day.

    Args:
        judge: whether the rows of a day this writer sees are the whole day as the
            lake will know it (a date new to the lake, or a compacted partition). Only
            such days may be left out as sparse; None judges no day.
        spare_newest: never leave out the newest day seen: in an export it is usually
            still being written, so its rows so far say little about the whole day.
        min_gain: a judged day's rollup is left out unless it has at most
            1/``min_gain`` of the spend rows it sums (default :data:`MIN_ROLLUP_GAIN`).
        min_judged_rows: days with fewer spend rows are never left out (default
            :data:`MIN_JUDGED_SPEND_ROWS`).
    """

    def __init__(
        self,
        judge: Callable[[date], bool] | None = None,
        *,
        spare_newest: bool = True,
        min_gain: int | None = None,
        min_judged_rows: int | None = None,
    ) -> None:
        self._parts: dict[tuple[date, str], list[pa.Table]] = {}
        # (day, table) -> [spend rows summed, rollup rows written] over the takes so far.
        self._seen: dict[tuple[date, str], list[int]] = {}
        self._judge = judge
        self._spare_newest = spare_newest
        self._min_gain = min_gain
        self._min_judged_rows = min_judged_rows
        self._newest: date | None = None
        #: Days per rollup table left out as sparse: readers take them from transactions.
        self.sparse: dict[str, set[date]] = {}
        # Per-user totals of the days taken, per ISO week (its Monday), not yet written.
        self._weeks: dict[date, list[pa.Table]] = {}

    @property
    def held_bytes(self) -> int:
        """Bytes of the partial sums held (days counted but not yet taken)."""
        # Not Table.nbytes: it walks every array's slice offsets, and this is asked
        # after every partition flush. Sums are never slices, so the two agree.
        return sum(part.get_total_buffer_size() for parts in self._parts.values() for part in parts)

    def saw(self, day: date) -> None:
        """Note that rows of ``day`` are on their way (the writer buffers them)."""
        self._newest = day if self._newest is None else max(self._newest, day)

    def add(self, day: date, rows: pa.Table | pa.RecordBatch) -> None:
        """Count the spend of ``rows``, all of UTC date ``day``."""
        self.saw(day)
        for name, totals in spend_totals(rows).items():
            if totals.num_rows == 0 or day in self.sparse.get(name, ()):
                continue
            parts = self._parts.setdefault((day, name), [])
            parts.append(totals)
            if len(parts) >= _MAX_PARTS:
                parts[:] = [fold(parts)]

    def take(self, day: date) -> Iterator[tuple[str, pa.Table]]:
        """``(rollup table, its rows)`` counted so far for ``day``, then forgets them.

        The writer takes a day's rollups as it closes the day's file, so memory holds
        the keys of the open partitions only, not of every day of the export. Rows of
        the day that arrive later go into another rollup file; readers sum the files.
        A table whose rollup of the day is sparse yields nothing and joins ``sparse``.
        """
        for name in sorted(ROLLUP_KEYS):
            parts = self._parts.pop((day, name), None)
            if not parts:
                continue
            # One part is already one row per key: folding it would only regroup it.
            totals = parts[0] if len(parts) == 1 else fold(parts)
            seen = self._seen.setdefault((day, name), [0, 0])
            seen[0] += pc.sum(totals["transaction_count"]).as_py()
            seen[1] += totals.num_rows
            if self._is_sparse(day, spend_rows=seen[0], rollup_rows=seen[1]):
                self.sparse.setdefault(name, set()).add(day)
                continue
            if name == SPEND_BY_USER_DAY:
                self.add_week(week_start(day), totals)
            yield name, _rollup_table(day, name, totals)

    def add_week(self, week: date, totals: pa.Table) -> None:
        """Count per-user totals (``key, total_spend, transaction_count``) into ``week``."""
        parts = self._weeks.setdefault(week, [])
        parts.append(totals)
        if len(parts) >= _MAX_PARTS:
            parts[:] = [fold(parts)]

    def take_weeks(self, *, every: bool = False) -> Iterator[tuple[date, pa.Table]]:
        """``(week, its spend_by_user_week rows)`` of the weeks to write now, then forgets them.

        Without ``every``, only the oldest weeks beyond the :data:`OPEN_WEEKS` newest:
        a ledger arrives roughly in time order, so those are most likely complete,
        and memory holds a few weeks' users. A week's rows that arrive after it was
        written go into another part of the file; readers sum them.
        """
        weeks = sorted(self._weeks)
        for week in weeks if every else weeks[: max(0, len(weeks) - OPEN_WEEKS)]:
            yield week, _rollup_table(week, SPEND_BY_USER_WEEK, fold(self._weeks.pop(week)))

    def tables(self) -> Iterator[tuple[date, str, pa.Table]]:
        """``(day, rollup table, its rows)`` for every day not yet taken, in day order,
        then every week (``day`` is its Monday)."""
        for day in self.days():
            for name, table in self.take(day):
                yield day, name, table
        for week, table in self.take_weeks(every=True):
            yield week, SPEND_BY_USER_WEEK, table

    def days(self) -> list[date]:
        """The days with counted spend not yet taken."""
        return sorted({day for day, _ in self._parts})

    def _is_sparse(self, day: date, *, spend_rows: int, rollup_rows: int) -> bool:
        # The defaults are read here, not bound at definition, so a test can lower them.
        min_rows = self._min_judged_rows
        if self._judge is None or spend_rows < (min_rows or MIN_JUDGED_SPEND_ROWS):
            return False
        if self._spare_newest and day == self._newest:
            return False
        gain = self._min_gain or MIN_ROLLUP_GAIN
        return rollup_rows * gain > spend_rows and self._judge(day)


def _rollup_table(day: date, name: str, totals: pa.Table) -> pa.Table:
    # Unsorted: readers group again anyway, and sorting cost more than the sums.
    days = pa.array([day] * totals.num_rows, pa.date32())
    columns = [days, totals["key"], totals["total_spend"], totals["transaction_count"]]
    return pa.Table.from_arrays(columns, schema=ROLLUP_SCHEMAS[name])
