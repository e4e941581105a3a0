"""What a benchmark ran on: the machine, the library versions, the Postgres server."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

import psutil
import psycopg

_PACKAGES = ("duckdb", "polars", "pyarrow", "psycopg", "adbc-driver-postgresql", "ducto-olap")


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model, OS and the versions of Python and the engines."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python_executable": sys.executable,
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
        "versions": versions,
    }


def postgres_version(dsn: str) -> str:
    """The server's ``version()`` string."""
    with psycopg.connect(dsn) as connection:
        row = connection.execute("SELECT version()").fetchone()
    return str(row[0]) if row else ""


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
