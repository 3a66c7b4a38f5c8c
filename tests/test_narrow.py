"""Start-up: only the command named on the command line is built (mpg_cli/cli.py ``_only``), with the same behaviour."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mpg_cli import cli

NAMES = sorted({cli._name(c) for c in cli.app.registered_commands} | {g.name for g in cli.app.registered_groups})
ARGS = [["--help"], ["--no-such-flag"], ["-n", "x"], ["--format", "xml"]]


def _run(app, args):
    res = CliRunner().invoke(app, args)
    return res.exit_code, res.output


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("args", ARGS, ids=" ".join)
def test_narrowed_app_answers_like_the_full_one(name, args):
    """Help, usage errors and bad values of each command read the same whether or not its siblings were built."""
    assert _run(cli._only(name), [name, *args]) == _run(cli.app, [name, *args])


def test_narrowed_app_holds_only_the_named_command():
    """The narrowed app builds the one command named (or the one group), nothing else."""
    import typer.main

    group = typer.main.get_command(cli._only("estimate"))
    assert sorted(group.commands) == ["estimate"]  # type: ignore[attr-defined]
    assert sorted(typer.main.get_command(cli._only("presets")).commands) == ["presets"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("argv, expected", [
    (["estimate"], True), (["presets", "list"], True), ([], False), (["--help"], False), (["estimat"], False),
    (["--version"], False), (["-m", "estimate"], False),
])
def test_narrowing_only_when_a_command_is_named_first(argv, expected, monkeypatch):
    """Only a known command name first is narrowed; options, typos and no arguments get the whole app."""
    for key in [k for k in __import__("os").environ if k.endswith("_COMPLETE")]:
        monkeypatch.delenv(key)
    assert cli._narrowable(argv) is expected


def test_shell_completion_sees_every_command(monkeypatch):
    """While a shell asks for completions (_MPG_COMPLETE set) nothing is narrowed: the whole app is built."""
    monkeypatch.setenv("_MPG_COMPLETE", "complete_bash")
    assert cli._narrowable(["estimate"]) is False
