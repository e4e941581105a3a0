"""What every command shares: the lake/DSN/format options and error handling.

Exit codes: 0 success, 1 a runtime or data error (one line ``error: ...`` on
stderr), 2 a usage error (click's own). ``--debug`` shows the traceback.
"""

from __future__ import annotations

import functools
import logging
import sys
import traceback
from collections.abc import Callable
from typing import IO, Any, TypeVar

import click

from ducto_olap.cli.output import FORMATS
from ducto_olap.errors import ConfigError, DuctoError, WindowError
from ducto_olap.settings import mask_dsn

F = TypeVar("F", bound=Callable[..., Any])


def not_empty(context: click.Context, parameter: click.Parameter, value: str | None) -> Any:
    # An empty flag is most often an unset shell variable (--dsn "$DSN" in a cron
    # line): falling back to the defaults would read or write the wrong ledger.
    if value is not None and not value.strip():
        raise click.BadParameter("is empty; pass a value, or leave the option out for the default")
    return value


lake_option = click.option(
    "--lake",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    callback=not_empty,
    help="Lake folder [env DUCTO_OLAP_LAKE; default data/lake].",
)
dsn_option = click.option(
    "--dsn",
    default=None,
    callback=not_empty,
    help="PostgreSQL DSN [env DUCTO_OLAP_DSN; default: the embedded server in data/pg].",
)
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format.",
)


class CommandError(click.ClickException):
    """A runtime or data error: exit code 1 and one line ``error: ...`` on stderr."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", file=file or sys.stderr)


class UsageError(CommandError):
    """A bad option value: exit code 2, like click's own usage errors."""

    exit_code = 2


def fail(message: str) -> None:
    """Stop the command with exit code 1 and one line on stderr."""
    raise CommandError(message)


def handle_errors(command: F) -> F:
    """Turn project and driver errors into one ``error: ...`` line and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            # click itself ends a closed pipe (`| head`) quietly.
            raise
        except Exception as error:
            if _debug_enabled():
                # The traceback too may quote a DSN (libpq echoes a malformed one).
                click.echo(mask_dsn(traceback.format_exc()), err=True, nl=False)
                raise click.exceptions.Exit(1) from error
            # A malformed window, zone or setting is the caller's input: a usage error.
            kind = UsageError if isinstance(error, WindowError | ConfigError) else CommandError
            raise kind(one_line(error)) from error

    return wrapper  # type: ignore[return-value]


def one_line(error: BaseException) -> str:
    """The first line of an error's message, prefixed with its kind if it is not ours.

    Any password in it is masked: libpq quotes a malformed DSN whole.
    """
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if not isinstance(error, DuctoError):
        text = f"{type(error).__name__}: {text}"
    return mask_dsn(text)


def _debug_enabled() -> bool:
    context = click.get_current_context(silent=True)
    root = context.find_root() if context is not None else None
    return bool(root is not None and root.obj and root.obj.get("debug"))


def configure_logging(verbose: int, quiet: bool) -> None:
    """Only the CLI configures handlers; the library logs to ``ducto_olap`` silently."""
    levels = {0: logging.WARNING, 1: logging.INFO}
    level = logging.ERROR if quiet else levels.get(verbose, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    package = logging.getLogger("ducto_olap")
    package.handlers[:] = [handler]
    package.setLevel(level)
