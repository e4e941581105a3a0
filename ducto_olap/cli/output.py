"""Printing data: ``--format table|json|csv`` for every data command.

JSON writes amounts as strings so no digit is lost; CSV writes them as plain
decimal text. Tables go through rich and fit the terminal.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

FORMATS = ("table", "json", "csv")


def plain(value: Any) -> Any:
    """A JSON-safe value: Decimals and dates as strings."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def row_dicts(rows: Any) -> list[dict[str, Any]]:
    """Dicts from a ``Rows`` list, a single dataclass row, or a list of dicts."""
    if dataclasses.is_dataclass(rows) and not isinstance(rows, type):
        return [dataclasses.asdict(rows)]
    if hasattr(rows, "to_dicts"):
        return list(rows.to_dicts())
    return [dict(row) for row in rows]


def render(
    records: list[dict[str, Any]],
    fmt: str,
    *,
    columns: Sequence[str] | None = None,
    single: bool = False,
    title: str | None = None,
) -> str:
    """Text for ``records`` in ``fmt``; ``single`` prints one JSON object, not a list."""
    names = list(columns) if columns is not None else (list(records[0]) if records else [])
    if fmt == "json":
        values = [{key: plain(record[key]) for key in names} for record in records]
        payload: Any = values[0] if single and values else ({} if single else values)
        return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(names)
        for record in records:
            writer.writerow(["" if record[key] is None else plain(record[key]) for key in names])
        return buffer.getvalue()
    return _table(records, names, title)


def echo(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _table(records: list[dict[str, Any]], names: list[str], title: str | None) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    for name in names:
        numeric = bool(records) and isinstance(records[0][name], int | Decimal)
        # Amounts and headers never fold: a number split over two lines reads wrong.
        table.add_column(
            name,
            justify="right" if numeric else "left",
            no_wrap=numeric,
            overflow="fold",
            min_width=len(name),
        )
    for record in records:
        table.add_row(*(_cell(record[name]) for name in names))

    console = Console(file=io.StringIO(), width=_width(), color_system=None, highlight=False)
    console.print(table)
    if not records:
        console.print("(no rows)")
    output = console.file
    assert isinstance(output, io.StringIO)
    return output.getvalue()


def _cell(value: Any) -> str:
    from rich.markup import escape

    return "NULL" if value is None else escape(str(plain(value)))


def _width() -> int:
    import shutil

    # Piped output has no width to respect: never fold it.
    if not sys.stdout.isatty():
        return 10_000
    return max(80, shutil.get_terminal_size((120, 24)).columns)
