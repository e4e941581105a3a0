"""The demo: the notebook's scenario seeded, exported and asked on every engine.

It writes into a database of its own (``ducto_olap_demo``) on the chosen server
and a lake of its own (``data/demo-lake``), both rebuilt on every run, so it can
be run any number of times and never touches a real ledger or lake.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ducto_olap.errors import ConfigError, DatabaseError, DuctoError
from ducto_olap.models import CreditMetadata
from ducto_olap.questions import SpendQuestions
from ducto_olap.store.postgres import PostgresStore

DEMO_DATABASE = "ducto_olap_demo"
MODELS = ("gpt-4o", "claude-sonnet-4", "claude-haiku-3.5")
STARTING_CREDITS = 100_000


@dataclasses.dataclass(frozen=True)
class Scenario:
    """The notebook's scenario: each user gets credits, then spends once a day."""

    users: int = 3
    days: int = 7
    seed: int = 42


class DemoMismatch(DuctoError):
    """Two sources gave different answers to the same question."""


def recreate_database(server_dsn: str, name: str = DEMO_DATABASE) -> str:
    """Drop and create the demo database on the server of ``server_dsn``; return its DSN."""
    try:
        with psycopg.connect(server_dsn, autocommit=True) as connection:
            identifier = sql.Identifier(name)
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier)
            )
            connection.execute(sql.SQL("CREATE DATABASE {}").format(identifier))
    except psycopg.Error as error:
        raise DatabaseError(
            f"could not recreate the demo database {name!r}: {error}; the demo needs a role "
            f"that may create databases"
        ) from error
    return psycopg.conninfo.make_conninfo(server_dsn, dbname=name)


# Written into every demo lake, so a later run knows the folder is its own.
DEMO_MARK = "_ducto/demo-lake"


def reset_lake(lake: Path) -> None:
    """Remove a previous demo lake so the run starts clean, and mark the new one.

    Only a folder that does not exist, is empty, or was made by an earlier demo
    is touched: anything else might be someone's real lake or files.

    Raises:
        ConfigError: the folder holds something other than a demo lake.
    """
    lake = lake.absolute()
    if Path.cwd().absolute().is_relative_to(lake):
        raise ConfigError(
            f"the demo lake {lake} holds the current folder; give --lake a folder of its own"
        )
    if lake.exists():
        if not lake.is_dir() or (any(lake.iterdir()) and not (lake / DEMO_MARK).is_file()):
            raise ConfigError(
                f"{lake} is not empty and not a demo lake; the demo rebuilds its lake on every "
                f"run, so give it a new or empty folder with --lake"
            )
        shutil.rmtree(lake)

    try:
        (lake / DEMO_MARK).parent.mkdir(parents=True)
        (lake / DEMO_MARK).write_text("made by ducto-olap demo; rebuilt on every run\n")
    except OSError as error:
        raise ConfigError(
            f"cannot make the demo lake {lake}: {error.strerror or error}; "
            f"give --lake a folder you can write"
        ) from error


def seed(store: PostgresStore, scenario: Scenario, now: datetime | None = None) -> int:
    """Write the scenario through the store's two-phase API; returns the spend rows written.

    Day ``d`` of the scenario is ``d`` days before ``now``, so the daily breakdown
    has one row per day.
    """
    chance = random.Random(scenario.seed)
    moment = (now or datetime.now(UTC)) - timedelta(minutes=1)
    users = [str(uuid.UUID(int=chance.getrandbits(128), version=4)) for _ in range(scenario.users)]

    # The credits arrive a day before the first spend, so the ledger reads in order.
    granted = moment - timedelta(days=scenario.days)
    spent = 0
    for user in users:
        store.add_credits(user, STARTING_CREDITS, type="adjustment", created_at=granted)
        for day in range(scenario.days):
            amount = chance.randint(100, 2_000)
            model = chance.choice(MODELS)
            hold = store.reserve_credits(user, amount, operation_type="inference")
            store.deduct_credits(
                user,
                hold.reservation_id,
                amount,
                metadata=CreditMetadata(model=model),
                created_at=moment - timedelta(days=day),
            )
            spent += 1
    return spent


def answers(source: SpendQuestions, start: datetime, end: datetime) -> dict[str, Any]:
    """The five answers of one source, keyed by question name."""
    return {
        "spend-by-user": source.spend_by_user(start, end),
        "spend-by-model": source.spend_by_model(start, end),
        "top-users": source.top_users(5, start, end),
        "daily-spend": source.daily_spend(start, end),
        "aggregate-stats": source.aggregate_stats(start, end),
    }


def compare(reference: dict[str, Any], others: dict[str, dict[str, Any]]) -> None:
    """Raise :class:`DemoMismatch` naming the first question two sources disagree on."""
    for source, answer in others.items():
        for question, expected in reference.items():
            if answer[question] != expected:
                raise DemoMismatch(
                    f"{source} disagrees with duckdb on {question}: "
                    f"{answer[question]!r} != {expected!r}"
                )


def timed(step: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = step()
    return result, time.perf_counter() - started
