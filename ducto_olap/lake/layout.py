"""Where things live in a lake folder, and the Arrow schema of its Parquet files.

::

    <lake>/transactions/date=YYYY-MM-DD/<commit>-<n>-<tag>.parquet
    <lake>/_ducto/commits/<commit_id>.json    one record per landed commit
    <lake>/_ducto/staging/                    files being written, not yet renamed
    <lake>/_ducto/shell.sql                   init script for DuckDB shells

The ``date`` partition is the UTC date of ``created_at``. It is not stored
inside the files: engines read it from the path (Hive partitioning).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa

SCHEMA_VERSION = 1

TRANSACTIONS = "transactions"
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


class LakeLayout:
    """The paths of one lake folder; creates nothing by itself."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().absolute()

    @property
    def transactions_dir(self) -> Path:
        return self.root / TRANSACTIONS

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

    def partition_dir(self, day: date) -> Path:
        return self.transactions_dir / f"{PARTITION_KEY}={day.isoformat()}"

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
