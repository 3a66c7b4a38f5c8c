"""Uncertainty ranges (core/intervals.py), their coverage on the public runs, calibrated ranges and --confidence."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from mpg_cli.core.intervals import choose_class, log_error_bounds, poisson_quantile, propagate, quantile
from mpg_cli.core.perf import load_default_constants

FIXED = ("-m", "llama3-8b", "-c", "dgx-h100", "-n", "256", "--tokens", "2T")


def test_quantile_interpolates_between_order_statistics():
    """Type-7 quantiles: the ends are min and max, the middle of 0..10 is 5, 0.1 of 0..10 is 1."""
    xs = [float(i) for i in range(11)]
    assert quantile(xs, 0.0) == 0.0 and quantile(xs, 1.0) == 10.0
    assert quantile(xs, 0.5) == 5.0 and quantile(xs, 0.1) == pytest.approx(1.0)
    assert quantile([3.0, 1.0, 2.0], 0.25) == pytest.approx(1.5)


def test_range_sign_convention():
    """A model that predicts too high (positive log errors) gives a throughput range below the prediction."""
    iv = propagate(0.8, "x", "all", [0.1, 0.2, 0.3], 100.0, 10.0, 1000.0, 50.0, None)
    lo, hi = log_error_bounds([0.1, 0.2, 0.3], 0.8)
    assert iv.tokens_per_second == pytest.approx((100 * math.exp(-hi), 100 * math.exp(-lo)))
    assert iv.tokens_per_second[1] < 100.0
    assert iv.days == pytest.approx((10 * math.exp(lo), 10 * math.exp(hi)))
    assert iv.cost_usd == pytest.approx((50 * math.exp(lo), 50 * math.exp(hi)))
    assert iv.energy_kwh is None


def test_class_choice_prefers_the_smaller_set_with_enough_runs():
    """The kind or the generation, whichever has fewer runs but at least 20; else 'all'."""
    table = {"all": [0.0] * 100, "moe": [0.0] * 27, "hopper": [0.0] * 25, "ada": [0.0] * 3}
    assert choose_class(table, "moe", "hopper") == "hopper"
    assert choose_class(table, "moe", "ada") == "moe"
    assert choose_class(table, "dense-fp8", "ada") == "all"


def test_shipped_residuals_have_every_class():
    """The fitted constants carry sorted cross-validated log residuals for the classes the ranges use."""
    table = load_default_constants().provenance["cv_log_residuals"]
    for cls in ("all", "dense-bf16", "dense-fp8", "moe", "ampere", "hopper", "blackwell"):
        assert len(table[cls]) >= 20
        assert table[cls] == sorted(table[cls])


def test_estimate_json_carries_the_range(invoke_json):
    """intervals{level, tokens_per_second, days, gpu_hours, cost_usd} bracket the central values."""
    d = invoke_json("estimate", *FIXED)
    iv = d["intervals"]
    assert iv["level"] == 0.8
    for key, central in (("tokens_per_second", d["throughput"]["tokens_per_second"]), ("days", d["time"]["days"]),
                         ("gpu_hours", d["gpu_hours"]), ("cost_usd", d["cost_usd"]), ("energy_kwh", d["energy_kwh"])):
        lo, hi = iv[key]
        assert lo < central < hi, key
    table = load_default_constants().provenance["cv_log_residuals"]
    q_lo, q_hi = log_error_bounds(table[iv["class"]], 0.8)
    assert iv["days"][0] == pytest.approx(d["time"]["days"] * math.exp(q_lo))
    assert iv["days"][1] == pytest.approx(d["time"]["days"] * math.exp(q_hi))
    assert iv["class"] == "hopper"  # dense bf16 (85 runs) vs hopper (25): the smaller, specific set


def test_interval_flag_widens_the_range(invoke_json):
    """--interval 0.9 gives a wider days range than the default 0.8."""
    a = invoke_json("estimate", *FIXED)["intervals"]["days"]
    b = invoke_json("estimate", *FIXED, "--interval", "0.9")["intervals"]["days"]
    assert b[0] <= a[0] and b[1] >= a[1] and (b[1] - b[0]) > (a[1] - a[0])


def test_csv_has_the_range_columns(invoke, invoke_json):
    """CSV output carries the range as .lo/.hi columns and the goodput block, matching the JSON."""
    import csv
    import io

    row = next(csv.DictReader(io.StringIO(invoke("estimate", *FIXED, "--format", "csv").stdout)))
    doc = invoke_json("estimate", *FIXED)
    for col in ("time.steady_state_days", "goodput.fraction", "goodput.lost_s.failures"):
        assert col in row
    for key in ("days", "tokens_per_second", "gpu_hours", "cost_usd"):
        assert float(row[f"intervals.{key}.lo"]) == pytest.approx(doc["intervals"][key][0])
        assert float(row[f"intervals.{key}.hi"]) == pytest.approx(doc["intervals"][key][1])


def test_given_throughput_range_reflects_only_goodput(invoke_json):
    """With --tflops the throughput range is a point and the days range is the interruptions' spread."""
    d = invoke_json("estimate", "-m", "llama3-405b", "-c", "dgx-h100", "-n", "16384", "--tokens", "15T",
                    "--tflops", "400")
    iv = d["intervals"]
    assert iv["tokens_per_second"][0] == iv["tokens_per_second"][1]
    assert iv["days"][0] < d["time"]["days"] < iv["days"][1]
    assert iv["days"][1] / iv["days"][0] < 1.05
    assert "goodput only" in iv["basis"]
    assert any("reflects only goodput" in a for a in d["assumptions"])


def test_poisson_quantile():
    """Poisson quantiles: mean 0 → 0; mean 4 median 4; mean 1000 90th percentile ≈ 1000 + 1.28·√1000."""
    assert poisson_quantile(0.0, 0.9) == 0
    assert poisson_quantile(4.0, 0.5) == 4
    assert abs(poisson_quantile(1000.0, 0.9) - (1000 + 1.2816 * math.sqrt(1000))) <= 2


# ---------------------------------------------------------------- coverage on the public runs

def test_coverage_excludes_the_runs_own_family():
    """A run's range comes from the other families only: a family of huge errors cannot cover itself."""
    from mpg_cli.coverage import run_ranges

    def run(i, fam, err):
        return SimpleNamespace(id=f"r{i}", family=fam, classes=("dense-bf16", "ampere"), measured_tokens_s_gpu=100.0,
                               predicted_tokens_s_gpu=100.0 * math.exp(err))
    runs = [run(i, f"f{i % 5}", 0.01 * (i % 7 - 3)) for i in range(40)] + [run(99, "outlier", 2.0)]
    rows = {r["id"]: r for r in run_ranges(runs)}
    assert not rows["r99"]["covered"]
    assert rows["r99"]["q_hi"] < 0.1


def test_cross_validated_ranges_cover_70_to_90_percent_of_public_runs():
    """Over all public runs, the 80 % ranges (leave one source out) contain 70-90 % of published throughputs."""
    from mpg_cli.coverage import coverage
    from mpg_cli.validation import cross_validate

    cov = coverage(cross_validate())
    assert cov["all"]["runs"] >= 100
    assert 0.70 <= cov["all"]["share"] <= 0.90
    assert {"dense-bf16", "moe", "ampere", "hopper", "blackwell"} <= set(cov["by_class"])


def test_validate_prints_the_coverage(invoke):
    """mpg validate's footer states the range coverage, and its JSON has range_coverage."""
    out = invoke("validate").stdout
    assert "range coverage (80% ranges" in out
    import json

    doc = json.loads(invoke("validate", "--format", "json").stdout)
    assert 0 < doc["range_coverage"]["all"]["share"] <= 1


# ---------------------------------------------------------------- calibrated ranges

def test_calibrated_projection_residuals_calibrate_on_the_first_run_of_each_family():
    """First run of a family sets measured/predicted; the others' log errors are of the scaled predictions."""
    from mpg_cli.calibrated_ranges import projection_residuals

    def r(fam, meas, pred):
        return SimpleNamespace(family=fam, measured_tokens_s_gpu=meas, predicted_tokens_s_gpu=pred)
    res = projection_residuals([r("a", 100, 200), r("a", 50, 110), r("b", 10, 10), r("b", 20, 10), r("c", 5, 4)])
    assert res == pytest.approx(sorted([math.log(110 * 0.5 / 50), math.log(10 * 1.0 / 20)]))


def test_calibration_uses_calibrated_ranges(invoke_json, tmp_path):
    """With --calibration, the range says it comes from calibrated projections on the public runs."""
    f = tmp_path / "c.yaml"
    from mpg_cli.calibration import CALIBRATION_KIND

    f.write_text(f"kind: {CALIBRATION_KIND}\nratio: 0.9\n")
    res = invoke_json("estimate", *FIXED)
    d = invoke_json("estimate", *FIXED, "--calibration", str(f))
    assert d["intervals"]["class"] == "calibrated"
    assert "calibrated projections" in d["intervals"]["basis"]
    assert res["intervals"]["class"] != "calibrated"


# ---------------------------------------------------------------- --confidence

def test_confidence_needs_at_least_as_many_gpus(invoke_json):
    """--days D --confidence 0.9 answers a GPU count at least the central answer's, finishing by D at the 90th pct."""
    base = ("estimate", "-m", "llama3-8b", "-c", "dgx-h100", "--tokens", "2T", "--days", "20")
    a = invoke_json(*base)
    b = invoke_json(*base, "--confidence", "0.9")
    assert b["inputs"]["gpus"] >= a["inputs"]["gpus"]
    assert a["time"]["days"] <= 20
    table = load_default_constants().provenance["cv_log_residuals"]
    assert b["time"]["days"] * math.exp(quantile(table[b["intervals"]["class"]], 0.9)) <= 20


def test_budget_with_confidence_buys_fewer_tokens(invoke_json):
    """A GPU-hour budget at 90 % confidence buys fewer tokens than at the central estimate."""
    base = ("estimate", "-m", "llama3-8b", "-c", "dgx-h100", "-n", "256", "--budget-gpu-hours", "100000")
    a = invoke_json(*base)
    b = invoke_json(*base, "--confidence", "0.9")
    assert a["gpu_hours"] == pytest.approx(100000, rel=1e-6)
    assert b["inputs"]["tokens"] < a["inputs"]["tokens"]


def test_confidence_without_a_solve_is_an_input_error(invoke):
    """--confidence without --days or a budget exits 2 and points to --interval."""
    res = invoke("estimate", "-m", "gpt-1.7b", "-n", "8", "--confidence", "0.9")
    assert res.exit_code == 2
    assert "--interval" in res.stderr


def test_confidence_belongs_to_estimate_and_compare_solves_only(invoke):
    """compare --confidence without --days exits 2; fit has no --confidence (an unknown option, exit 2)."""
    res = invoke("compare", "-m", "gpt-1.7b", "-n", "8", "--confidence", "0.9")
    assert res.exit_code == 2 and "--confidence goes with --days" in res.stderr
    assert invoke("fit", "-m", "gpt-1.7b", "-n", "8", "--confidence", "0.9").exit_code == 2
