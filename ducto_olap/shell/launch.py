"""Finding and starting a DuckDB CLI with a lake's init script.

The CLI is ``duckdb`` on ``PATH``, or the binary of the PyPI package
``duckdb-cli`` (``pip install 'ducto-olap[shell]'``) installed next to this
Python. ``DUCTO_OLAP_DUCKDB_CLI`` names another one explicitly.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import NoReturn

ENV_DUCKDB_CLI = "DUCTO_OLAP_DUCKDB_CLI"

INSTALL_HINT = "pip install 'ducto-olap[shell]'"


def find_duckdb_cli() -> Path | None:
    """The DuckDB CLI to start, or None when none is installed.

    Order: ``$DUCTO_OLAP_DUCKDB_CLI`` (only that one, when set), ``duckdb`` on
    ``PATH``, then the ``duckdb-cli`` package of this Python. When the ``PATH``
    hit is that package's Python wrapper, its binary is started directly: the
    wrapper runs the CLI as a child, and Ctrl-C would kill the shell instead of
    cancelling the query.
    """
    explicit = os.environ.get(ENV_DUCKDB_CLI)
    if explicit:
        chosen = Path(explicit).expanduser()
        return chosen if _is_executable(chosen) else None

    bundled = _bundled_binary()
    found = shutil.which("duckdb") or shutil.which("duckdb", path=str(Path(sys.executable).parent))
    if found is not None and not (bundled is not None and _is_script(Path(found))):
        return Path(found)
    return bundled


def shell_command(cli: Path | str, script: Path) -> list[str]:
    """The argv that opens an interactive shell with ``script`` loaded."""
    return [str(cli), "-init", str(script)]


def manual_command(script: Path) -> str:
    """The line a user types to open the shell themselves, quoted for a POSIX shell."""
    return shlex.join(shell_command("duckdb", script))


def exec_shell(cli: Path, script: Path) -> NoReturn:
    """Replace this process with the DuckDB CLI on ``script`` (never returns).

    Raises:
        OSError: the CLI could not be started.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    argv = shell_command(cli, script)
    os.execv(argv[0], argv)


def _bundled_binary() -> Path | None:
    spec = importlib.util.find_spec("duckdb_cli")
    if spec is None or spec.origin is None:
        return None
    name = "duckdb.exe" if sys.platform == "win32" else "duckdb"
    binary = Path(spec.origin).parent / name
    return binary if _is_executable(binary) else None


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _is_script(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(2) == b"#!"
    except OSError:
        return False
