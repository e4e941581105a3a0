"""DuckDB shells over a lake: the init script, one-off read-only SQL, and the CLI launcher."""

from ducto_olap.shell.launch import find_duckdb_cli, manual_command
from ducto_olap.shell.script import shell_script_text, write_shell_script
from ducto_olap.shell.sql import SqlResult, check_read_only, run_sql

__all__ = [
    "SqlResult",
    "check_read_only",
    "find_duckdb_cli",
    "manual_command",
    "run_sql",
    "shell_script_text",
    "write_shell_script",
]
