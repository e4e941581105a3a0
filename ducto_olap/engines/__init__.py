"""The lake engines: the five questions answered from the exported Parquet lake.

Example:
    >>> from ducto_olap.engines import open_analytics
    >>> engine = open_analytics("data/lake", engine="polars")
    >>> engine.spend_by_model(start, end)
"""

from __future__ import annotations

from pathlib import Path

from ducto_olap.engines.base import LakeAnalytics
from ducto_olap.engines.duckdb_engine import DuckDBAnalytics
from ducto_olap.engines.polars_engine import PolarsAnalytics
from ducto_olap.errors import ConfigError
from ducto_olap.lake import LakeLayout

ENGINES: dict[str, type[LakeAnalytics]] = {
    DuckDBAnalytics.engine: DuckDBAnalytics,
    PolarsAnalytics.engine: PolarsAnalytics,
}


def open_analytics(lake: LakeLayout | str | Path, engine: str = "duckdb") -> LakeAnalytics:
    """The five questions over ``lake`` on the named engine (``duckdb`` or ``polars``).

    Raises:
        ConfigError: ``engine`` is not one of :data:`ENGINES`.
        LakeError: the lake folder does not exist; run ``ducto-olap export`` first.
    """
    try:
        engine_class = ENGINES[engine]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}"
        ) from None
    return engine_class(lake)


__all__ = ["ENGINES", "DuckDBAnalytics", "LakeAnalytics", "PolarsAnalytics", "open_analytics"]
