"""The lake: Hive-partitioned Parquet files and the commit log that says which count."""

from ducto_olap.lake.commit_log import (
    CommitRecord,
    FileEntry,
    LakeSnapshot,
    init_lake,
    read_snapshot,
    write_commit,
)
from ducto_olap.lake.layout import (
    LAKE_SCHEMA,
    ROLLUP_SCHEMAS,
    SCHEMA_VERSION,
    SPEND_BY_MODEL_DAY,
    SPEND_BY_USER_DAY,
    SPEND_BY_USER_WEEK,
    TRANSACTIONS,
    LakeLayout,
    partition_date,
)

__all__ = [
    "LAKE_SCHEMA",
    "ROLLUP_SCHEMAS",
    "SCHEMA_VERSION",
    "SPEND_BY_MODEL_DAY",
    "SPEND_BY_USER_DAY",
    "SPEND_BY_USER_WEEK",
    "TRANSACTIONS",
    "CommitRecord",
    "FileEntry",
    "LakeLayout",
    "LakeSnapshot",
    "init_lake",
    "partition_date",
    "read_snapshot",
    "write_commit",
]
