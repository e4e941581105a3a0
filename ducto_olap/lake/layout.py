"""Where things live in a lake folder, and the Arrow schema of its Parquet files.

::

    <lake>/transactions/date=YYYY-MM-DD/<commit>-<n>-<tag>.parquet
    <lake>/rollups/spend_by_user_day/<commit>-<n>-<tag>.parquet      many days each
    <lake>/rollups/spend_by_model_day/<commit>-<n>-<tag>.parquet
    <lake>/rollups/spend_by_user_week/<commit>-<n>-<tag>.parquet     day = the ISO week's Monday
    <lake>/_ducto/commits/<commit_id>.json    one record per landed commit
    <lake>/_ducto/staging/                    files being written, not yet renamed
    <lake>/_ducto/shell.sql                   init script for DuckDB shells

The ``date`` partition is the UTC date of ``created_at``. It is not stored
inside the transaction files: engines read it from the path (Hive partitioning).

The rollups are the spend rows (``type = 'usage' AND amount < 0``) of the
transaction files of the same commit, summed per UTC day and user (or model),
and per ISO week and user (the sum of the week's daily per-user rows).
A commit that writes them lists them next to its transaction files, so they
land, or not, together. A commit writes one rollup file per table holding all
its days (a row group per day; lakes of older versions have one file per day
under ``date=`` folders), so a day's rollup rows may be in several commits'
files, and readers sum them. A commit may leave a sparse date's rollup of a
table out (its record says so), and readers then answer that date from its
transaction files.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa

#: 2: commits may add rollup files (``FileEntry.table``); a version 1 reader
#: would take them for transactions, so it must refuse such a lake.
#: 3: commits may leave sparse days' rollups out (``sparse_rollups``); a version 2
#: reader would take such a day's rollups for complete.
SCHEMA_VERSION = 3

TRANSACTIONS = "transactions"
ROLLUPS = "rollups"
SPEND_BY_USER_DAY = "spend_by_user_day"
SPEND_BY_MODEL_DAY = "spend_by_model_day"
SPEND_BY_USER_WEEK = "spend_by_user_week"
META = "_ducto"
PARTITION_KEY = "date"

#: Columns of every lake file, in order. ``write_xid`` is the writing
#: transaction's id (``xid8``), the exporter's commit-safe cursor.
LAKE_SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("amount", pa.decimal128(18, 4), nullable=False),
        pa.field("type", pa.string(), nullable=False),
        pa.field("operation_type", pa.string()),
        pa.field("model", pa.string()),
        pa.field("metadata", pa.string(), nullable=False),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("reservation_id", pa.string()),
        pa.field("refund_of", pa.int64()),
        pa.field("write_xid", pa.int64(), nullable=False),
    ]
)


_SPEND_TOTALS = [
    pa.field("total_spend", pa.decimal128(38, 4), nullable=False),
    pa.field("transaction_count", pa.int64(), nullable=False),
]

#: The rollup tables: spend per UTC day and user, per UTC day and model (a null
#: or missing model is ``'unknown'``), and per ISO week (Monday to Sunday, UTC)
#: and user, which spares a month's question most of the daily rows. Sums are
#: exact ``decimal128(38, 4)``.
ROLLUP_SCHEMAS = {
    SPEND_BY_USER_DAY: pa.schema(
        [
            pa.field("day", pa.date32(), nullable=False),
            pa.field("user_id", pa.string(), nullable=False),
            *_SPEND_TOTALS,
        ]
    ),
    SPEND_BY_MODEL_DAY: pa.schema(
        [
            pa.field("day", pa.date32(), nullable=False),
            pa.field("model", pa.string(), nullable=False),
            *_SPEND_TOTALS,
        ]
    ),
    # ``day`` is the Monday of the ISO week the row sums.
    SPEND_BY_USER_WEEK: pa.schema(
        [
            pa.field("day", pa.date32(), nullable=False),
            pa.field("user_id", pa.string(), nullable=False),
            *_SPEND_TOTALS,
        ]
    ),
}


def week_start(day: date) -> date:
    """The Monday of ``day``'s ISO week: the ``day`` of its ``spend_by_user_week`` rows."""
    return day - timedelta(days=day.weekday())


class LakeLayout:
    """The paths of one lake folder; creates nothing by itself."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().absolute()

    @property
    def transactions_dir(self) -> Path:
        return self.root / TRANSACTIONS

    @property
    def rollups_dir(self) -> Path:
        return self.root / ROLLUPS

    def table_dir(self, table: str) -> Path:
        """The folder of a table: ``transactions/`` or ``rollups/<name>/``."""
        return self.transactions_dir if table == TRANSACTIONS else self.rollups_dir / table

    @property
    def meta_dir(self) -> Path:
        return self.root / META

    @property
    def commits_dir(self) -> Path:
        return self.meta_dir / "commits"

    @property
    def staging_dir(self) -> Path:
        return self.meta_dir / "staging"

    @property
    def shell_script(self) -> Path:
        return self.meta_dir / "shell.sql"

    def partition_dir(self, day: date, table: str = TRANSACTIONS) -> Path:
        return self.table_dir(table) / f"{PARTITION_KEY}={day.isoformat()}"

    def relative(self, path: Path) -> str:
        """A path inside the lake as the commit log stores it: POSIX, relative to the root."""
        return path.absolute().relative_to(self.root).as_posix()

    def resolve(self, relative: str) -> Path:
        return self.root / relative


def partition_date(relative_path: str) -> date:
    """The partition date of a lake file from its path (``.../date=YYYY-MM-DD/...``)."""
    for part in relative_path.split("/"):
        key, _, value = part.partition("=")
        if key == PARTITION_KEY and value:
            return date.fromisoformat(value)
    raise ValueError(f"{relative_path!r} is not inside a date= partition")


def table_of(relative_path: str) -> str:
    """The table a lake file belongs to, from its path relative to the lake root."""
    parts = relative_path.split("/")
    if parts[0] == ROLLUPS and len(parts) > 1:
        return parts[1]
    return parts[0]
