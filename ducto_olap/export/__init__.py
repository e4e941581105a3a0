"""The exporter: committed ledger rows into the lake, exactly once, in bounded memory."""

from ducto_olap.export.compact import CompactResult, compact
from ducto_olap.export.exporter import FAULT_POINTS, Exporter, ExportResult, InjectedFailure

__all__ = [
    "FAULT_POINTS",
    "CompactResult",
    "ExportResult",
    "Exporter",
    "InjectedFailure",
    "compact",
]
