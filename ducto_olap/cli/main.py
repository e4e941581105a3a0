"""The ``ducto-olap`` command: a group of verb commands over the ledger and the lake."""

from __future__ import annotations

import sys

import click

from ducto_olap.cli.common import configure_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-v", "--verbose", count=True, help="Log lines on stderr: -v one per unit of work, -vv SQL too."
)
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
@click.version_option(package_name="ducto-olap")
@click.pass_context
def cli(context: click.Context, verbose: int, quiet: bool, debug: bool) -> None:
    """Export a PostgreSQL credit ledger to a Parquet lake and ask it spend questions.

    \b
    Start here:
      ducto-olap demo                      seed, export and query a sample ledger
      ducto-olap export                    export new ledger rows to the lake
      ducto-olap query spend-by-model      ask one of the five questions
    """
    context.ensure_object(dict)
    context.obj["debug"] = debug
    configure_logging(verbose, quiet)


def _register() -> None:
    # Each command lives in its own module; importing it adds it to the group.
    from ducto_olap.cli import commands  # noqa: F401


_GLOBAL_OPTIONS = {"-v", "-vv", "-vvv", "--verbose", "-q", "--quiet", "--debug"}


def _hint(error: click.UsageError) -> str:
    option = getattr(error, "option_name", None)
    if isinstance(error, click.NoSuchOption) and option in _GLOBAL_OPTIONS:
        return f" here; put it before the command: ducto-olap {option} ..."
    if error.ctx is not None:
        return f" (see '{error.ctx.command_path} --help')"
    return ""


def main() -> None:
    """Entry point of the console script.

    Click's own usage errors (a bad option value, an unknown command) are
    printed as one ``error: ...`` line like every other error, not as a usage
    block; Ctrl-C exits 130, as shells expect of an interrupted command.
    """
    _register()
    try:
        code = cli.main(prog_name="ducto-olap", standalone_mode=False)
    except click.UsageError as error:
        click.echo(f"error: {error.format_message().rstrip('.')}{_hint(error)}", err=True)
        sys.exit(error.exit_code)
    except click.ClickException as error:
        click.echo(f"error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except click.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
