"""CLI-level physics properties of 'mpg estimate', checked on its JSON output with Hypothesis.

Small models, small GPU counts and (mostly) a fixed layout keep each invocation in the tens of milliseconds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import typer.main
import typer.testing
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from harness import examples
from typer.testing import CliRunner

from mpg_cli.cli import app

# Example counts per test come from examples(fast, thorough) (harness.py profiles): 2-4 invocations an example.
PROPERTY_SETTINGS: dict[str, Any] = {"deadline": None, "suppress_health_check": [
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow]}
FIXED_LAYOUT = ["--tp", "1", "--pp", "1", "--micro-batch", "1", "--zero", "1", "--recompute", "none"]
MODELS = ["gpt-1.7b", "gpt2-xl", "llama2-7b"]
CLUSTERS = ["dgx-a100", "dgx-h100"]  # --tflops must stay below the dense bf16 peak (312 / 989 TFLOP/s)
_CLICK_COMMAND = typer.main.get_command(app)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Any]]:
    """``cli('estimate', ...)``: run mpg in-process (COLUMNS=200, no user presets); exceptions propagate."""
    config_home = tmp_path_factory.mktemp("xdg-config")
    runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1", "MPG_PRESETS": None,
                            "XDG_CONFIG_HOME": str(config_home)})
    with pytest.MonkeyPatch.context() as mp:
        # Typer rebuilds the Click command on every invoke (~40 ms); build it once
        mp.setattr(typer.testing, "_get_command", lambda _app: _CLICK_COMMAND)
        yield lambda *args: runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def run_json(cli: Callable[..., Any]) -> Callable[..., dict]:
    """``run_json('estimate', ...)``: run with --format json --quiet, assert exit 0 and return strict, parsed JSON."""

    def run(*args: Any) -> dict:
        res = cli(*args, "--format", "json", "--quiet")
        assert res.exit_code == 0, (args, res.stderr)
        assert res.stderr == "", res.stderr  # --quiet: no warnings
        return json.loads(res.stdout, parse_constant=_no_constant)

    return run


def _no_constant(name: str) -> Any:
    raise ValueError(f"NaN/Infinity token {name!r} in JSON output")


def numbers(doc: Any, path: str = "") -> Iterator[tuple[str, float]]:
    """Every int/float in a JSON document (bools excluded), with its dotted path."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from numbers(v, f"{path}.{k}" if path else k)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from numbers(v, f"{path}[{i}]")
    elif isinstance(doc, (int, float)) and not isinstance(doc, bool):
        yield path, doc


# ================================================================ more GPUs, more tokens

@settings(max_examples=examples(15, 400), **PROPERTY_SETTINGS)
@given(model=st.sampled_from(MODELS), cluster=st.sampled_from(CLUSTERS), tflops=st.floats(5.0, 300.0),
       first=st.sampled_from([1, 2, 4, 8]), doublings=st.integers(1, 3),
       tokens=st.sampled_from(["1B", "20B", "300B", "1.4T"]), goodput=st.sampled_from([1.0, 0.9, 0.5]))
def test_more_gpus_never_take_longer_at_fixed_tflops(run_json, model, cluster, tflops, first, doublings, tokens, goodput):
    """With --tflops fixed and a fixed layout, doubling -n never raises time.days (and roughly halves it)."""
    counts = [first * 2 ** k for k in range(doublings + 1)]
    batch = 64  # divisible by every dp = n here (tp = pp = 1)
    days = []
    for n in counts:
        doc = run_json("estimate", "-m", model, "-c", cluster, "-n", n, "--tflops", tflops, "--tokens", tokens,
                       "--goodput", goodput, "--global-batch", batch, *FIXED_LAYOUT)
        assert doc["inputs"]["gpus"] == n and doc["inputs"]["dp"] == n
        days.append(doc["time"]["days"])
    for n, a, b in zip(counts[1:], days, days[1:]):
        assert b <= a * (1 + 1e-12), (counts, days)
        assert b == pytest.approx(a / 2, rel=1e-9), f"n={n}: {days}"  # same FLOPs, twice the GPUs at the same rate


@settings(max_examples=examples(40, 400), **PROPERTY_SETTINGS)
@given(model=st.sampled_from(MODELS), cluster=st.sampled_from(CLUSTERS), n=st.sampled_from([8, 16, 64]))
def test_gpu_list_scaling_days_non_increasing_at_fixed_tflops(run_json, model, cluster, n):
    """'estimate -n N,2N,4N --tflops X' (one scaling run) lists non-increasing days as the GPU count doubles."""
    doc = run_json("estimate", "-m", model, "-c", cluster, "-n", f"{n},{2 * n},{4 * n}", "--tflops", "120",
                   "--tokens", "300B", "--global-batch", 4 * n, *FIXED_LAYOUT)
    assert doc["command"] == "estimate-scaling"
    gpus = [e["inputs"]["gpus"] for e in doc["estimates"]]
    days = [e["time"]["days"] for e in doc["estimates"]]
    assert gpus == [n, 2 * n, 4 * n]
    assert all(b <= a for a, b in zip(days, days[1:])), days
    assert [r["days"] for r in doc["rows"]] == days


@settings(max_examples=examples(12, 400), **PROPERTY_SETTINGS)
@given(model=st.sampled_from(MODELS), cluster=st.sampled_from(CLUSTERS), n=st.sampled_from([1, 8, 16, 32]),
       t1=st.integers(1, 10 ** 6), factor=st.integers(1, 1000), efficiency=st.sampled_from(["model", "tflops", "mfu"]),
       fixed=st.booleans())
def test_more_tokens_never_take_less_time(run_json, model, cluster, n, t1, factor, efficiency, fixed):
    """More --tokens never lower time, GPU-hours or iterations (step-time model, --tflops or --mfu)."""
    eff = {"model": [], "tflops": ["--tflops", "150"], "mfu": ["--mfu", "0.4"]}[efficiency]
    layout = FIXED_LAYOUT if fixed else []
    assume(fixed or model != "llama2-7b" or n >= 8)  # keep the layout search small
    small = run_json("estimate", "-m", model, "-c", cluster, "-n", n, "--tokens", f"{t1}e6", *eff, *layout)
    large = run_json("estimate", "-m", model, "-c", cluster, "-n", n, "--tokens", f"{t1 * factor}e6", *eff, *layout)
    assert large["inputs"]["tokens"] >= small["inputs"]["tokens"]
    for path in (("time", "days"), ("time", "seconds"), ("gpu_hours",), ("time", "iterations")):
        a, b = small, large
        for k in path:
            a, b = a[k], b[k]
        assert b >= a * (1 - 1e-12), (path, a, b)
    # throughput does not depend on the token count
    assert large["throughput"]["tokens_per_second"] == pytest.approx(small["throughput"]["tokens_per_second"], rel=1e-9)


# ================================================================ finite and positive

@settings(max_examples=examples(12, 400), **PROPERTY_SETTINGS)
@given(model=st.sampled_from(MODELS + ["mistral-7b", "mixtral-8x7b"]),
       cluster=st.sampled_from(CLUSTERS + ["ethernet-a100-40gb", "pcie-l40s", "mi300x-8x"]),
       n=st.sampled_from([8, 16, 32, 64]), tokens=st.sampled_from(["chinchilla", "1B", "300B", "15T"]),
       efficiency=st.sampled_from(["model", "model", "mfu"]), goodput=st.sampled_from([1.0, 0.95, 0.5]),
       fixed=st.booleans(), explain=st.booleans(), price=st.sampled_from([None, 0.5, 2.0]))
def test_every_number_finite_and_key_quantities_positive(run_json, model, cluster, n, tokens, efficiency, goodput,
                                                         fixed, explain, price):
    """Every JSON number is finite; days, gpu_hours, tokens/s and memory per GPU are > 0; shares lie in (0, 1]."""
    args = ["estimate", "-m", model, "-c", cluster, "-n", n, "--tokens", tokens, "--goodput", goodput]
    if efficiency == "mfu":
        args += ["--mfu", "0.4"]
    if fixed:
        args += FIXED_LAYOUT
    if explain:
        args.append("--explain")
    if price is not None:
        args += ["--price", price]
    doc = run_json(*args)
    for path, x in numbers(doc):
        assert math.isfinite(x), path
    positive = {
        "time.days": doc["time"]["days"], "time.seconds": doc["time"]["seconds"], "gpu_hours": doc["gpu_hours"],
        "throughput.tokens_per_second": doc["throughput"]["tokens_per_second"],
        "throughput.tokens_per_second_per_gpu": doc["throughput"]["tokens_per_second_per_gpu"],
        "throughput.step_time_s": doc["throughput"]["step_time_s"], "throughput.mfu": doc["throughput"]["mfu"],
        "memory.per_gpu_bytes": doc["memory"]["per_gpu_bytes"], "params.total": doc["params"]["total"],
        "flops.total_model": doc["flops"]["total_model"], "inputs.tokens": doc["inputs"]["tokens"],
    }
    for path, x in positive.items():
        assert isinstance(x, (int, float)) and x > 0, (path, x)
    assert 0 < doc["throughput"]["mfu"] <= doc["throughput"]["hfu"] <= 1.0
    assert doc["memory"]["per_gpu_bytes"] > 0 and doc["memory"]["capacity_bytes"] > 0
    assert doc["memory"]["fits"] == (doc["memory"]["per_gpu_bytes"] <= doc["memory"]["usable_bytes"])
    assert all(v >= 0 for v in doc["memory"]["breakdown"].values())
    if price is not None:
        assert doc["cost_usd"] == pytest.approx(doc["gpu_hours"] * price, rel=1e-9)
    if explain and efficiency == "model":
        parts = doc["step_time_breakdown_s"]
        assert all(v >= 0 for v in parts.values()), parts
        assert sum(parts.values()) == pytest.approx(doc["throughput"]["step_time_s"], rel=1e-6)


@settings(max_examples=examples(15, 400), **PROPERTY_SETTINGS)
@given(model=st.sampled_from(MODELS), cluster=st.sampled_from(CLUSTERS), n=st.sampled_from([8, 16, 32, 64]),
       batch=st.sampled_from([None, 64, 128, 256, 512]))
def test_searched_layout_batch_is_whole_micro_batches(run_json, model, cluster, n, batch):
    """A searched layout's global batch is a whole number of micro-batches on every data-parallel replica."""
    args = ["estimate", "-m", model, "-c", cluster, "-n", n] + ([] if batch is None else ["--global-batch", batch])
    doc = run_json(*args)
    i = doc["inputs"]
    assert i["tp"] * i["pp"] * i["cp"] * i["dp"] == n
    assert i["global_batch"] % (i["micro_batch"] * i["dp"]) == 0, i
    if batch is not None:
        assert i["global_batch"] == batch


# Regression (found by this file, fixed in 6a73b33): a fixed --micro-batch that did not divide global_batch/dp was
# accepted and perf.step_time timed floor(gbs/(mb·dp)) micro-batches, inflating tokens/s (+71 % for mb 300 of 512).
@pytest.mark.parametrize("micro_batch,batch", [(3, None), (200, None), (300, None), (2, 40), (3, 48)])
def test_fixed_micro_batch_must_divide_the_per_replica_batch(cli, micro_batch, batch):
    """--micro-batch not dividing global_batch/dp is refused (exit 2, ERROR names it) or the batch is whole micro-batches."""
    res = cli("estimate", "-m", "gpt2-xl", "-c", "dgx-a100", "-n", "8", "--tp", "1", "--pp", "1", "--zero", "1",
              "--recompute", "full", "--micro-batch", micro_batch, "--format", "json", "--quiet",
              *([] if batch is None else ["--global-batch", batch]))
    if res.exit_code == 2:
        assert res.stdout == ""
        assert res.stderr.startswith("ERROR: ") and "--micro-batch" in res.stderr
        return
    assert res.exit_code == 0, res.stderr
    i = json.loads(res.stdout)["inputs"]
    assert i["micro_batch"] == micro_batch
    assert i["global_batch"] % (i["micro_batch"] * i["dp"]) == 0, i
    if batch is not None:
        assert i["global_batch"] == batch
