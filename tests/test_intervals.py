"""Uncertainty ranges (core/intervals.py), their coverage on the public runs, calibrated ranges and --confidence."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from mpg_cli.core.intervals import (CvRecord, class_of, log_error_bounds, poisson_quantile, propagate, quantile,
                                   range_model, records_from, two_level)
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
    lo, hi = log_error_bounds([0.1, 0.2, 0.3], 0.8)
    iv = propagate(0.8, "x", "all", 3, (lo, hi), 100.0, 10.0, 1000.0, 50.0, None)
    assert iv.tokens_per_second == pytest.approx((100 * math.exp(-hi), 100 * math.exp(-lo)))
    assert iv.tokens_per_second[1] < 100.0
    assert iv.days == pytest.approx((10 * math.exp(lo), 10 * math.exp(hi)))
    assert iv.cost_usd == pytest.approx((50 * math.exp(lo), 50 * math.exp(hi)))
    assert iv.energy_kwh is None


def _recs(spec: dict[str, tuple[str, list[float]]]) -> tuple[CvRecord, ...]:
    return tuple(CvRecord(fam, group, e) for fam, (group, errs) in spec.items() for e in errs)


def test_two_level_centre_gives_each_family_one_vote_and_scale_adds_the_components():
    """Centre = mean of family means; scale² = τ² + σ² + (τ² + σ²·mean(1/n))/K, by the method of moments."""
    recs = _recs({"a": ("g", [0.0] * 9 + [0.2]), "b": ("g", [0.5, 0.7])})
    s = two_level(recs)["g"]
    m_a, m_b = 0.02, 0.6
    assert s.centre == pytest.approx((m_a + m_b) / 2)  # not the run-weighted 0.12
    s2 = (9 * 0.02 ** 2 + 0.18 ** 2 + 2 * 0.1 ** 2) / (9 + 1)
    inv_n = (1 / 10 + 1 / 2) / 2
    t2 = ((m_a - 0.31) ** 2 + (m_b - 0.31) ** 2) / 1 - s2 * inv_n
    assert s.scale == pytest.approx(math.sqrt(t2 + s2 + (t2 + s2 * inv_n) / 2))
    assert (s.families, s.runs) == (2, 12)


def test_class_needs_two_families_else_all():
    """A generation with runs of one family only (or none) takes the 'all' class."""
    stats = two_level(_recs({"a": ("hopper", [0.1, 0.2]), "b": ("hopper", [0.0]), "c": ("ada", [0.3, 0.4])}))
    assert class_of(stats, "hopper") == "hopper"
    assert class_of(stats, "ada") == "all"
    assert class_of(stats, "volta") == "all"


def test_range_widens_with_level_and_is_centred():
    """Higher levels give wider ranges, symmetric about the class centre in log space."""
    recs = _recs({f"f{i}": ("g", [0.05 * (i - 5) + 0.01 * j for j in range(4)]) for i in range(12)})
    m = range_model(recs, "g")
    assert m is not None and m.families == 12
    lo8, hi8, ok8 = m.bounds(0.8)
    lo9, hi9, _ = m.bounds(0.9)
    assert ok8 and lo9 <= lo8 < hi8 <= hi9
    assert (lo8 + hi8) / 2 == pytest.approx(m.centre)
    assert m.upper(0.9) > m.centre > m.upper(0.1)


def test_a_level_more_families_cannot_support_says_so():
    """With K families a conformal level above K/(K+1) takes the widest score and the basis warns."""
    recs = _recs({f"f{i}": ("g", [0.1 * i, 0.1 * i + 0.05]) for i in range(4)})
    m = range_model(recs, "g")
    assert m is not None
    assert m.bounds(0.8)[2] and not m.bounds(0.9)[2]
    assert "may hold less often" in m.basis(0.9)
    assert range_model(_recs({"only": ("g", [0.1, 0.2])}), "g") is None


def test_conformal_ranges_hold_for_new_families_in_simulation():
    """Two-level synthetic errors (family effect + scatter): a new family's runs fall in the 80 % range about 80 %
    of the time on average over seeded draws (the interpolated conformal rank), within Monte-Carlo noise."""
    import random

    rng = random.Random(14)
    hits = total = 0
    for _ in range(400):
        spec = {}
        for i in range(13):
            b = rng.gauss(0.0, 0.1)
            spec[f"f{i}"] = ("g", [b + rng.gauss(0.0, 0.05) for _ in range(rng.randint(1, 8))])
        recs = _recs(spec)
        m = range_model(recs, "g", exclude_family="f0")
        assert m is not None
        lo, hi, _ = m.bounds(0.8)
        errs = spec["f0"][1]
        hits += sum(lo <= e <= hi for e in errs) / len(errs)
        total += 1
    assert 0.75 <= hits / total <= 0.88  # about two standard errors of 400 draws of one family's coverage


def test_shipped_constants_carry_every_runs_cross_validated_error():
    """The fitted constants store one record per run (family, GPU generation, log error) and they are the live
    cross-validated errors: estimate's ranges and the coverage check use the same numbers."""
    from mpg_cli.coverage import records_of
    from mpg_cli.validation import cross_validate

    stored = records_from(load_default_constants().provenance)
    live = records_of(cross_validate())
    assert len(stored) == len(live) >= 100
    for a, b in zip(stored, live):
        assert (a.family, a.group) == (b.family, b.group)
        assert a.log_error == pytest.approx(b.log_error, abs=1e-5)


def test_estimate_json_carries_the_range(invoke_json):
    """intervals{level, tokens_per_second, days, gpu_hours, cost_usd} bracket the central values."""
    d = invoke_json("estimate", *FIXED)
    iv = d["intervals"]
    assert iv["level"] == 0.8
    for key, central in (("tokens_per_second", d["throughput"]["tokens_per_second"]), ("days", d["time"]["days"]),
                         ("gpu_hours", d["gpu_hours"]), ("cost_usd", d["cost_usd"]), ("energy_kwh", d["energy_kwh"])):
        lo, hi = iv[key]
        assert lo < central < hi, key
    m = range_model(records_from(load_default_constants().provenance), "hopper")
    assert m is not None
    q_lo, q_hi, _ = m.bounds(0.8)
    assert iv["days"][0] == pytest.approx(d["time"]["days"] * math.exp(q_lo))
    assert iv["days"][1] == pytest.approx(d["time"]["days"] * math.exp(q_hi))
    assert iv["class"] == "hopper"  # the GPU's generation, which several source families have runs of


def test_a_generation_no_source_has_run_on_takes_every_run(invoke_json):
    """An MI300X estimate (no published runs of its generation) draws its range from all runs, class 'all'."""
    d = invoke_json("estimate", "-m", "llama3-8b", "-c", "mi300x-8x", "-n", "64", "--tokens", "1T")
    iv = d["intervals"]
    m = range_model(records_from(load_default_constants().provenance), "cdna3")
    assert m is not None and iv["class"] == m.cls == "all"
    assert iv["days"][0] == pytest.approx(d["time"]["days"] * math.exp(m.bounds(0.8)[0]))


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
        return SimpleNamespace(id=f"r{i}", family=fam, classes=("dense-bf16", "ampere"), generation="ampere",
                               measured_tokens_s_gpu=100.0, predicted_tokens_s_gpu=100.0 * math.exp(err))
    runs = [run(i, f"f{i % 5}", 0.01 * (i % 7 - 3)) for i in range(40)] + [run(99, "outlier", 2.0)]
    rows = {r["id"]: r for r in run_ranges(runs)}
    assert not rows["r99"]["covered"]
    assert rows["r99"]["q_hi"] < 0.1


def test_coverage_builds_the_range_estimate_would_without_the_runs_family():
    """Each run's coverage range is range_model's for its generation with its own family left out."""
    from mpg_cli.coverage import records_of, run_ranges
    from mpg_cli.validation import cross_validate

    cv = cross_validate()
    records = records_of(cv)
    rows = {x["id"]: x for x in run_ranges(cv)}
    for r in cv[::17]:
        m = range_model(records, r.generation, exclude_family=r.family)
        assert m is not None
        lo, hi, _ = m.bounds(0.8)
        assert (rows[r.id]["q_lo"], rows[r.id]["q_hi"], rows[r.id]["range_class"]) == (lo, hi, m.cls)


def test_cross_validated_ranges_cover_70_to_90_percent_of_public_runs():
    """Over all public runs, and in every class with enough runs, the 80 % ranges (leave one source out) contain
    70-90 % of published throughputs (issue 14)."""
    from mpg_cli.coverage import coverage
    from mpg_cli.validation import cross_validate

    cov = coverage(cross_validate())
    assert cov["all"]["runs"] >= 100
    assert 0.70 <= cov["all"]["share"] <= 0.90
    assert {"dense-bf16", "moe", "ampere", "hopper", "blackwell"} <= set(cov["by_class"])
    for cls, s in cov["by_class"].items():
        if s["enough_runs"]:
            assert 0.70 <= s["share"] <= 0.90, (cls, s)


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
    m = range_model(records_from(load_default_constants().provenance), "hopper")
    assert m is not None and b["intervals"]["class"] == "hopper"
    assert b["time"]["days"] * math.exp(m.upper(0.9)) <= 20


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
