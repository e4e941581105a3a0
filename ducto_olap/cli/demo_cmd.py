"""``ducto-olap demo``: the main job end to end on a sample ledger."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from ducto_olap import demo
from ducto_olap.cli.common import dsn_option, format_option, handle_errors, not_empty
from ducto_olap.cli.main import cli
from ducto_olap.cli.output import echo
from ducto_olap.cli.query_cmd import render_answer
from ducto_olap.settings import data_home, mask_dsn


def _say(message: str) -> None:
    click.echo(message, err=True)


@cli.command("demo")
@dsn_option
@click.option(
    "--lake",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    callback=not_empty,
    help="Lake folder of the demo, rebuilt on every run [default data/demo-lake].",
)
@click.option("--users", type=click.IntRange(1, 1000), default=3, show_default=True)
@click.option("--days", type=click.IntRange(1, 366), default=7, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True, help="Seed of the amounts.")
@format_option
@handle_errors
def demo_command(
    dsn: str | None, lake: str | None, users: int, days: int, seed: int, fmt: str
) -> None:
    """Seed a sample ledger, export it to a lake and answer the five questions.

    Uses the embedded PostgreSQL server (or --dsn) with a database of its own,
    ducto_olap_demo, and a lake of its own; both are rebuilt on every run, so
    your real ledger and lake are never touched. The answers come from DuckDB;
    Polars and Postgres must give identical ones or the demo fails.

    \b
    Examples:
      ducto-olap demo
      ducto-olap demo --format json
      ducto-olap demo --users 10 --days 30 --seed 7
    """
    from ducto_olap.engines import DuckDBAnalytics, PolarsAnalytics
    from ducto_olap.export import Exporter
    from ducto_olap.store.embedded import resolve_store_dsn
    from ducto_olap.store.postgres import PostgresStore

    scenario = demo.Scenario(users=users, days=days, seed=seed)
    lake_path = str(Path(lake).absolute() if lake else data_home() / "demo-lake")

    server, seconds = demo.timed(lambda: resolve_store_dsn(dsn))
    demo.reset_lake(Path(lake_path))
    demo_dsn = demo.recreate_database(server)
    _say(f"PostgreSQL at {mask_dsn(server)} ({seconds:.1f} s), demo database {demo.DEMO_DATABASE}")

    with PostgresStore(demo_dsn, max_connections=2) as store:
        store.setup()
        spent, seconds = demo.timed(lambda: demo.seed(store, scenario))
        _say(
            f"seeded {scenario.users} users x {scenario.days} days: {spent} reserve-then-deduct "
            f"spends ({seconds:.1f} s)"
        )
        result = Exporter(demo_dsn, lake_path, progress=False).run()
        _say(f"exported {result.rows} rows in {result.files} files to {lake_path}")

        end = datetime.now(UTC)
        start = end - timedelta(days=max(30, days + 1))
        with DuckDBAnalytics(lake_path) as duck, PolarsAnalytics(lake_path) as polars:
            reference = demo.answers(duck, start, end)
            demo.compare(
                reference,
                {
                    "polars": demo.answers(polars, start, end),
                    "postgres": demo.answers(store, start, end),
                },
            )

    if fmt == "json":
        # One JSON document, keyed by question, so the output parses as a whole.
        documents = {
            name: json.loads(render_answer(name, answer, fmt)) for name, answer in reference.items()
        }
        echo(json.dumps(documents, indent=2, ensure_ascii=False) + "\n")
    else:
        for question, answer in reference.items():
            # CSV has no titles: a comment line names each table.
            heading = f"# {question}\n" if fmt == "csv" else ""
            echo(heading + render_answer(question, answer, fmt, title=question) + "\n")
    _say("Polars and Postgres gave identical answers to all five questions.")
    _say(f"Next: ducto-olap query spend-by-model --lake {lake_path}")
