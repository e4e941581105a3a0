"""Imports every command module so each registers itself on the ``cli`` group."""

# ruff: noqa: F401
from ducto_olap.cli import (
    demo_cmd,
    export_cmd,
    query_cmd,
    report_cmd,
    seed_cmd,
    sql_cmd,
)
