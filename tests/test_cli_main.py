"""The console script's own error handling: every usage error is one ``error:`` line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

_SCRIPT = "from ducto_olap.cli.main import main; main()"


def run(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT, *arguments],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["query", "spend-by-user", "--limit", "-1"],
            "error: Invalid value for '--limit': -1 is not in the range 0<=x<=2147483647 "
            "(see 'ducto-olap query --help')",
        ),
        (["query", "nonsense"], "error: Invalid value for 'NAME': 'nonsense' is not one of"),
        (["query", "top-users", "--engine", "spark"], "error: Invalid value for '--engine'"),
        (["frobnicate"], "error: No such command 'frobnicate' (see 'ducto-olap --help')"),
        (
            ["export", "-vv"],
            "error: No such option '-v' here; put it before the command: ducto-olap -v ...",
        ),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(
    arguments: list[str], message: str, tmp_path: Path
) -> None:
    done = run(*arguments, cwd=tmp_path)

    assert done.returncode == 2
    assert done.stderr.startswith(message), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == ""


def test_help_and_version_still_exit_0(tmp_path: Path) -> None:
    assert run("--help", cwd=tmp_path).returncode == 0
    version = run("--version", cwd=tmp_path)
    assert version.returncode == 0 and "ducto-olap" in version.stdout
