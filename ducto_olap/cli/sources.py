"""Opening the source a data command asks: a lake engine or the Postgres store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ducto_olap.questions import SpendQuestions

SOURCES = ("duckdb", "polars", "postgres")


@contextmanager
def open_source(engine: str, *, lake: str | None, dsn: str | None) -> Iterator[SpendQuestions]:
    """The five questions on ``engine``: DuckDB or Polars over the lake, or Postgres itself."""
    if engine == "postgres":
        from ducto_olap.store.embedded import resolve_store_dsn
        from ducto_olap.store.postgres import PostgresStore

        with PostgresStore(resolve_store_dsn(dsn), max_connections=1) as store:
            yield store
        return

    from ducto_olap.engines import open_analytics
    from ducto_olap.settings import resolve_lake

    with open_analytics(resolve_lake(lake), engine=engine) as analytics:
        yield analytics
