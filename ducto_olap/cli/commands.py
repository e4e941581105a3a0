"""Imports every command module so each registers itself on the ``cli`` group."""

# One line per command module, in the order of the flow.
from ducto_olap.cli import seed_cmd  # noqa: F401
from ducto_olap.cli import export_cmd  # noqa: F401
from ducto_olap.cli import report_cmd  # noqa: F401
from ducto_olap.cli import sql_cmd  # noqa: F401
from ducto_olap.cli import query_cmd  # noqa: F401
