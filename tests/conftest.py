"""Shared fixtures for the mpg CLI tests: a CliRunner, an ``invoke`` helper and a user-preset folder."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Callable

import pytest
import typer.main
import typer.testing
from typer.testing import CliRunner

from harness import profile_from_env
from mpg_cli.cli import app


def pytest_configure(config: pytest.Config) -> None:
    """Load the Hypothesis profile the environment names (harness.py), unless --hypothesis-profile chose one."""
    from hypothesis import settings

    if not config.getoption("hypothesis_profile", None):
        settings.load_profile(profile_from_env())


@pytest.fixture(scope="session", autouse=True)
def no_terminal_size_from_the_environment() -> Any:
    """No $COLUMNS/$LINES from the shell that started pytest (pytest-xdist workers get COLUMNS=80, LINES=24): table
    widths in tests come from what each test sets, so a developer's terminal cannot change a result."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("COLUMNS", raising=False)
        mp.delenv("LINES", raising=False)
        yield


@pytest.fixture(scope="session")
def isolated_config_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty XDG config home, so a developer's ~/.config/mpg presets never leak into CLI tests."""
    return tmp_path_factory.mktemp("xdg-config")


@pytest.fixture
def runner(isolated_config_home: Path) -> CliRunner:
    """A CliRunner with a wide terminal, no colour and no user preset directories.

    Typer 0.29's CliRunner always keeps stderr apart from stdout (``result.stdout``,
    ``result.stderr``; ``result.output`` is the two interleaved).
    """
    return CliRunner(env={
        "COLUMNS": "200", "LINES": "50", "NO_COLOR": "1", "TERM": "dumb",
        "MPG_PRESETS": None, "XDG_CONFIG_HOME": str(isolated_config_home),
    })


@functools.lru_cache(maxsize=None)
def _click_command(typer_app: Any) -> Any:
    """Typer rebuilds the Click command on every ``CliRunner.invoke`` (~40 ms); build it once per session."""
    return typer.main.get_command(typer_app)


@pytest.fixture
def invoke(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``invoke('estimate', '-m', 'gpt3-175b')`` runs the app; unexpected exceptions propagate (no hidden tracebacks)."""
    monkeypatch.setattr(typer.testing, "_get_command", _click_command)

    def _invoke(*args: Any, **kwargs: Any):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, **kwargs)

    return _invoke


@pytest.fixture
def invoke_json(invoke: Callable[..., Any]) -> Callable[..., dict]:
    """Run ``mpg <args> --format json``, assert exit 0 and return the parsed document."""

    def _invoke_json(*args: Any) -> dict:
        res = invoke(*args, "--format", "json")
        assert res.exit_code == 0, res.stderr
        return json.loads(res.stdout)

    return _invoke_json


@pytest.fixture
def tmp_presets(tmp_path: Path) -> Path:
    """A temporary preset directory with empty models/, gpus/ and clusters/ subfolders."""
    root = tmp_path / "presets"
    for kind in ("models", "gpus", "clusters"):
        (root / kind).mkdir(parents=True)
    return root


@pytest.fixture(scope="session")
def json_once(isolated_config_home: Path) -> Callable[..., dict]:
    """``json_once('estimate', ...)``: the parsed ``--format json`` document of a read-only command, computed once
    per session and shared (a deep copy each time). Only for commands that read built-in presets and write
    nothing: several tests check one slow answer (e.g. the --days solve of the README) without running it twice."""
    import copy

    cache: dict[tuple[str, ...], dict] = {}
    runner = CliRunner(env={"COLUMNS": "200", "LINES": "50", "NO_COLOR": "1", "TERM": "dumb", "MPG_PRESETS": None,
                            "XDG_CONFIG_HOME": str(isolated_config_home)})

    def _json_once(*args: Any) -> dict:
        argv = tuple(str(a) for a in args) + ("--format", "json")
        if argv not in cache:
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(typer.testing, "_get_command", _click_command)
                res = runner.invoke(app, list(argv), catch_exceptions=False)
            assert res.exit_code == 0, res.stderr
            cache[argv] = json.loads(res.stdout)
        return copy.deepcopy(cache[argv])

    return _json_once
