"""mpg_cli/coercion.py: the cheap option coercion returns what Typer's own does, and spares estimate pydantic."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

typer_coercion = pytest.importorskip("typer._coercion")  # Typer >= 0.29 (older Typer: install is a no-op)

from mpg_cli.cli import app  # noqa: E402
from mpg_cli.coercion import LazyRuntimeParam, install  # noqa: E402

SAMPLES = [None, "", "0", "1", "007", "12", "1000000", "10000001", "-1", "+2", " 3", "1_000", "1.5", "0.5", "1e3",
           "1E-5", "2.", ".5", "1e400", "nan", "inf", "abc", "table", "json", "JSON", "fsdp", "none", "full",
           "bf16", "fp8", "adam8bit", "fa3", "auto", "true", "1" * 40, 0, 1, 3, 7, 0.0, 0.5, 0.8, 1.0, 2.5,
           float("inf"), True, False, ("a",), ("a", "b"), (), ["x"], (1,)]


def _outcome(rp, value, param, ctx):
    """What coercing ``value`` gives: ('ok', value, type) or ('error', message)."""
    try:
        out = rp.coerce(value, param=param, ctx=ctx)
    except Exception as exc:  # noqa: BLE001 - the error class and message are compared
        return ("error", type(exc).__name__, str(exc))
    return ("ok", repr(out), type(out))  # repr: nan equals nan


def _params():
    """Every Typer parameter of every mpg command (and the group), with a context to coerce in."""
    from typer._click import Context
    from typer.main import get_command

    group = get_command(app)
    gctx = Context(group, info_name="mpg")
    out = [(p, gctx) for p in group.get_params(gctx)]
    for name, cmd in group.commands.items():
        ctx = Context(cmd, info_name=name, parent=gctx)
        out += [(p, ctx) for p in cmd.get_params(ctx)]
    return [(p, c) for p, c in out if hasattr(p, "type_descriptor")]


def test_fast_coercion_matches_typer_for_every_option():
    """For every option of every command and many values (valid, out of range, malformed), the lazy
    coercion returns the same value and type as Typer's pydantic adapter, or raises the same error."""
    params = _params()
    assert len(params) > 200
    compared = 0
    for param, ctx in params:
        real = typer_coercion.build_runtime_param(param.type_descriptor)
        lazy = LazyRuntimeParam(param.type_descriptor)
        defaults = [param.default] if param.default is not None else []
        for value in SAMPLES + defaults:
            want = _outcome(real, value, param, ctx)
            got = _outcome(lazy, value, param, ctx)
            assert got == want, (param.name, value)
            compared += 1
    assert compared > 10_000


def test_defaults_and_plain_values_need_no_adapter():
    """None, every option's default, and plain numbers and choice names are converted without Typer's adapter."""
    plain = {"int": "1", "float": "1", "str": "abc", "Fmt": "json", "Recompute": "full", "Precision": "bf16"}
    for param, ctx in _params():
        lazy = LazyRuntimeParam(param.type_descriptor)
        ann = getattr(param.type_descriptor.annotation, "__name__", "")
        values = [None, param.default] + ([plain[ann]] if ann in plain and not param.multiple else [])
        for value in values:
            lazy.coerce(value, param=param, ctx=ctx)
        assert lazy._real is None, (param.name, values)


def test_install_keeps_a_built_runtime_param():
    """install() only fills parameters whose runtime parameter is not built yet."""
    param, _ = _params()[0]
    built = typer_coercion.build_runtime_param(param.type_descriptor)
    param._runtime_param = built
    install([param])
    assert param._runtime_param is built
    param._runtime_param = None
    install([param])
    assert isinstance(param._runtime_param, LazyRuntimeParam)


def test_estimate_json_imports_neither_pydantic_nor_rich():
    """A fixed-layout `mpg estimate --format json` runs without importing pydantic or rich (start-up time)."""
    code = ("import sys\n"
            "from mpg_cli.cli import app\n"
            "try:\n"
            "    app(['estimate', '--tp', '8', '--pp', '4', '--zero', '1', '--micro-batch', '1', '--recompute', 'none',"
            " '--format', 'json'])\n"
            "except SystemExit as e:\n"
            "    assert e.code == 0, e.code\n"
            "sys.stderr.write(repr(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'rich'))))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["command"] == "estimate"
    assert done.stderr.strip() == "[]"


def test_bad_value_keeps_typers_message():
    """A value the fast path does not take still gets Typer's own error and exit code 2."""
    from typer.testing import CliRunner

    res = CliRunner().invoke(app, ["estimate", "--tp", "0"])
    assert res.exit_code == 2
    assert "--tp" in res.output and "greater than or equal to 1" in res.output


def test_other_runtime_param_attributes_come_from_typer():
    """An attribute the lazy parameter does not define is Typer's own runtime parameter's (a later Typer's API)."""
    param, _ = _params()[0]
    lazy = LazyRuntimeParam(param.type_descriptor)
    real = typer_coercion.build_runtime_param(param.type_descriptor)
    assert type(lazy.real()) is type(real)
    assert lazy.coerce is not None and type(getattr(lazy, "adapter", None)) is type(getattr(real, "adapter", None))
