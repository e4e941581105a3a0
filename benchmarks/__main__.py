"""``python -m benchmarks run|render``: the benchmark suite and its renderer.

Example:
    python -m benchmarks run --rows 1000000 10000000 --repeat 5
    python -m benchmarks render benchmarks/results/warm.json
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from benchmarks import render, suite
from benchmarks.timing import ENGINES
from ducto_olap.questions import QUESTIONS


def _rows_list(
    context: click.Context, parameter: click.Parameter, values: tuple[str, ...]
) -> list[int]:
    return _parse_sizes(values)


def _parse_sizes(values: tuple[str, ...]) -> list[int]:
    sizes = []
    for value in values:
        for part in value.replace(",", " ").split():
            try:
                sizes.append(int(part.replace("_", "")))
            except ValueError:
                raise click.BadParameter(f"{part!r} is not a number of rows") from None
    return sizes


def _engines(context: click.Context, parameter: click.Parameter, value: str) -> tuple[str, ...]:
    chosen = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = [name for name in chosen if name not in ENGINES]
    if unknown:
        raise click.BadParameter(f"unknown engine {unknown[0]!r}; choose from {', '.join(ENGINES)}")
    return chosen


def _when(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Benchmarks of the lake engines against PostgreSQL on a synthetic ledger."""


@main.command()
@click.argument("more_sizes", nargs=-1, metavar="[SIZES]...")
@click.option(
    "--rows",
    "sizes",
    multiple=True,
    callback=_rows_list,
    help="Ledger sizes: --rows 1000000 10000000 [default: 1000000].",
)
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Timed runs per question and engine.",
)
@click.option(
    "--engines",
    default=",".join(ENGINES),
    show_default=True,
    callback=_engines,
    help="Engines to time; Postgres is always timed, it is the reference.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("benchmarks/results"),
    show_default=True,
    help="Output folder.",
)
@click.option(
    "--cold",
    is_flag=True,
    help="Every run in a fresh process (OS page cache as it is); outputs say cold.",
)
@click.option(
    "--dsn",
    default=None,
    help="A PostgreSQL server to create the benchmark databases on "
    "[default: an embedded server in a temporary folder].",
)
@click.option("--users", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=90, show_default=True)
@click.option("--window-days", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--end",
    default=suite.DEFAULT_END.date().isoformat(),
    show_default=True,
    help="Where the ledger and the window end (UTC).",
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the server data and lakes go [default: a temporary folder].",
)
@click.option("--keep", is_flag=True, help="Keep databases, lakes and the work folder.")
def run(
    more_sizes: tuple[str, ...],
    sizes: list[int],
    repeat: int,
    engines: tuple[str, ...],
    out: Path,
    cold: bool,
    dsn: str | None,
    users: int,
    days: int,
    window_days: int,
    seed: int,
    end: str,
    work_dir: Path | None,
    keep: bool,
) -> None:
    """Seed, export and time the five questions on every engine, per ledger size.

    Exits 1 if any engine's answer differs from Postgres's.

    \b
    Example:
      python -m benchmarks run --rows 1000000 10000000 --repeat 5
      python -m benchmarks run --rows 100000 --repeat 3 --cold --out /tmp/bench
    """
    # `--rows 1000000 10000000`: click gives the first to --rows, the rest as arguments.
    sizes = [*sizes, *_parse_sizes(more_sizes)] or [1_000_000]
    config = suite.SuiteConfig(
        sizes=sizes, repeat=repeat, engines=engines, out=out, cold=cold, dsn=dsn,
        users=users, days=days, window_days=window_days, seed=seed, end=_when(end),
        work_dir=work_dir, keep=keep,
    )  # fmt: skip
    payload = suite.run_suite(config, command=["python", "-m", "benchmarks", *sys.argv[1:]])
    click.echo(render.markdown(payload))
    if not payload["ok"]:
        raise click.ClickException("an engine's answer differed from Postgres's; see the JSON")


@main.command("render")
@click.argument("json_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def render_command(json_path: Path) -> None:
    """Render the Markdown table and the chart from a saved run.

    \b
    Example:
      python -m benchmarks render benchmarks/results/warm.json
    """
    table, chart = render.render_file(json_path)
    click.echo(f"wrote {table} and {chart}")


@main.command("cold-one", hidden=True)
@click.option("--engine", type=click.Choice(ENGINES), required=True)
@click.option("--question", type=click.Choice(QUESTIONS), required=True)
@click.option("--dsn", required=True)
@click.option("--lake", type=click.Path(path_type=Path), required=True)
@click.option("--start", required=True)
@click.option("--end", required=True)
def cold_one(engine: str, question: str, dsn: str, lake: Path, start: str, end: str) -> None:
    """One cold measurement, printed as JSON (used by ``run --cold``)."""
    click.echo(suite.cold_one(engine, question, dsn, lake, _when(start), _when(end)))


if __name__ == "__main__":
    main()
