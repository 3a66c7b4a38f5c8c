"""CLI tests for ``mpg estimate``, one section per option group. stdout, stderr and exit codes are checked apart."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest

from mpg_cli import __version__

# A small model on 8 GPUs keeps the layout search fast where the model does not matter.
SMALL = ("-m", "gpt2-xl", "-c", "dgx-a100", "-n", "8")
# A fully given layout (no search) for tests that compare two runs.
FIXED = ("-m", "gpt3-175b", "-c", "dgx-a100", "-n", "1024", "--tp", "8", "--pp", "8", "--zero", "1",
         "--micro-batch", "1", "--recompute", "selective")


def numbers(doc):
    """Every int/float in a JSON document (bools excluded), with its key path."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            for path, x in numbers(v):
                yield f"{k}.{path}" if path else k, x
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            for path, x in numbers(v):
                yield f"[{i}].{path}" if path else f"[{i}]", x
    elif isinstance(doc, (int, float)) and not isinstance(doc, bool):
        yield "", doc


def assert_input_error(res, *needles: str) -> None:
    """Exit 2, nothing on stdout, an ``ERROR:`` line on stderr containing every needle, no traceback."""
    assert res.exit_code == 2, (res.stdout, res.stderr)
    assert res.stdout == ""
    assert res.stderr.startswith("ERROR: "), res.stderr
    for n in needles:
        assert n in res.stderr, (n, res.stderr)
    assert "Traceback" not in res.stderr


# ================================================================ defaults and the JSON contract

def test_default_table_mentions_model_and_gpus(invoke):
    """'mpg estimate' with no flags exits 0 and its table names gpt3-175b on 1,024 GPUs."""
    res = invoke("estimate")
    assert res.exit_code == 0, res.stderr
    assert "gpt3-175b" in res.stdout
    assert "1,024" in res.stdout
    assert "Time to train" in res.stdout


CONTRACT = {
    "inputs": {"model", "cluster", "gpu", "gpus", "tokens", "seq_length", "global_batch", "micro_batch", "tp", "pp",
               "dp", "ep", "zero", "recompute", "precision"},
    "params": {"total", "active"},
    "flops": {"per_token_model", "total_model", "total_hardware"},
    "throughput": {"tflops_per_gpu", "model_tflops_per_gpu", "mfu", "hfu", "tokens_per_second", "step_time_s"},
    "time": {"seconds", "days"},
    "memory": {"per_gpu_bytes", "capacity_bytes", "fits", "breakdown"},
}
TOP_LEVEL = {"schema_version", "mpg_version", "inputs", "params", "flops", "throughput", "time", "gpu_hours",
             "cost_usd", "energy_kwh", "memory", "assumptions", "checks"}


@pytest.fixture(scope="module")
def default_json(isolated_config_home):
    from typer.testing import CliRunner

    from mpg_cli.cli import app

    env = {"MPG_PRESETS": None, "XDG_CONFIG_HOME": str(isolated_config_home)}
    res = CliRunner(env=env).invoke(app, ["estimate", "--format", "json"], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout)


def test_json_has_every_contract_key(default_json):
    """--format json has schema_version 1 and every key of the documented contract."""
    d = default_json
    assert d["schema_version"] == 1
    assert d["mpg_version"] == __version__
    assert TOP_LEVEL <= set(d), TOP_LEVEL - set(d)
    for section, keys in CONTRACT.items():
        assert keys <= set(d[section]), (section, keys - set(d[section]))
    assert set(d["memory"]["breakdown"]) >= {"weights", "gradients", "optimizer", "activations", "overhead"}
    assert isinstance(d["assumptions"], list) and all(isinstance(a, str) for a in d["assumptions"])
    assert d["checks"] == []


def test_json_numbers_are_finite(default_json):
    """Every number in the default JSON document is finite."""
    found = list(numbers(default_json))
    assert len(found) > 30
    bad = [(p, x) for p, x in found if not math.isfinite(x)]
    assert not bad


def test_json_default_inputs(default_json):
    """The default estimate is gpt3-175b on the whole dgx-a100 cluster (1024 A100 80GB) in bf16."""
    i = default_json["inputs"]
    assert (i["model"], i["cluster"], i["gpu"], i["gpus"], i["precision"]) == (
        "gpt3-175b", "dgx-a100", "a100-80gb", 1024, "bf16")
    assert i["tp"] * i["pp"] * i["dp"] * i.get("cp", 1) == 1024


def test_json_default_tokens_are_chinchilla(default_json):
    """Without --tokens, tokens are 20 per parameter and an assumption says so."""
    d = default_json
    assert d["inputs"]["tokens"] == pytest.approx(20 * d["params"]["total"], rel=1e-12)
    line = [a for a in d["assumptions"] if a.startswith("tokens:")]
    assert line and "20 per parameter" in line[0] and "compute-optimal" in line[0]


def test_json_internal_consistency(default_json):
    """JSON totals agree: days = seconds/86400, GPU-hours = GPUs × hours, FLOPs = per token × tokens."""
    d = default_json
    assert d["time"]["days"] == pytest.approx(d["time"]["seconds"] / 86400, rel=1e-12)
    assert d["gpu_hours"] == pytest.approx(d["inputs"]["gpus"] * d["time"]["seconds"] / 3600, rel=1e-12)
    assert d["flops"]["total_model"] == pytest.approx(d["flops"]["per_token_model"] * d["inputs"]["tokens"], rel=1e-12)
    assert d["memory"]["per_gpu_bytes"] == pytest.approx(sum(d["memory"]["breakdown"].values()), rel=1e-12)
    assert d["memory"]["fits"] is (d["memory"]["per_gpu_bytes"] <= d["memory"]["usable_bytes"])


# ================================================================ acceptance examples from the issue

@pytest.mark.parametrize("args, lo, hi", [
    (("-m", "gpt3-175b", "-c", "dgx-a100", "-n", "1024", "--tokens", "300B", "--tflops", "140", "--recompute", "full"),
     33.5, 35.0),
    (("-m", "gpt-1t", "-c", "dgx-a100", "-n", "3072", "--tokens", "450B", "--tflops", "163", "--recompute", "full"),
     83.0, 85.5),
])
def test_acceptance_examples_match_narayanan(invoke_json, args, lo, hi):
    """The issue's GPT-3 and GPT-1T examples land near Narayanan's 34 and 84 days."""
    d = invoke_json("estimate", *args)
    assert lo <= d["time"]["steady_state_days"] <= hi  # Narayanan eq. 4 is a steady-state figure
    assert d["throughput"]["tflops_per_gpu"] == pytest.approx(float(args[args.index("--tflops") + 1]), rel=1e-9)
    assert d["inputs"]["recompute"] == "full"


# ================================================================ --tokens parsing

@pytest.mark.parametrize("forms, expected", [
    (("300e9", "300B", "300b", "300G", "300000000000", "300_000_000_000", "0.3T"), 300e9),
    (("1.4T", "1400B", "1.4e12", "1400000000000"), 1.4e12),
])
def test_token_forms_are_equivalent(invoke_json, forms, expected):
    """Scientific, suffixed and plain token counts parse to the same number."""
    got = [invoke_json("estimate", *SMALL, "--tokens", f)["inputs"]["tokens"] for f in forms]
    assert got == pytest.approx([expected] * len(forms), rel=1e-12)


def test_tokens_chinchilla_equals_default(invoke_json):
    """--tokens chinchilla gives the same tokens as leaving --tokens out (20 per parameter)."""
    a = invoke_json("estimate", *SMALL, "--tokens", "chinchilla")
    b = invoke_json("estimate", *SMALL)
    assert a["inputs"]["tokens"] == b["inputs"]["tokens"] == pytest.approx(20 * a["params"]["total"])


@pytest.mark.parametrize("bad", ["abc", "0", "-5", "inf", "nan", "1e19", "3X", ""])
def test_bad_tokens_exit_2_naming_the_flag(invoke, bad):
    """An unreadable, zero, negative, infinite or absurd --tokens exits 2 with an ERROR naming --tokens."""
    assert_input_error(invoke("estimate", *SMALL, "--tokens", bad), "--tokens")


# ================================================================ parallel layout

def test_tp_pp_are_honoured(invoke_json):
    """--tp 8 --pp 8 on 1024 GPUs appears in the JSON inputs with dp derived as 16."""
    i = invoke_json("estimate", "--tp", "8", "--pp", "8")["inputs"]
    assert (i["tp"], i["pp"], i["dp"]) == (8, 8, 16)


def test_fully_given_layout_is_used_verbatim(invoke_json):
    """A fully given layout (virtual stages too, with pp > 1) is reported as given and used unchanged."""
    i = invoke_json("estimate", *FIXED, "--virtual-stages", "1")["inputs"]
    assert (i["tp"], i["pp"], i["dp"], i["zero"], i["micro_batch"], i["recompute"]) == (8, 8, 16, 1, 1, "selective")
    assert i["layout_source"] == "given"


def test_search_filled_dimension_is_reported_as_searched(invoke_json):
    """--tp 8 --pp 8 with the rest given but the virtual stages is 'partly searched', not 'given'."""
    i = invoke_json("estimate", *FIXED)["inputs"]
    assert i["layout_source"] == "partly searched"


def test_tp_not_dividing_heads_exits_2(invoke):
    """--tp 7 on gpt3-175b (96 heads) exits 2 naming --tp and the heads."""
    assert_input_error(invoke("estimate", "-m", "gpt3-175b", "--tp", "7"), "--tp 7", "heads")


def test_more_stages_than_layers_exits_2(invoke):
    """--pp 97 on gpt3-175b (96 layers) exits 2 naming --pp and the layers."""
    assert_input_error(invoke("estimate", "-m", "gpt3-175b", "--pp", "97"), "--pp 97", "layers")


def test_uneven_pipeline_split_is_accepted(invoke_json):
    """--pp 7 on 96 layers is an uneven split that is honoured (tp 8 × pp 7 on 56 GPUs)."""
    i = invoke_json("estimate", "-m", "gpt3-175b", "-n", "56", "--tp", "8", "--pp", "7", "--tflops", "100")["inputs"]
    assert (i["tp"], i["pp"], i["dp"]) == (8, 7, 1)


def test_inconsistent_dp_exits_2(invoke):
    """--tp 8 --pp 8 --dp 3 on 1024 GPUs is inconsistent and exits 2."""
    assert_input_error(invoke("estimate", "--tp", "8", "--pp", "8", "--dp", "3", "-n", "1024"), "--gpus", "1024")


def test_model_parallel_not_dividing_gpus_exits_2(invoke):
    """tp·pp that does not divide --gpus exits 2."""
    assert_input_error(invoke("estimate", "--tp", "8", "--pp", "96", "-n", "1024"), "--gpus")


@pytest.mark.parametrize("flag, value", [("--zero", "5"), ("--zero", "-1"), ("--recompute", "bogus"),
                                         ("--tp", "0"), ("--micro-batch", "0"), ("--format", "yaml"),
                                         ("--precision", "fp4")])
def test_out_of_range_choices_exit_2(invoke, flag, value):
    """Out-of-range or unknown values for choice/range flags exit 2 with the flag named on stderr."""
    res = invoke("estimate", *SMALL, flag, value)
    assert res.exit_code == 2
    assert res.stdout == ""
    assert flag in res.stderr
    assert "Traceback" not in res.stderr


def test_ep_on_dense_model_exits_2(invoke):
    """--ep 2 on a dense model exits 2."""
    assert_input_error(invoke("estimate", *SMALL, "--ep", "2"), "--ep 2", "mixture-of-experts")


def test_micro_batch_not_dividing_global_batch_exits_2(invoke):
    """--micro-batch that does not divide --global-batch exits 2."""
    assert_input_error(invoke("estimate", *SMALL, "--micro-batch", "3", "--global-batch", "1024"),
                       "--micro-batch 3", "--global-batch 1024")


def test_precision_without_peak_exits_2(invoke):
    """--precision fp8 on an A100 (no fp8 peak) exits 2 and lists the precisions it has."""
    assert_input_error(invoke("estimate", *SMALL, "--precision", "fp8"), "fp8", "bf16")


# ================================================================ efficiency

def test_tflops_and_mfu_together_exit_2(invoke):
    """--tflops and --mfu together exit 2 naming both."""
    assert_input_error(invoke("estimate", *SMALL, "--tflops", "100", "--mfu", "0.4"), "--tflops", "--mfu")


def test_mfu_is_reported_back(invoke_json):
    """--mfu 0.5 gives throughput.mfu 0.5."""
    d = invoke_json("estimate", *FIXED, "--mfu", "0.5")
    assert d["throughput"]["mfu"] == pytest.approx(0.5, rel=1e-9)
    assert d["inputs"]["efficiency_source"] == "mfu"


def test_tflops_is_reported_back_as_hardware_tflops(invoke_json):
    """--tflops 150 gives 150 hardware TFLOP/s per GPU and HFU = 150/312."""
    d = invoke_json("estimate", *FIXED, "--tflops", "150")
    assert d["throughput"]["tflops_per_gpu"] == pytest.approx(150, rel=1e-9)
    assert d["throughput"]["hfu"] == pytest.approx(150 / 312, rel=1e-9)
    assert d["throughput"]["mfu"] < d["throughput"]["hfu"]  # selective recompute adds hardware FLOPs


def test_tflops_checked_against_overriding_gpu(invoke):
    """--tflops is checked against the --gpu override's peak (V100 fp16: 125 TFLOP/s)."""
    assert_input_error(invoke("estimate", *SMALL, "--gpu", "v100-32gb", "--precision", "fp16", "--tflops", "200"),
                       "--tflops", "v100-32gb", "125")


def test_mfu_implying_hardware_flops_above_peak_is_flagged(invoke):
    """An --mfu that, with the recompute overhead, implies HFU above 100 % is rejected or warned about."""
    # regression: --mfu 0.9 with full recompute used to report HFU ~120 % silently
    res = invoke("estimate", *FIXED[:-1], "full", "--mfu", "0.9", "--format", "json")
    rejected = res.exit_code == 2 and "--mfu" in res.stderr
    warned = res.exit_code == 0 and "WARNING" in res.stderr and ("peak" in res.stderr or "HFU" in res.stderr)
    assert rejected or warned, (res.exit_code, res.stderr)


def test_tflops_above_peak_exits_2(invoke):
    """--tflops above the GPU's dense peak (312 on A100) exits 2 naming --tflops and the peak."""
    assert_input_error(invoke("estimate", *SMALL, "--tflops", "400"), "--tflops", "312")


@pytest.mark.parametrize("flag, value", [
    ("--mfu", "nan"), ("--mfu", "0"), ("--mfu", "1.5"), ("--mfu", "-0.1"),
    ("--tflops", "nan"), ("--tflops", "inf"), ("--tflops", "0"), ("--tflops", "-1"),
    ("--goodput", "0"), ("--goodput", "nan"), ("--goodput", "1.5"),
])
def test_bad_efficiency_values_exit_2(invoke, flag, value):
    """NaN, infinite, zero, negative or >1 efficiency values exit 2 with an ERROR naming the flag."""
    assert_input_error(invoke("estimate", *SMALL, flag, value), flag)


def test_goodput_half_doubles_time(invoke_json):
    """--goodput 0.5 doubles days and GPU-hours relative to --goodput 1.0."""
    full = invoke_json("estimate", *FIXED, "--tflops", "150", "--goodput", "1.0")
    half = invoke_json("estimate", *FIXED, "--tflops", "150", "--goodput", "0.5")
    assert half["time"]["days"] == pytest.approx(2 * full["time"]["days"], rel=1e-12)
    assert half["gpu_hours"] == pytest.approx(2 * full["gpu_hours"], rel=1e-12)
    assert half["throughput"]["tokens_per_second"] == pytest.approx(full["throughput"]["tokens_per_second"], rel=1e-12)


def test_more_gpus_at_fixed_tflops_scale_time_down(invoke_json):
    """At fixed --tflops and recompute, doubling the GPUs halves the steady-state days (and the wall days, at a
    fixed --goodput)."""
    a = invoke_json("estimate", "-m", "gpt3-175b", "-n", "512", "--tflops", "140", "--recompute", "full")
    b = invoke_json("estimate", "-m", "gpt3-175b", "-n", "1024", "--tflops", "140", "--recompute", "full")
    assert a["time"]["steady_state_days"] == pytest.approx(2 * b["time"]["steady_state_days"], rel=1e-9)
    a = invoke_json("estimate", "-m", "gpt3-175b", "-n", "512", "--tflops", "140", "--recompute", "full", "--goodput", "0.9")
    b = invoke_json("estimate", "-m", "gpt3-175b", "-n", "1024", "--tflops", "140", "--recompute", "full", "--goodput", "0.9")
    assert a["time"]["days"] == pytest.approx(2 * b["time"]["days"], rel=1e-9)


# ================================================================ price

def test_price_sets_cost(invoke_json):
    """--price 2 gives cost_usd = gpu_hours × 2."""
    d = invoke_json("estimate", *FIXED, "--price", "2")
    assert d["cost_usd"] == pytest.approx(d["gpu_hours"] * 2, rel=1e-12)
    assert d["price_usd_per_gpu_hour"] == 2


def test_default_price_comes_from_the_preset(invoke_json):
    """Without --price, the A100 preset's price is used and stated in the assumptions."""
    d = invoke_json("estimate", *FIXED)
    assert d["price_usd_per_gpu_hour"] == 1.99
    assert d["cost_usd"] == pytest.approx(d["gpu_hours"] * 1.99, rel=1e-12)
    assert any(a.startswith("price:") for a in d["assumptions"])


def test_no_price_gives_null_cost(invoke_json):
    """A GPU without a price gives cost_usd null (not 0, not NaN)."""
    d = invoke_json("estimate", *SMALL, "--gpu", "v100-32gb", "--precision", "fp16")
    assert d["cost_usd"] is None


def test_energy_is_gpus_times_tdp_times_time(invoke_json):
    """energy_kwh = GPUs × TDP (400 W for A100 80GB) × PUE (1 when the cluster gives none) × hours / 1000."""
    d = invoke_json("estimate", *FIXED, "--tflops", "150")
    assert d["energy_kwh"] == pytest.approx(1024 * 400 * d["time"]["seconds"] / 3.6e6, rel=1e-12)


# ================================================================ training run

def test_batch_and_sequence_are_honoured(invoke_json):
    """--global-batch and --seq-length appear in the inputs and set the iteration count."""
    d = invoke_json("estimate", *SMALL, "--global-batch", "512", "--seq-length", "1024", "--tokens", "1B")
    assert (d["inputs"]["global_batch"], d["inputs"]["seq_length"]) == (512, 1024)
    assert d["time"]["iterations"] == pytest.approx(1e9 / (512 * 1024), rel=1e-12)
    assert d["throughput"]["step_time_s"] == pytest.approx(512 * 1024 / d["throughput"]["tokens_per_second"],
                                                           rel=1e-9)


# ================================================================ output formats

def test_csv_has_header_and_one_row(invoke):
    """--format csv prints a header and one data row that csv parses, matching the JSON numbers."""
    res = invoke("estimate", *FIXED, "--format", "csv")
    assert res.exit_code == 0, res.stderr
    rows = list(csv.reader(io.StringIO(res.stdout)))
    assert len(rows) == 2
    header, row = rows
    assert len(header) == len(row)
    rec = dict(zip(header, row))
    assert {"schema_version", "inputs.model", "time.days", "gpu_hours", "memory.fits"} <= set(header)
    assert rec["inputs.model"] == "gpt3-175b"
    d = json.loads(invoke("estimate", *FIXED, "--format", "json").stdout)
    assert float(rec["time.days"]) == pytest.approx(d["time"]["days"], rel=1e-12)


def test_markdown_has_table_rows(invoke):
    """--format markdown prints headings and '|' table rows."""
    res = invoke("estimate", *FIXED, "--format", "markdown")
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    table_rows = [ln for ln in lines if ln.startswith("|") and ln.endswith("|")]
    assert len(table_rows) >= 10
    assert any(ln.startswith("## ") for ln in lines)
    assert "gpt3-175b" in res.stdout


def test_output_file_json(invoke, tmp_path):
    """-o file.json writes the JSON document to the file and prints nothing on stdout."""
    out = tmp_path / "file.json"
    res = invoke("estimate", *FIXED, "--format", "json", "-o", str(out))
    assert res.exit_code == 0, res.stderr
    assert res.stdout == ""
    d = json.loads(out.read_text())
    assert d["schema_version"] == 1 and d["inputs"]["model"] == "gpt3-175b"
    assert [p.name for p in tmp_path.iterdir()] == ["file.json"]  # no temporary file left behind


def test_output_file_table(invoke, tmp_path):
    """-o with the table format writes the tables to the file and nothing to stdout."""
    out = tmp_path / "report.txt"
    res = invoke("estimate", *FIXED, "-o", str(out))
    assert res.exit_code == 0, res.stderr
    assert res.stdout == ""
    assert "Time to train" in out.read_text()


def test_output_to_missing_folder_exits_2(invoke, tmp_path):
    """-o into a folder that does not exist exits 2 naming --output."""
    assert_input_error(invoke("estimate", *SMALL, "-f", "json", "-o", str(tmp_path / "no" / "x.json")), "--output")


def test_json_stdout_is_pure_json_even_with_warnings(invoke):
    """Warnings go to stderr, so JSON on stdout stays parseable."""
    res = invoke("estimate", "-m", "gpt3-175b", "-n", "8", "--format", "json")  # does not fit: a warning
    assert res.exit_code == 0
    assert "WARNING" in res.stderr
    assert json.loads(res.stdout)["memory"]["fits"] is False


def test_quiet_silences_warnings(invoke):
    """--quiet removes warnings from stderr."""
    res = invoke("estimate", "-m", "gpt3-175b", "-n", "8", "--format", "json", "--quiet")
    assert res.exit_code == 0
    assert res.stderr == ""


def test_explain_adds_step_breakdown(invoke_json):
    """--explain adds the step-time breakdown, whose parts sum to the step time."""
    d = invoke_json("estimate", *FIXED, "--explain")
    parts = d["step_time_breakdown_s"]
    assert parts and all(v >= 0 for v in parts.values())
    assert sum(parts.values()) == pytest.approx(d["throughput"]["step_time_s"], rel=1e-9)


def test_gpu_list_gives_scaling_rows(invoke_json):
    """--gpus 8,16,32 gives one scaling row per GPU count."""
    d = invoke_json("estimate", "-m", "gpt2-xl", "--gpus", "8,16,32", "--mfu", "0.4")
    assert [r["gpus"] for r in d["rows"]] == [8, 16, 32]
    assert d["rows"][0]["scaling_efficiency"] == pytest.approx(1.0)


def test_scaling_rows_carry_goodput_and_wall_days(invoke_json, invoke):
    """Scaling rows' days are the wall time (steady days / goodput); goodput never rises with the GPU count."""
    d = invoke_json("estimate", "-m", "llama3-8b", "-c", "dgx-h100", "--gpus", "64,1024,16384", "--tokens", "2T")
    rows = d["rows"]
    for r in rows:
        assert r["days"] == pytest.approx(r["steady_state_days"] / r["goodput"], rel=1e-6)
    assert rows[0]["goodput"] >= rows[1]["goodput"] >= rows[2]["goodput"]
    assert rows[2]["goodput"] < 0.99
    out = invoke("estimate", "-m", "llama3-8b", "-c", "dgx-h100", "--gpus", "64,1024", "--tokens", "2T").stdout
    assert "days (wall)" in out and "goodput" in out


# ================================================================ gates

def test_gpu_hours_gate_fails(invoke):
    """--max-gpu-hours 1 exits 1 with a 'GATE FAILED: gpu_hours … > … (+…%)' line on stderr."""
    res = invoke("estimate", *FIXED, "--max-gpu-hours", "1")
    assert res.exit_code == 1
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("GATE FAILED: gpu_hours")]
    assert len(lines) == 1
    assert ">" in lines[0] and "%" in lines[0]
    assert "Time to train" in res.stdout  # the report is still printed


def test_gate_result_in_json(invoke):
    """A failed gate is listed in the JSON checks with passed false and the JSON still prints."""
    res = invoke("estimate", *FIXED, "--max-gpu-hours", "1", "--format", "json")
    assert res.exit_code == 1
    checks = json.loads(res.stdout)["checks"]
    assert checks == [{"name": "gpu_hours", "value": pytest.approx(checks[0]["value"]), "limit": 1.0, "passed": False}]


def test_generous_days_gate_passes(invoke):
    """--max-days 1e9 passes and exits 0 with no gate line."""
    res = invoke("estimate", *FIXED, "--max-days", "1e9")
    assert res.exit_code == 0
    assert "GATE FAILED" not in res.stderr


def test_tight_days_gate_fails(invoke):
    """--max-days 1 on GPT-3 exits 1 with a 'GATE FAILED: days' line."""
    res = invoke("estimate", *FIXED, "--max-days", "1")
    assert res.exit_code == 1
    assert any(ln.startswith("GATE FAILED: days") for ln in res.stderr.splitlines())


def test_require_fit_fails_when_it_does_not_fit(invoke):
    """--require-fit for GPT-3 on 8 V100s without ZeRO or recompute exits 1 with a 'fits' gate line."""
    res = invoke("estimate", "-m", "gpt3-175b", "--gpu", "v100-32gb", "-n", "8", "--tp", "8", "--pp", "1",
                 "--zero", "0", "--micro-batch", "1", "--recompute", "none", "--precision", "fp16", "--require-fit")
    assert res.exit_code == 1
    assert any(ln.startswith("GATE FAILED: fits") for ln in res.stderr.splitlines()), res.stderr


def test_require_fit_passes_when_it_fits(invoke):
    """--require-fit passes (exit 0) when the layout fits."""
    res = invoke("estimate", *SMALL, "--require-fit")
    assert res.exit_code == 0, res.stderr
    assert "GATE FAILED" not in res.stderr


@pytest.mark.parametrize("limit, code", [("1", 1), ("1e12", 0)])
def test_cost_gate(invoke, limit, code):
    """--max-cost with --price fails below the cost (exit 1) and passes above it (exit 0)."""
    res = invoke("estimate", *FIXED, "--price", "2", "--max-cost", limit)
    assert res.exit_code == code
    assert ("GATE FAILED: cost_usd" in res.stderr) is (code == 1)


def test_cost_gate_without_price_exits_2(invoke):
    """--max-cost on a GPU with no price and no --price exits 2 asking for --price."""
    assert_input_error(invoke("estimate", *SMALL, "--gpu", "v100-32gb", "--precision", "fp16", "--max-cost", "10"),
                       "--max-cost", "--price")


def test_several_failed_gates_each_get_a_line(invoke):
    """Two failed gates print two GATE FAILED lines and exit 1."""
    res = invoke("estimate", *FIXED, "--max-days", "1", "--max-gpu-hours", "1")
    assert res.exit_code == 1
    assert sum(ln.startswith("GATE FAILED:") for ln in res.stderr.splitlines()) == 2


# ================================================================ presets and model files

def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


TINY = "name: tiny\nlayers: 4\nhidden_size: 256\nheads: 4\nvocab_size: 1000\nseq_length: 512\n"


def test_unknown_model_suggests_a_name(invoke):
    """An unknown model preset exits 2 with a did-you-mean."""
    res = invoke("estimate", "-m", "gpt3-175")
    assert_input_error(res, "gpt3-175")
    assert "did you mean" in res.stderr and "gpt3-175b" in res.stderr


@pytest.mark.parametrize("flag, name, suggestion", [("-c", "dgx-a10", "dgx-a100"), ("--gpu", "h100-sx", "h100-sxm")])
def test_unknown_cluster_and_gpu_suggest_a_name(invoke, flag, name, suggestion):
    """Unknown cluster and GPU presets exit 2 with a did-you-mean."""
    res = invoke("estimate", flag, name)
    assert_input_error(res, name, "did you mean", suggestion)


def test_model_yaml_file_path_works(invoke_json, tmp_path):
    """A model YAML file given by path is loaded and estimated."""
    f = write(tmp_path / "tiny.yaml", TINY)
    d = invoke_json("estimate", "-m", str(f), "-c", "dgx-a100", "-n", "8")
    assert d["inputs"]["model"] == "tiny"
    # defaults: GeLU 4h FFN, no biases, RoPE, untied input/output embeddings, LayerNorm (2h) ×2 per layer + final
    h, v = 256, 1000
    expected = 4 * (4 * h * h + 8 * h * h + 2 * 2 * h) + 2 * v * h + 2 * h
    assert d["params"]["total"] == expected


def test_user_preset_dir_adds_and_overrides(invoke_json, tmp_presets):
    """--presets DIR adds presets by name (model, GPU and a cluster that uses that GPU)."""
    write(tmp_presets / "models" / "tiny.yaml", TINY)
    write(tmp_presets / "gpus" / "mygpu.yaml",
          "memory_gib: 24\nmemory_bandwidth_tb_s: 1.0\ngeneration: ampere\ntdp_watts: 300\npeak_tflops:\n  bf16: 100\n")
    write(tmp_presets / "clusters" / "mine.yaml",
          "gpu: mygpu\ngpus_per_node: 4\nnodes: 2\nintra_node_gb_s: 100\ninter_node_gb_s: 10\n")
    d = invoke_json("estimate", "-m", "tiny", "-c", "mine", "--presets", str(tmp_presets))
    i = d["inputs"]
    assert (i["model"], i["cluster"], i["gpu"], i["gpus"]) == ("tiny", "mine", "mygpu", 8)
    assert d["throughput"]["peak_tflops_per_gpu"] == 100


def test_user_preset_overrides_builtin(invoke_json, tmp_presets):
    """A user preset with a built-in's name replaces the built-in."""
    write(tmp_presets / "models" / "gpt2-xl.yaml", TINY.replace("name: tiny", "name: gpt2-xl"))
    d = invoke_json("estimate", *SMALL, "--presets", str(tmp_presets))
    assert d["params"]["total"] < 10e6


def test_mpg_presets_env_is_searched(runner, tmp_presets):
    """$MPG_PRESETS adds a preset directory like --presets does."""
    from mpg_cli.cli import app

    write(tmp_presets / "models" / "tiny.yaml", TINY)
    res = runner.invoke(app, ["estimate", "-m", "tiny", "-n", "8", "-f", "json"],
                        env={"MPG_PRESETS": str(tmp_presets)}, catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["inputs"]["model"] == "tiny"


BAD_MODELS = {
    # id: (file text, words the error must contain besides the file name)
    "malformed": ("layers: 4\nhidden_size: [256\n", ("malformed YAML", "line")),
    "unknown-key": (TINY.replace("hidden_size", "hiden_size"), ("hiden_size", "did you mean 'hidden_size'")),
    "wrong-type": (TINY.replace("layers: 4", "layers: four"), ("layers", "whole number")),
    "float-layers": (TINY.replace("layers: 4", "layers: 4.5"), ("layers", "whole number")),
    "bool-type": (TINY + "tied_embeddings: yes please\n", ("tied_embeddings", "true or false")),
    "zero": (TINY.replace("layers: 4", "layers: 0"), ("layers", "greater than 0")),
    "negative": (TINY.replace("hidden_size: 256", "hidden_size: -256"), ("hidden_size", "greater than 0")),
    "heads-not-dividing": (TINY.replace("heads: 4", "heads: 3"), ("heads", "hidden_size")),
    "kv-heads-not-dividing": (TINY + "kv_heads: 3\n", ("kv_heads",)),
    "bad-choice": (TINY + "ffn_type: swiglo\n", ("ffn_type", "did you mean 'swiglu'")),
    "missing-key": (TINY.replace("vocab_size: 1000\n", ""), ("vocab_size", "missing")),
    "python-tag": (TINY.replace("layers: 4", "layers: !!python/object/apply:os.system ['true']"), ("line 2",)),
    "alias-scalar": ("layers: &a 4\nhidden_size: 256\nheads: *a\nvocab_size: 1000\nseq_length: 512\n", ("alias",)),
    "alias-mapping": (TINY + "moe: &m {experts: 8, top_k: 2, expert_ffn_hidden_size: 512}\nmla: *m\n", ("alias",)),
    "top-level-list": ("- 1\n- 2\n", ("expected a mapping",)),
    "empty": ("\n", ("empty",)),
}


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_bad_model_file_exits_2_naming_file_and_key(invoke, tmp_path, case):
    """A malformed or invalid model YAML exits 2 with an ERROR naming the file and the key (or line), no traceback."""
    text, needles = BAD_MODELS[case]
    f = write(tmp_path / f"{case}.yaml", text)
    res = invoke("estimate", "-m", str(f), "-n", "8")
    assert_input_error(res, str(f), *needles)
    assert "Traceback" not in res.stdout


def test_python_tag_is_never_executed(invoke, tmp_path):
    """A !!python/object tag in a preset is refused, never constructed."""
    marker = tmp_path / "pwned"
    f = write(tmp_path / "evil.yaml", TINY.replace(
        "layers: 4", f"layers: !!python/object/apply:os.system ['touch {marker}']"))
    res = invoke("estimate", "-m", str(f), "-n", "8")
    assert res.exit_code == 2
    assert not marker.exists()


def test_missing_model_file_exits_2(invoke, tmp_path):
    """A model path that does not exist exits 2 naming it."""
    assert_input_error(invoke("estimate", "-m", str(tmp_path / "nope.yaml")), "nope.yaml", "not found")


def test_non_utf8_model_file_exits_2(invoke, tmp_path):
    """A model file that is not UTF-8 exits 2 naming it."""
    f = tmp_path / "latin1.yaml"
    f.write_bytes(TINY.encode() + b"description: caf\xe9\n")
    assert_input_error(invoke("estimate", "-m", str(f), "-n", "8"), str(f), "UTF-8")


def test_bad_cluster_file_names_the_gpu_key(invoke, tmp_path):
    """A cluster YAML whose GPU is unknown exits 2 naming the file and its gpu key."""
    f = write(tmp_path / "c.yaml", "gpu: a100-80g\ngpus_per_node: 8\nnodes: 1\nintra_node_gb_s: 300\n"
                                   "inter_node_gb_s: 25\n")
    assert_input_error(invoke("estimate", *SMALL[:2], "-c", str(f)), str(f), "gpu", "did you mean 'a100-80gb'")


# ================================================================ version and help

def test_version(invoke):
    """mpg --version prints 'mpg <version>' and exits 0."""
    res = invoke("--version")
    assert res.exit_code == 0
    assert res.stdout.strip() == f"mpg {__version__}"


def test_root_help(invoke):
    """mpg --help exits 0 and lists the estimate command and the exit codes."""
    res = invoke("--help")
    assert res.exit_code == 0
    assert "estimate" in res.stdout
    assert "Exit codes" in res.stdout


def test_estimate_help_mentions_flags_and_examples(invoke):
    """mpg estimate --help exits 0, documents --tokens and shows Examples."""
    res = invoke("estimate", "--help")
    assert res.exit_code == 0
    for word in ("--tokens", "--tflops", "--mfu", "--max-gpu-hours", "--require-fit", "Examples"):
        assert word in res.stdout, word


def test_strong_scaling_stays_strong_when_a_count_needs_a_nearby_batch(invoke_json, invoke):
    """Without --weak-scaling the table is strong scaling even when a count (48 GPUs) uses a batch within 1/8 of the
    default; --weak-scaling says weak."""
    d = invoke_json("estimate", "-m", "llama2-70b", "-c", "dgx-a100", "--gpus", "32,48")
    assert d["scaling"] == "strong"
    assert len({r["global_batch"] for r in d["rows"]}) == 2
    assert invoke_json("estimate", "-m", "llama2-70b", "-c", "dgx-a100", "--gpus", "32,64",
                       "--weak-scaling")["scaling"] == "weak"
