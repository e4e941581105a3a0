"""Shared fixtures: one real PostgreSQL server per test session, a fresh database per test.

The server is the embedded one from PyPI unless ``DUCTO_OLAP_TEST_DSN`` points at
another. No database is ever mocked.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from ducto_olap.store.embedded import embedded_dsn
from ducto_olap.store.postgres import PostgresStore


@pytest.fixture(autouse=True)
def hermetic_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the developer's settings nor write into ./data."""
    for name in list(os.environ):
        if name.startswith("DUCTO_OLAP_") and name != "DUCTO_OLAP_TEST_DSN":
            monkeypatch.delenv(name)
    monkeypatch.setenv("DUCTO_OLAP_HOME", str(tmp_path / "home"))


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The CLI configures the ``ducto_olap`` logger; undo it after each test."""
    package = logging.getLogger("ducto_olap")
    saved = (list(package.handlers), package.level, package.propagate)
    yield
    package.handlers[:], package.level, package.propagate = saved


@pytest.fixture(scope="session")
def server_dsn() -> Iterator[str]:
    """The DSN of the session's PostgreSQL server (maintenance database)."""
    external = os.environ.get("DUCTO_OLAP_TEST_DSN")
    if external:
        yield external
        return

    folder = Path(tempfile.mkdtemp(prefix="ducto-test-pg-"))
    try:
        yield embedded_dsn(folder)
    finally:
        from ducto_olap.store.embedded import cleanup

        cleanup(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def database_dsn(server_dsn: str) -> Iterator[str]:
    """A DSN of a new, empty database, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = psycopg.conninfo.make_conninfo(server_dsn, dbname=name)
    try:
        yield dsn
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def store(database_dsn: str) -> Iterator[PostgresStore]:
    """A PostgresStore on a fresh database with its schema set up."""
    pg_store = PostgresStore(database_dsn)
    pg_store.setup()
    try:
        yield pg_store
    finally:
        pg_store.close()
