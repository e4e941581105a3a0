"""Where a command finds its ledger and its lake.

Layering, first match wins: the explicit argument (a CLI flag), then the
environment (``DUCTO_OLAP_DSN``, ``DUCTO_OLAP_LAKE``, ``DUCTO_OLAP_HOME``), then
the defaults: an embedded PostgreSQL server under ``data/pg`` and a lake at
``data/lake``, both relative to the current directory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ENV_DSN = "DUCTO_OLAP_DSN"
ENV_LAKE = "DUCTO_OLAP_LAKE"
ENV_HOME = "DUCTO_OLAP_HOME"


def _environment(name: str) -> str | None:
    # An empty or blank variable counts as unset, as shells and most tools treat it.
    value = os.environ.get(name, "")
    return value if value.strip() else None


def data_home() -> Path:
    """The folder of local state: ``$DUCTO_OLAP_HOME`` or ``./data``."""
    return Path(_environment(ENV_HOME) or "data").expanduser().absolute()


def resolve_dsn(dsn: str | None = None) -> str | None:
    """The DSN to use, or None for the embedded server."""
    return dsn or _environment(ENV_DSN)


def resolve_lake(lake: str | Path | None = None) -> Path:
    """The lake folder to use."""
    chosen = lake or _environment(ENV_LAKE) or data_home() / "lake"
    return Path(chosen).expanduser().absolute()


def embedded_pgdata() -> Path:
    """The data folder of the default embedded server."""
    return data_home() / "pg"


_PASSWORD_IN_URI = re.compile(r"(://[^:/@]*:)([^@]*)(@)")
_PASSWORD_KEYWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


def mask_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ``***``, safe to print or log."""
    masked = _PASSWORD_IN_URI.sub(r"\1***\3", dsn)
    return _PASSWORD_KEYWORD.sub(r"\1***", masked)
