"""mpg report: the self-contained HTML page and the JSON data behind its charts, end to end."""

from __future__ import annotations

import json
import re
import time
import xml.etree.ElementTree as ET

import pytest

from mpg_cli.output import report_html
from mpg_cli.validation import validate_all

SMALL = ["-m", "llama3-8b", "-c", "dgx-h100", "-n", "64", "--tokens", "1T"]
SVG = "{http://www.w3.org/2000/svg}"
FOUR = """\
- {label: 8b-a100, model: llama3-8b, cluster: dgx-a100, gpus: 512, tokens: 15T}
- {label: 8b-h100, model: llama3-8b, cluster: dgx-h100, gpus: 512, tokens: 15T}
- {label: 70b-a100, model: llama3-70b, cluster: dgx-a100, gpus: 512, tokens: 15T}
- {label: 70b-h100, model: llama3-70b, cluster: dgx-h100, gpus: 512, tokens: 15T}
"""


def charts(html: str) -> dict[str, ET.Element]:
    """Every inline <svg> of the page, parsed, by id."""
    out = {}
    for block in re.findall(r"<svg .*?</svg>", html, re.DOTALL):
        root = ET.fromstring(block)
        out[root.get("id")] = root
    return out


def assert_self_contained(html: str) -> None:
    """No script, no external resource of any kind, no NaN/inf, a CSP that forbids fetches."""
    low = html.lower()
    assert low.startswith("<!doctype html>")
    for bad in ("<script", "<link", "<img", "<iframe", " src=", "href=", "url(", "@import"):
        assert bad not in low, bad
    assert not re.search(r"\b(nan|inf|infinity)\b", low)
    assert re.findall(r"https?://[^\"' <]+", html) == ["http://www.w3.org/2000/svg"] * html.count("<svg ")
    assert "default-src 'none'" in html


@pytest.fixture(scope="module")
def small_report(tmp_path_factory):
    """(html, json) of one small estimate's report, made once for the tests that read it."""
    from typer.testing import CliRunner

    from mpg_cli.cli import app

    folder = tmp_path_factory.mktemp("report")
    runner = CliRunner(env={"NO_COLOR": "1", "MPG_PRESETS": None})
    out = folder / "plan.html"
    res = runner.invoke(app, ["report", *SMALL, "-o", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    assert res.stdout.startswith(f"Wrote {out}")
    js = runner.invoke(app, ["report", *SMALL, "--format", "json"], catch_exceptions=False)
    assert js.exit_code == 0, js.stderr
    return out.read_text("utf-8"), json.loads(js.stdout)


def test_report_html_is_self_contained_and_has_every_section(small_report):
    """The page has the summary, memory, step-time, scaling, frontier, accuracy and assumptions sections, and
    fetches nothing."""
    html, _ = small_report
    assert_self_contained(html)
    for sid in ("memory", "step-time", "scaling", "frontier", "accuracy", "assumptions"):
        assert f"<section id='{sid}'>" in html
    assert {"memory", "step-time", "scaling-days", "scaling-cost", "frontier", "accuracy"} <= set(charts(html))
    for key in ("Time to train", "GPU-hours", "Cost", "Energy", "MFU", "Fits in memory"):
        assert f'<div class="k">{key}</div>' in html


def test_every_chart_has_a_title_and_axis_labels_with_units(small_report):
    """Each SVG has a <title>, a visible title and an x-axis label naming its unit."""
    html, _ = small_report
    for cid, root in charts(html).items():
        assert (root.find(f"{SVG}title").text or "").strip(), cid
        labels = [t.text for t in root.iter(f"{SVG}text") if "x-label" in (t.get("class") or "")]
        assert labels and re.search(r"GiB|days|GPUs|\(s\)|\(ms\)|tokens/s|USD|GPU-hours", labels[0]), (cid, labels)


def test_report_json_is_the_data_behind_the_charts(small_report, invoke_json):
    """--format json carries the summary (equal to estimate's), memory, step time, scaling, frontier and accuracy."""
    html, doc = small_report
    assert doc["command"] == "report" and doc["schema_version"] == 1
    est = invoke_json("estimate", *SMALL)
    assert doc["summary"]["days"] == pytest.approx(est["time"]["days"])
    assert doc["summary"]["gpu_hours"] == pytest.approx(est["gpu_hours"])
    assert doc["summary"]["intervals"] == est.get("intervals")
    mem = doc["memory"]
    assert mem["layouts"][0]["chosen"] and 1 <= len(mem["layouts"]) <= 4
    assert mem["layouts"][0]["per_gpu_bytes"] == pytest.approx(est["memory"]["per_gpu_bytes"])
    for m in mem["layouts"]:
        assert sum(m["breakdown"].values()) == pytest.approx(m["per_gpu_bytes"])
    segs = [e for e in charts(html)["memory"].iter(f"{SVG}rect") if e.get("class") == "segment"]
    assert len(segs) == len(mem["layouts"]) * len(mem["parts"])
    step = doc["step_time"]
    assert sum(step["parts_s"].values()) == pytest.approx(step["total_s"])
    sc = doc["scaling"]
    assert sc["chosen_gpus"] == 64 and 64 in [p["gpus"] for p in sc["points"]] and len(sc["points"]) >= 3
    assert [p["gpus"] for p in sc["points"]] == sorted(p["gpus"] for p in sc["points"])
    fr = doc["frontier"]
    assert fr["fitting"] + fr["not_fitting"] == fr["layouts_evaluated"] and fr["fitting"] > 0 and fr["not_fitting"] > 0
    assert fr["points_shown"] == len(fr["points"]) <= fr["layouts_evaluated"]
    assert {p["fits"] for p in fr["points"]} == {True, False}
    assert all(p["fits"] == (p["per_gpu_bytes"] <= fr["usable_bytes"]) for p in fr["points"])
    assert max(p["mfu"] for p in fr["pareto"]) >= fr["chosen"]["mfu"] - 1e-9
    acc = doc["accuracy"]
    assert acc["all"]["runs"] == len(validate_all()) and 0 < acc["class"]["runs"] <= acc["all"]["runs"]
    assert acc["class"]["name"] == "dense models on hopper GPUs"


def test_frontier_points_in_the_svg_match_the_json(small_report):
    """The frontier chart draws one marker per point of the JSON's frontier."""
    html, doc = small_report
    root = charts(html)["frontier"]
    marks = [e for e in root.iter() if e.get("class") == "point"]
    assert len(marks) == doc["frontier"]["points_shown"]


def test_four_scenario_report_has_side_by_side_bars_and_is_fast(invoke, tmp_path):
    """--scenarios with four scenarios: bars of days, GPU-hours and cost per scenario; it takes under 4 s in-process
    (measured ~0.6 s on a 2-core machine; the bound is generous)."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(FOUR, encoding="utf-8")
    out = tmp_path / "plan.html"
    t0 = time.perf_counter()
    res = invoke("report", "--scenarios", str(plan), "-o", str(out))
    elapsed = time.perf_counter() - t0
    assert res.exit_code == 0, res.stderr
    assert elapsed < 4.0, elapsed
    html = out.read_text("utf-8")
    assert_self_contained(html)
    ch = charts(html)
    for cid in ("scenarios-days", "scenarios-gpu-hours", "scenarios-cost"):
        labels = [t.text for t in ch[cid].iter(f"{SVG}text") if t.get("class") == "bar-label"]
        assert labels == ["8b-a100", "8b-h100", "70b-a100", "70b-h100"], cid
    assert "<section id='scenarios'>" in html and "detailed below" in html


def test_scenario_labels_are_escaped(invoke, tmp_path):
    """A scenario label with markup and control characters appears as text, never as markup."""
    plan = tmp_path / "plan.yaml"
    plan.write_text('- {label: "<script>alert(1)</script>\\x01 & co", model: llama3-8b, cluster: dgx-h100, '
                    'gpus: 64, tokens: 1T}\n- {label: b, model: llama3-8b, cluster: dgx-a100, gpus: 64, tokens: 1T}\n',
                    encoding="utf-8")
    out = tmp_path / "plan.html"
    res = invoke("report", "--scenarios", str(plan), "-o", str(out))
    assert res.exit_code == 0, res.stderr
    html = out.read_text("utf-8")
    assert "<script" not in html and "\x01" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html
    charts(html)  # every chart still parses


def test_calibration_adds_measured_vs_predicted(invoke, invoke_json, tmp_path):
    """--calibration FILE: a section with measured vs predicted bars and the ratio, applied to the estimate."""
    cal = tmp_path / "calib.yaml"
    res = invoke("calibrate", "-m", "llama3-8b", "-c", "dgx-h100", "-n", "64", "--tp", "1", "--pp", "1",
                 "--step-time", "8.0", "--global-batch", "512", "--save", str(cal))
    assert res.exit_code == 0, res.stderr
    doc = invoke_json("report", *SMALL, "--calibration", str(cal))
    c = doc["calibration"]
    assert c["ratio"] == pytest.approx(c["measured"]["tokens_per_second"] / c["predicted"]["tokens_per_second"])
    assert c["applied_ratio"] == pytest.approx(c["ratio"])
    out = tmp_path / "plan.html"
    assert invoke("report", *SMALL, "--calibration", str(cal), "-o", str(out)).exit_code == 0
    html = out.read_text("utf-8")
    ch = charts(html)
    assert "calibration-tokens-per-second" in ch and "calibration-step-time-s" in ch
    assert f"ratio measured / predicted = {c['ratio']:.3f}" in html


def test_gpus_list_sets_the_scaling_curve(invoke_json):
    """--gpus 32,64,128 gives exactly those points on the scaling curve; the first count is detailed."""
    doc = invoke_json("report", "-m", "llama3-8b", "-c", "dgx-h100", "--gpus", "32,64,128", "--tokens", "1T")
    assert [p["gpus"] for p in doc["scaling"]["points"]] == [32, 64, 128]
    assert doc["summary"]["gpus"] == 32 and doc["scaling"]["chosen_gpus"] == 32
    assert len({p["gpus"] for p in doc["scaling"]["points"]}) == 3


def test_given_throughput_has_no_step_breakdown(invoke, invoke_json, tmp_path):
    """--tflops: no step-time breakdown (JSON null, a note in the page), the rest of the report is there."""
    doc = invoke_json("report", *SMALL, "--tflops", "400")
    assert doc["step_time"] is None and doc["accuracy"]["applies"] is False
    out = tmp_path / "p.html"
    assert invoke("report", *SMALL, "--tflops", "400", "-o", str(out)).exit_code == 0
    html = out.read_text("utf-8")
    assert "the step-time model's breakdown does not apply" in html and "step-time" not in charts(html)


def test_a_given_layout_still_shows_alternatives_and_a_frontier(invoke_json):
    """With every layout dimension given, the alternatives and the frontier come from the unconstrained search."""
    doc = invoke_json("report", *SMALL, "--tp", "1", "--pp", "1", "--micro-batch", "1", "--zero", "1",
                      "--recompute", "none")
    assert len(doc["memory"]["layouts"]) > 1 and doc["memory"]["alternatives_from"] == "all layouts"
    assert doc["frontier"]["layouts_evaluated"] > 10


def test_bad_input_is_one_error_line_and_exit_2(invoke):
    """An unknown model and an unknown format exit 2 without a traceback."""
    res = invoke("report", "-m", "no-such-model", "-o", "x.html")
    assert res.exit_code == 2 and res.stderr.startswith("ERROR: ") and "Traceback" not in res.stderr
    res = invoke("report", *SMALL, "--format", "csv")
    assert res.exit_code == 2


def test_summary_card_shows_a_range_only_when_the_estimate_has_one():
    """The card takes an optional range (the 'intervals' of issue 14): shown when present, absent otherwise."""
    base = {"days": 34.7, "gpu_hours": 1e6, "cost_usd": 2e6, "price_usd_per_gpu_hour": 2.0, "energy_kwh": 3e5,
            "mfu": 0.4, "tokens_per_second": 1e5, "fits": True, "per_gpu_bytes": 5e10, "usable_bytes": 7e10}
    plain = report_html.summary_card({**base, "intervals": None})
    assert "range" not in plain
    card = report_html.summary_card({**base, "intervals": {"level": 0.8, "days": [31.2, 39.0],
                                                           "gpu_hours": [9e5, 1.1e6]}})
    assert "80% range: 31.2 days – 39.0 days" in card and "80% range: 900,000 GPU-h – 1,100,000 GPU-h" in card
    bad = report_html.summary_card({**base, "intervals": {"level": 0.8, "days": [float("nan"), 3]}})
    assert "range" not in bad and "nan" not in bad.lower()


def test_report_refuses_to_print_html_on_a_terminal(monkeypatch):
    """Without -o on a terminal, report says to give -o FILE.html (exit 2) instead of printing HTML."""
    import sys

    from mpg_cli.args import ReportArgs
    from mpg_cli.commands import report
    from mpg_cli.errors import InputError

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    with pytest.raises(InputError, match="give -o FILE.html"):
        report.run({"model": "llama3-8b", "cluster": "dgx-h100"}, ReportArgs(format="html"))


@pytest.mark.parametrize("opts", [
    {"model": "llama3-70b", "cluster": "dgx-h100", "gpus": "512"},
    {"model": "gpt3-175b", "cluster": "dgx-a100", "gpus": "8"},  # nothing fits
    {"model": "llama3-8b", "cluster": "dgx-h100", "gpus": "64", "recompute": "selective"},
])
def test_frontier_holds_exactly_the_layouts_the_search_evaluates(opts):
    """evaluated_layouts: as many layouts as the fit search evaluates, and its fitting ones are the search's."""
    from mpg_cli.core.estimate import run_search
    from mpg_cli.output.report_data import evaluated_layouts
    from mpg_cli.scenario import build_requests

    req = build_requests(opts)[0]
    ev = evaluated_layouts(req)
    res = run_search(req, keep=10 ** 7)
    assert len(ev) == res.evaluated
    assert {c.layout for c in ev if c.memory.fits} == {c.layout for c in res.candidates}
    assert all(c.step is not None for c in ev)  # every point has a predicted step time (an MFU)


def test_the_frontier_is_at_the_estimates_batch(monkeypatch):
    """48 A100s split llama2-70b's 1,024 sequences poorly: the frontier is searched at the batch the estimate used,
    not chosen again (each search could pick another nearby batch)."""
    from mpg_cli.core.estimate import estimate
    from mpg_cli.output import report_data
    from mpg_cli.scenario import build_requests

    r = estimate(build_requests({"model": "llama2-70b", "cluster": "dgx-a100", "gpus": "48", "tokens": "1e9"})[0])
    assert r.global_batch != 1024
    seen = []
    real = report_data.evaluated_layouts

    def spy(req):
        out = real(req)
        seen.append({c.global_batch for c in out})
        return out

    monkeypatch.setattr(report_data, "evaluated_layouts", spy)
    _, frontier = report_data.search_sections(r)
    assert frontier["layouts_evaluated"] > 0 and seen == [{r.global_batch}]
