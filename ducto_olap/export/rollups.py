"""Daily spend rollups: the spend rows of a commit's files, summed per UTC day and key.

:class:`RollupAccumulator` takes the lake rows of one partition at a time, as
the writer writes them, and keeps partial sums per (day, user) and (day,
model): memory grows with the distinct keys, not the rows. The writer turns
its totals into the rollup files of the commit (see ``lake/layout.py``).

Sums are ``decimal128(38, 4)``: amounts are cast before summing, so no total
of ``decimal128(18, 4)`` amounts can outgrow its type, and nothing is a float.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from ducto_olap.lake.layout import ROLLUP_SCHEMAS, SPEND_BY_MODEL_DAY, SPEND_BY_USER_DAY
from ducto_olap.questions import UNKNOWN_MODEL

SUM_TYPE = pa.decimal128(38, 4)
#: The key column of each rollup table.
ROLLUP_KEYS = {SPEND_BY_USER_DAY: "user_id", SPEND_BY_MODEL_DAY: "model"}
# Partial sums kept per (day, table) before they are folded into one.
_MAX_PARTS = 16
_ZERO = pa.scalar(Decimal(0), pa.decimal128(18, 4))


def spend_totals(rows: pa.Table | pa.RecordBatch) -> dict[str, pa.Table]:
    """Spend of lake rows per user and per model: ``key, total_spend, transaction_count``.

    Spend rows are ``type = 'usage' AND amount < 0``; a row's spend is ``-amount``,
    and a null model counts as ``'unknown'``.
    """
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_batches([rows])
    spend = table.filter(pc.and_(pc.equal(table["type"], "usage"), pc.less(table["amount"], _ZERO)))
    amount = pc.negate(spend["amount"].cast(SUM_TYPE))
    keys = {
        SPEND_BY_USER_DAY: spend["user_id"],
        SPEND_BY_MODEL_DAY: pc.fill_null(spend["model"], UNKNOWN_MODEL),
    }
    return {name: _totals(pa.table({"key": key, "spend": amount})) for name, key in keys.items()}


def _totals(keyed: pa.Table) -> pa.Table:
    grouped = keyed.group_by("key").aggregate([("spend", "sum"), ("spend", "count")])
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
        .group_by("key")
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
    """The rollups of the rows written so far, per UTC day."""

    def __init__(self) -> None:
        self._parts: dict[tuple[date, str], list[pa.Table]] = {}

    def add(self, day: date, rows: pa.Table | pa.RecordBatch) -> None:
        """Count the spend of ``rows``, all of UTC date ``day``."""
        for name, totals in spend_totals(rows).items():
            if totals.num_rows == 0:
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
        """
        for name in sorted(ROLLUP_KEYS):
            parts = self._parts.pop((day, name), None)
            if parts:
                yield name, _rollup_table(day, name, fold(parts))

    def tables(self) -> Iterator[tuple[date, str, pa.Table]]:
        """``(day, rollup table, its rows)`` for every day not yet taken, in day order."""
        for day in self.days():
            for name, table in self.take(day):
                yield day, name, table

    def days(self) -> list[date]:
        """The days with counted spend not yet taken."""
        return sorted({day for day, _ in self._parts})


def _rollup_table(day: date, name: str, totals: pa.Table) -> pa.Table:
    # Unsorted: readers group again anyway, and sorting cost more than the sums.
    days = pa.array([day] * totals.num_rows, pa.date32())
    columns = [days, totals["key"], totals["total_spend"], totals["transaction_count"]]
    return pa.Table.from_arrays(columns, schema=ROLLUP_SCHEMAS[name])
