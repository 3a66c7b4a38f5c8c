"""mpg calibrate: measured throughput → ratio to the step-time model → projections that keep it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from mpg_cli.calibration import calibrate
from mpg_cli.core.estimate import Efficiency, estimate
from mpg_cli.scenario import build_requests
from mpg_cli.validation import load_runs

LOGS = Path(__file__).parent / "fixtures" / "logs"
RUN = ["-m", "llama3-70b", "-c", "dgx-h100", "-n", "256", "--tp", "8", "--pp", "2"]


def test_calibrate_from_log_writes_file_and_projects(invoke, tmp_path):
    """A Megatron log gives measured figures, a ratio, a projection, and a calibration file."""
    out = tmp_path / "calib.yaml"
    res = invoke("calibrate", str(LOGS / "megatron.log"), *RUN, "--tokens", "15T", "--save", str(out))
    assert res.exit_code == 0, res.stderr
    assert "Ratio measured / predicted" in res.stdout and "27 of 31 steps" in res.stdout
    doc = yaml.safe_load(out.read_text())
    assert doc["kind"] == "mpg-calibration" and doc["source_log"].endswith("megatron.log")
    assert doc["measured"]["step_time_s"] == pytest.approx(11.2, rel=0.01)
    assert doc["ratio"] == pytest.approx(doc["measured"]["tokens_per_second"] / doc["predicted"]["tokens_per_second"])


def test_calibration_is_applied_and_shown(invoke, invoke_json, tmp_path):
    """--calibration scales the step-time model's throughput by the ratio and says so."""
    out = tmp_path / "calib.yaml"
    assert invoke("calibrate", str(LOGS / "megatron.log"), *RUN, "--save", str(out)).exit_code == 0
    ratio = yaml.safe_load(out.read_text())["ratio"]
    plain = invoke_json("estimate", *RUN, "--tokens", "1T")
    calib = invoke_json("estimate", *RUN, "--tokens", "1T", "--calibration", str(out))
    assert calib["throughput"]["tokens_per_second"] == pytest.approx(plain["throughput"]["tokens_per_second"] * ratio)
    assert calib["inputs"]["calibration_ratio"] == pytest.approx(ratio)
    assert any("calibration applied" in a for a in calib["assumptions"])


def test_save_never_overwrites_without_force(invoke, tmp_path):
    """An existing --save file is kept (exit 2) unless --force is given."""
    out = tmp_path / "calib.yaml"
    out.write_text("keep me\n")
    res = invoke("calibrate", *RUN, "--step-time", "11.2", "--global-batch", "256", "--save", str(out))
    assert res.exit_code == 2 and "--force" in res.stderr
    assert out.read_text() == "keep me\n"
    res = invoke("calibrate", *RUN, "--step-time", "11.2", "--global-batch", "256", "--save", str(out), "--force")
    assert res.exit_code == 0
    assert yaml.safe_load(out.read_text())["kind"] == "mpg-calibration"


@pytest.mark.parametrize("name", ["unknown.log", "empty.log"])
def test_bad_log_exits_2_and_writes_nothing(invoke, tmp_path, name):
    """A log mpg cannot read is bad input: a clear error, exit 2, no file written."""
    out = tmp_path / "calib.yaml"
    res = invoke("calibrate", str(LOGS / name), *RUN, "--save", str(out))
    assert res.exit_code == 2
    assert res.stderr.startswith("ERROR:") and "Traceback" not in res.stderr
    assert not out.exists()


def test_truncated_log_exits_2(invoke, tmp_path):
    """A log cut off after two records has too few steady-state steps: exit 2, nothing written."""
    text = (LOGS / "megatron.log").read_text().splitlines()
    cut = tmp_path / "cut.log"
    first = [i for i, line in enumerate(text) if "elapsed time per iteration" in line][:2]
    cut.write_text("\n".join(text[: first[-1] + 1]) + "\n iteration      30/  500000 | consumed samp")
    out = tmp_path / "c.yaml"
    res = invoke("calibrate", str(cut), *RUN, "--save", str(out))
    assert res.exit_code == 2 and not out.exists()


def test_impossible_measurement_is_rejected(invoke):
    """A throughput above the GPUs' peak (wrong model or GPU count) is bad input, not a calibration."""
    res = invoke("calibrate", "-m", "llama3-70b", "-c", "dgx-h100", "-n", "8", "--tokens-per-second", "1e7")
    assert res.exit_code == 2 and "impossible" in res.stderr


def test_one_measurement_at_a_time(invoke):
    """Two measured figures at once are bad input."""
    assert invoke("calibrate", *RUN, "--step-time", "10", "--mfu", "0.4").exit_code == 2


def _table1():
    return [r for r in load_runs() if r["group"] == "narayanan2021-table1"]


def _request(run: dict, **extra):
    lay = run["layout"]
    model = {"narayanan2021-t1-1.7b": "gpt-1.7b", "narayanan2021-t1-3.6b": "gpt-3.6b",
             "narayanan2021-t1-7.5b": "gpt-7.5b", "narayanan2021-t1-18.4b": "gpt-18b",
             "narayanan2021-t1-39.1b": "gpt-39b", "narayanan2021-t1-76.1b": "gpt-76b",
             "narayanan2021-t1-145.6b": "gpt-145b", "narayanan2021-t1-310.1b": "gpt-310b",
             "narayanan2021-t1-529.6b": "gpt-530b", "narayanan2021-t1-1008b": "gpt-1t"}[run["id"]]
    opts = {"model": model, "cluster": "dgx-a100", "gpus": str(run["gpus"]), "tp": lay["tp"], "pp": lay["pp"],
            "global_batch": run["global_batch"], "zero": 0, "recompute": "full", "sequence_parallel": False,
            "flash_attention": False, "micro_batch": 1, **extra}
    return build_requests(opts)[0]


def test_calibrating_on_a_run_reproduces_it_exactly():
    """Calibrating on a run's published throughput and projecting the same run gives that throughput back."""
    run = _table1()[6]  # 145.6B on 1,536 GPUs
    req = _request(run)
    measured = run["measured"]["tokens_per_s_per_gpu"] * run["gpus"]
    cal = calibrate(req, {"step_time": None, "tokens_per_second": measured, "tflops": None, "mfu": None})
    assert cal.projection.tokens_per_second == pytest.approx(measured, rel=1e-12)
    again = estimate(type(req)(**{**req.__dict__, "efficiency": Efficiency("model", None, cal.ratio, "x")}))
    assert again.tokens_per_second == pytest.approx(measured, rel=1e-12)


@pytest.mark.parametrize("i", range(9))
def test_calibration_transfers_to_the_next_table1_row(i):
    """Calibrated on one Table 1 row, the projection of the next row lands within ±20% of its published figure."""
    rows = _table1()
    run, nxt = rows[i], rows[i + 1]
    req = _request(run)
    cal = calibrate(req, {"step_time": None, "tokens_per_second": run["measured"]["tokens_per_s_per_gpu"] * run["gpus"],
                          "tflops": None, "mfu": None})
    nreq = _request(nxt)
    proj = estimate(type(nreq)(**{**nreq.__dict__, "efficiency": Efficiency("model", None, cal.ratio, "x")}))
    per_gpu = proj.tokens_per_second / nxt["gpus"]
    assert per_gpu == pytest.approx(nxt["measured"]["tokens_per_s_per_gpu"], rel=0.20)


def test_other_log_formats_calibrate_end_to_end(tmp_path, invoke):
    """torchtitan and DeepSpeed logs calibrate end to end (exit 0) with a plausible model and GPU count."""
    cases = {"torchtitan.log": ["-m", "llama3-8b", "-c", "dgx-h100", "-n", "8"],
             "deepspeed.log": ["-m", "gpt-7.5b", "-c", "dgx-a100", "-n", "64"]}
    for name, args in cases.items():
        log = tmp_path / name
        shutil.copy(LOGS / name, log)
        res = invoke("calibrate", str(log), *args, "-f", "json")
        assert res.exit_code == 0, res.stderr
        doc = json.loads(res.stdout)
        assert doc["log"]["format"] == name.split(".")[0]
        assert 0.1 < doc["ratio"] < 10 and doc["measured"]["steps_used"] >= 3


def test_megatron_log_supplies_gpus_and_layout(invoke):
    """A Megatron log's arguments give the GPU count and tp/pp/micro-batch; a contradicting flag is bad input."""
    res = invoke("calibrate", str(LOGS / "megatron.log"), "-m", "llama3-70b", "-c", "dgx-h100", "-f", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    i = doc["inputs"]
    assert (i["gpus"], i["tp"], i["pp"], i["micro_batch"], i["global_batch"]) == (256, 8, 2, 1, 256)
    bad = invoke("calibrate", str(LOGS / "megatron.log"), "-m", "llama3-70b", "-c", "dgx-h100", "--tp", "4")
    assert bad.exit_code == 2 and "--tp 8" in bad.stderr
