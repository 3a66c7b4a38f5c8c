"""mpg compare, scaling tables and the planning questions (solve for GPUs, tokens, model size)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import examples

from mpg_cli.core.estimate import estimate
from mpg_cli.core.planning import TEMPLATES, largest_model_in, tokens_for_budget
from mpg_cli.scenario import build_requests

FIXED = ["--tp", "1", "--pp", "1", "--micro-batch", "1", "--zero", "1", "--recompute", "none"]


def test_two_models_two_clusters_give_four_rows(invoke_json):
    """compare with two models and two clusters prints four rows, deltas against the first."""
    doc = invoke_json("compare", "-m", "llama3-8b", "-m", "gpt-7.5b", "-c", "dgx-a100", "-c", "dgx-h100",
                      "-n", "64", "--tokens", "1T")
    assert len(doc["rows"]) == 4
    assert doc["baseline"] == doc["rows"][0]["label"]
    assert doc["rows"][0]["delta_vs_baseline"]["days"] == pytest.approx(0.0)
    base, other = doc["rows"][0], doc["rows"][1]
    assert other["delta_vs_baseline"]["gpu_hours"] == pytest.approx(other["gpu_hours"] / base["gpu_hours"] - 1)


def test_baseline_label_sets_the_reference(invoke_json):
    """--baseline LABEL makes that row's deltas zero and the others relative to it."""
    label = "gpt-7.5b @ dgx-a100 × 64"
    doc = invoke_json("compare", "-m", "llama3-8b", "-m", "gpt-7.5b", "-c", "dgx-a100", "-n", "64",
                      "--tokens", "1T", "--baseline", label)
    rows = {r["label"]: r for r in doc["rows"]}
    assert rows[label]["delta_vs_baseline"]["days"] == pytest.approx(0.0)
    other = rows["llama3-8b @ dgx-a100 × 64"]
    assert other["delta_vs_baseline"]["days"] == pytest.approx(other["time"]["days"] / rows[label]["time"]["days"] - 1)


def test_unknown_baseline_exits_2(invoke):
    """An unknown --baseline label is bad input with a did-you-mean."""
    res = invoke("compare", "-m", "gpt-7.5b", "-n", "64", "--baseline", "nope")
    assert res.exit_code == 2 and "ERROR:" in res.stderr


def test_sort_by_days_descending(invoke_json):
    """--sort -days orders rows from the longest to the shortest."""
    doc = invoke_json("compare", "-m", "gpt-7.5b", "-n", "64", "-n", "128", "-n", "256", "--tokens", "300B",
                      "--sort", "-days")
    days = [r["time"]["days"] for r in doc["rows"]]
    assert days == sorted(days, reverse=True)


def test_against_fails_on_increase_and_passes_otherwise(invoke, tmp_path):
    """--against with --fail-on-increase exits 1 when GPU-hours rise more than allowed, 0 otherwise."""
    saved = tmp_path / "budget.json"
    res = invoke("compare", "-m", "gpt-7.5b", "-n", "64", "--tokens", "300B", "--format", "json", "-o", str(saved))
    assert res.exit_code == 0 and saved.exists()
    label = json.loads(saved.read_text())["rows"][0]["label"]
    ok = invoke("compare", "-m", "gpt-7.5b", "-n", "64", "--tokens", "300B", "--against", str(saved),
                "--fail-on-increase", "10%")
    assert ok.exit_code == 0, ok.stderr
    worse = invoke("compare", "-m", "gpt-7.5b", "-n", "64", "--tokens", "400B", "--against", str(saved),
                   "--fail-on-increase", "10%")
    assert worse.exit_code == 1
    assert f"GATE FAILED: [{label}] gpu_hours" in worse.stderr
    only_cost = invoke("compare", "-m", "gpt-7.5b", "-n", "64", "--tokens", "400B", "--against", str(saved),
                       "--fail-on-increase", "10%", "--metric", "energy")
    assert only_cost.exit_code == 1 and "energy" in only_cost.stderr


def test_against_an_estimate_json(invoke, tmp_path):
    """An estimate's JSON works as --against for a single scenario."""
    saved = tmp_path / "est.json"
    assert invoke("estimate", "-m", "gpt-7.5b", "-n", "64", "--tokens", "300B", "-f", "json", "-o", str(saved)).exit_code == 0
    res = invoke("compare", "-m", "gpt-7.5b", "-n", "64", "--tokens", "250B", "--against", str(saved),
                 "--fail-on-increase", "5%", "-f", "json")
    assert res.exit_code == 0
    change = json.loads(res.stdout)["rows"][0]["change_vs_against"]
    assert change["gpu_hours"] == pytest.approx(250 / 300 - 1, rel=1e-6)


def test_fail_on_increase_needs_against(invoke):
    """--fail-on-increase without --against is bad input."""
    assert invoke("compare", "-m", "gpt-7.5b", "--fail-on-increase", "10%").exit_code == 2


def test_scenarios_file(invoke_json, tmp_path):
    """A scenarios file gives one labelled row per entry; unknown keys are named with a did-you-mean."""
    plan = tmp_path / "plan.yaml"
    plan.write_text("- {label: small, model: gpt-1.7b, cluster: dgx-a100, gpus: 32, tokens: 100B}\n"
                    "- {label: big, model: gpt-7.5b, cluster: dgx-h100, gpus: 64, tokens: 100B, tp: 2}\n")
    doc = invoke_json("compare", "--scenarios", str(plan))
    assert [r["label"] for r in doc["rows"]] == ["small", "big"]
    assert doc["rows"][1]["inputs"]["tp"] == 2


def test_scenarios_file_unknown_key(invoke, tmp_path):
    """An unknown scenario key exits 2 naming the file, the entry and the key."""
    plan = tmp_path / "plan.yaml"
    plan.write_text("- {label: a, modle: gpt-1.7b}\n")
    res = invoke("compare", "--scenarios", str(plan))
    assert res.exit_code == 2
    assert "scenarios[0]: modle: unknown key" in res.stderr and "did you mean 'model'" in res.stderr


def test_scaling_table_json(invoke_json):
    """estimate --gpus a,b,c gives a scaling table whose first row has 100% efficiency."""
    doc = invoke_json("estimate", "-m", "gpt-7.5b", "-c", "dgx-a100", "--gpus", "64,128,256", "--tokens", "300B")
    assert doc["command"] == "estimate-scaling"
    assert [r["gpus"] for r in doc["rows"]] == [64, 128, 256]
    assert doc["rows"][0]["scaling_efficiency"] == pytest.approx(1.0)
    assert all(0 < r["scaling_efficiency"] <= 1.05 for r in doc["rows"])


def test_narayanan_weak_scaling_trend():
    """The Table 1 family on its published layouts: predicted TFLOP/s per GPU rises with size, as published."""
    rows = [("gpt-1.7b", 32, 1, 1, 512), ("gpt-18b", 256, 8, 1, 1024), ("gpt-145b", 1536, 8, 8, 2304),
            ("gpt-1t", 3072, 8, 64, 3072)]
    tflops = []
    for model, n, tp, pp, gbs in rows:
        req = build_requests({"model": model, "cluster": "dgx-a100", "gpus": str(n), "tp": tp, "pp": pp,
                              "global_batch": gbs, "zero": 0, "recompute": "full", "flash_attention": False,
                              "sequence_parallel": False})[0]
        tflops.append(estimate(req).tflops_per_gpu)
    published = [137, 135, 148, 163]
    assert tflops[-1] > tflops[0]
    for pred, pub in zip(tflops, published):
        assert pred == pytest.approx(pub, rel=0.25)


def test_days_with_gpus_is_rejected(invoke):
    """--days solves for GPUs, so --days with --gpus is bad input."""
    assert invoke("estimate", "--days", "30", "-n", "64").exit_code == 2


@settings(max_examples=examples(30, 300), deadline=None)
@given(hours=st.floats(1e3, 1e8))
def test_budget_gpu_hours_inverts_estimate(hours):
    """--budget-gpu-hours H buys tokens whose estimate costs exactly H GPU-hours (round trip)."""
    req = build_requests({"model": "gpt-7.5b", "cluster": "dgx-a100", "gpus": "64", "tflops": 150.0,
                          "tp": 1, "pp": 1, "micro_batch": 1, "zero": 1, "recompute": "none"})[0]
    r = tokens_for_budget(req, hours)
    assert r.gpu_hours == pytest.approx(hours, rel=1e-9)
    back = estimate(build_requests({"model": "gpt-7.5b", "cluster": "dgx-a100", "gpus": "64", "tflops": 150.0,
                                    "tp": 1, "pp": 1, "micro_batch": 1, "zero": 1, "recompute": "none",
                                    "tokens": repr(r.tokens)})[0])
    assert back.gpu_hours == pytest.approx(hours, rel=1e-9)


def test_budget_usd_cli(invoke_json):
    """--budget-usd divides by the price and solves for tokens."""
    doc = invoke_json("estimate", "-m", "gpt-7.5b", "-n", "64", *FIXED, "--tflops", "150", "--price", "2",
                      "--budget-usd", "100000")
    assert doc["cost_usd"] == pytest.approx(100000, rel=1e-9)


def test_plan_largest_model_fits_the_deadline():
    """plan: the model found trains within the days given and the next size up does not."""
    req = build_requests({"model": "gpt-7.5b", "cluster": "dgx-h100", "gpus": "256"})[0]
    best = largest_model_in(req, 20, TEMPLATES["llama"])
    assert best is not None and best.days <= 20 and best.memory.fits
    assert best.tokens == pytest.approx(20 * best.params_total)


def test_plan_cli(invoke_json):
    """mpg plan --days D prints the shape and an estimate."""
    doc = invoke_json("plan", "--days", "10", "-c", "dgx-h100", "-n", "128")
    assert doc["command"] == "plan" and doc["time"]["days"] <= 10
    assert doc["model_shape"]["layers"] > 0
