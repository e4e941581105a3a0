"""``ducto-olap seed``: write a deterministic synthetic ledger into PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from ducto_olap.cli.common import dsn_option, format_option, handle_errors
from ducto_olap.cli.main import cli
from ducto_olap.cli.output import echo, render
from ducto_olap.errors import ConfigError
from ducto_olap.store.embedded import resolve_store_dsn
from ducto_olap.synth import DEFAULT_MODELS, seed_ledger


@cli.command("seed")
@click.option(
    "--rows",
    type=click.IntRange(min=0),
    default=100_000,
    show_default=True,
    help="Ledger rows to write.",
)
@click.option(
    "--users",
    type=click.IntRange(min=1),
    default=1_000,
    show_default=True,
    help="Distinct users (spend is Zipf-skewed, so the tail may not appear).",
)
@click.option(
    "--days",
    type=click.IntRange(min=1, max=36_500),
    default=90,
    show_default=True,
    help="Days the ledger spans, ending at --end.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=-(2**63), max=2**63 - 1),
    default=42,
    show_default=True,
    help="The same seed and sizes give the same ledger.",
)
@click.option(
    "--models",
    default=None,
    help=f"Comma-separated model names, most used first "
    f"[default: {DEFAULT_MODELS[0]}, {DEFAULT_MODELS[1]} and {len(DEFAULT_MODELS) - 2} more].",
)
@click.option(
    "--end",
    default=None,
    metavar="ISO",
    help="Exclusive end of the ledger (a date or datetime; no offset means UTC) "
    "[default: the start of the current UTC day].",
)
@dsn_option
@format_option
@handle_errors
def seed(
    rows: int,
    users: int,
    days: int,
    seed: int,
    models: str | None,
    end: str | None,
    dsn: str | None,
    fmt: str,
) -> None:
    """Append a synthetic ledger of --rows rows, generated inside PostgreSQL.

    About 90% of the rows are spend; the rest are refunds, purchases,
    adjustments and a few positive usage rows. Run it on an empty database
    for a ledger of exactly these rows.

    \b
    Example:
      ducto-olap seed --rows 1000000 --users 10000 --days 90 --seed 7
      ducto-olap seed --rows 5000 --end 2025-06-01 --format json
    """
    names = (
        DEFAULT_MODELS if models is None else [m.strip() for m in models.split(",") if m.strip()]
    )
    if not names:
        raise ConfigError(f"--models {models!r} names no model; give comma-separated names")
    end_at = _parse_end(end)
    try:
        (end_at or datetime.now(UTC)) - timedelta(days=days)
    except OverflowError:
        raise ConfigError(f"--days {days} before --end reaches before the year 1") from None

    summary = seed_ledger(
        resolve_store_dsn(dsn),
        rows=rows,
        users=users,
        days=days,
        seed=seed,
        models=names,
        end=end_at,
    )
    echo(render([summary.to_dict()], fmt, single=True, title="seeded"))


def _parse_end(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise ConfigError(
            f"--end {text!r} is not an ISO date or datetime; use for example 2025-06-01"
        ) from error
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
