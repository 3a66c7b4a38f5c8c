"""The step-time model's acceptance bounds against the published runs, and the shapes of its curves.

Run with ``pytest -n0 -s tests/test_validate.py`` to see the validation table (id, measured, predicted, error);
``-n0`` runs in one process (pytest-xdist workers do not show prints).
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import typer.main
import typer.testing
from typer.testing import CliRunner

from mpg_cli.cli import app
from mpg_cli.core.estimate import Request, Result, estimate, hardware_of
from mpg_cli.core.perf import PerfOptions, StepTime, step_time
from mpg_cli.core.search import Constraints
from mpg_cli.core.specs import Layout
from mpg_cli.presets import load_cluster, load_model
from mpg_cli.validation import CLASSES, by_class, cross_validate, load_runs, published_runs, summary, validate_all

MAX_MEDIAN_ABS_ERROR = 0.10  # cross-validated, all runs (the target)
MAX_P90_ABS_ERROR = 0.25  # cross-validated, all runs (the target)
# the bound for dense bf16, MoE, FP8 and Blackwell-class runs, held for every class mpg reports
MAX_CLASS_MEDIAN = {cls: 0.12 for cls in CLASSES}
SEQ = 2048  # every Narayanan Table 1 shape trains at s = 2048
ALLOWED_MEMORY_MISSES = {"mbridge-26.04.01-llama3-70b-gb200-fp8cs-64g-gbs256",  # CPU offload of 40 layers
                         "mbridge-26.04.01-llama3-70b-gb300-fp8cs-64g-gbs256"}  # CPU offload of 20 layers


@pytest.fixture(scope="module")
def results() -> list[Any]:
    return validate_all()


@pytest.fixture(scope="module")
def cv_results() -> list[Any]:
    return cross_validate()


@pytest.fixture(scope="module")
def a100():
    """The Selene-like DGX A100 cluster of Narayanan et al. 2021 (8 GPUs per node, 300/25 GB/s per GPU)."""
    return load_cluster("dgx-a100")


# ================================================================ acceptance bounds

def test_cross_validated_table_within_bounds(results, cv_results):
    """Leave-one-source-out: median |error| ≤ 10 %, p90 ≤ 25 % over both public files (table printed with -s)."""
    s, si = summary(cv_results), summary(results)
    width = max(len(r.id) for r in results)
    print(f"\n{'run':<{width}}  {'GPUs':>5}  {'measured':>12}  {'in-sample':>9}  {'CV':>7}")
    for r, c in zip(results, cv_results):
        print(f"{r.id:<{width}}  {r.gpus:>5,}  {r.measured_tokens_s_gpu:>12,.1f}  {r.error:>+9.1%}  {c.error:>+7.1%}")
    for cls, st in by_class(cv_results).items():
        print(f"CV {cls:<11} n={st['runs']:>3} median {st['median_abs_error']:.1%} p90 {st['p90_abs_error']:.1%}")
    print(f"in-sample: median {si['median_abs_error']:.1%}, p90 {si['p90_abs_error']:.1%}")
    assert s["runs"] == len(results) == len(load_runs()) >= 137
    assert s.get("unpredicted", 0) == 0
    assert s["median_abs_error"] <= MAX_MEDIAN_ABS_ERROR
    assert s["p90_abs_error"] <= MAX_P90_ABS_ERROR
    assert si["median_abs_error"] <= s["median_abs_error"]  # out of sample is never reported better than in


@pytest.mark.parametrize("cls", sorted(MAX_CLASS_MEDIAN))
def test_each_class_cross_validated_median(cv_results, cls):
    """Each class of run (dense bf16, FSDP, FP8, MoE, each generation) keeps its cross-validated median bound."""
    st = by_class(cv_results)[cls]
    assert st["runs"] >= 5
    assert st["median_abs_error"] <= MAX_CLASS_MEDIAN[cls], st


def test_every_run_predicted_with_finite_positive_throughput(results):
    """Every published run gets a finite, positive predicted tokens/s per GPU and an MFU in (0, 1)."""
    for r in results:
        assert r.predicted_tokens_s_gpu is not None and math.isfinite(r.predicted_tokens_s_gpu), r.id
        assert r.predicted_tokens_s_gpu > 0, r.id
        assert 0 < r.predicted_mfu < 1, (r.id, r.predicted_mfu)


def test_published_layouts_fit_except_unmodelled_offload(results):
    """Every published layout fits the memory model and none exceeds capacity, except the runs that offload to CPU."""
    over = {r.id for r in results if not r.memory_fits}
    assert over <= ALLOWED_MEMORY_MISSES, over
    assert all("cpu_offload" in r.unmodelled for r in results if r.id in ALLOWED_MEMORY_MISSES)
    assert all(r.memory_fraction <= 1.0 for r in results if r.id not in ALLOWED_MEMORY_MISSES)


def test_shipped_constants_match_the_shipped_runs():
    """The fitted constants record the sha256 of the runs file they were fitted on (scripts/fit_perf.py --check)."""
    from mpg_cli.validation import load_constants_document, runs_file_hash

    doc = load_constants_document()
    assert doc["provenance"]["runs_sha256"] == runs_file_hash()
    assert doc["count"] == len(doc["constants"]) <= 12
    assert set(doc["folds"]) == {r.family for r in published_runs()}


# ================================================================ curve shapes

# Narayanan et al. 2021 Table 1 (GPT, A100, full recompute, no ZeRO, no FlashAttention): preset, tp, pp, GPUs, batch
TABLE1 = [("gpt-1.7b", 1, 1, 32, 512), ("gpt-3.6b", 2, 1, 64, 512), ("gpt-7.5b", 4, 1, 128, 512),
          ("gpt-18b", 8, 1, 256, 1024), ("gpt-39b", 8, 2, 512, 1536), ("gpt-76b", 8, 4, 1024, 1792),
          ("gpt-145b", 8, 8, 1536, 2304)]
MEGATRON_2021: dict[str, Any] = {"zero": 0, "recompute": "full", "sequence_parallel": False, "flash_attention": False}


def table1_result(cluster, name: str, tp: int, pp: int, gpus: int, batch: int) -> Result:
    """Predict one Table 1 row on its published layout (micro-batch and interleaving searched, as validate does)."""
    req = Request(model=load_model(name), cluster=cluster, gpus=gpus, tokens=300e9, global_batch=batch,
                  constraints=Constraints(tp=tp, pp=pp, **MEGATRON_2021), perf=PerfOptions(overlap_grad_reduce=False))
    return estimate(req)


def test_table1_layouts_match_the_shipped_runs():
    """The Table 1 layouts used below are the ones shipped in runs.yaml (tp, pp, GPUs, global batch)."""
    shipped = sorted((r for r in load_runs() if r["group"].startswith("narayanan")), key=lambda r: r["gpus"])
    for (name, tp, pp, gpus, batch), run in zip(TABLE1, shipped):
        assert (run["layout"]["tp"], run["layout"]["pp"], run["gpus"], run["global_batch"]) == (tp, pp, gpus, batch), name


def test_mfu_rises_with_model_size_on_table1_layouts(a100):
    """Predicted MFU rises with model size across Narayanan Table 1 (1.7B → 145B), at most one small dip."""
    mfus = []
    for row in TABLE1:
        r = table1_result(a100, *row)
        assert r.memory.fits, row
        assert (r.layout.tp, r.layout.pp, r.layout.dp) == (row[1], row[2], row[3] // (row[1] * row[2]))
        mfus.append(r.mfu)
    print("\nTable 1 predicted MFU:", ", ".join(f"{row[0]} {m:.1%}" for row, m in zip(TABLE1, mfus)))
    assert mfus[-1] > mfus[0] + 0.03, mfus  # the paper: 44 % → 52 % of peak (hardware FLOPs) from 1.7B to 145B
    dips = [(a, b) for a, b in zip(mfus, mfus[1:]) if b < a - 1e-9]
    assert len(dips) <= 1 and all(a - b < 0.01 for a, b in dips), mfus
    assert all(0.2 < m < 0.6 for m in mfus), mfus


DEFAULT_PERF = PerfOptions()


def _step(cluster, name: str, lay: Layout, batch: int, opts: PerfOptions = DEFAULT_PERF) -> StepTime:
    return step_time(load_model(name), lay, SEQ, batch, hardware_of(cluster, "bf16"), opts)


def test_tensor_parallel_across_nodes_falls_off_sharply(a100):
    """gpt-145b: tp 16 (spans two 8-GPU nodes, NIC all-reduces) is ≥ 20 % slower per step than tp 8 on NVLink."""
    opts = PerfOptions(overlap_grad_reduce=False)
    common = dict(pp=8, micro_batch=1, virtual_stages=1, **MEGATRON_2021)
    t8 = _step(a100, "gpt-145b", Layout(tp=8, dp=24, **common), 2304, opts)
    t16 = _step(a100, "gpt-145b", Layout(tp=16, dp=12, **common), 2304, opts)
    assert a100.gpus_per_node == 8
    assert t16.total >= 1.2 * t8.total, (t8.total, t16.total)
    assert t16.tp_comm > 3 * t8.tp_comm, (t8.tp_comm, t16.tp_comm)  # the fall-off is the TP communication


def test_tensor_parallel_within_a_node_is_not_penalised_like_across(a100):
    """Within a node, tp 4 → tp 8 costs far less than tp 8 → tp 16 across nodes (same model, GPUs and batch)."""
    opts = PerfOptions(overlap_grad_reduce=False)
    common = dict(pp=8, micro_batch=1, virtual_stages=1, **MEGATRON_2021)
    t4, t8, t16 = (_step(a100, "gpt-145b", Layout(tp=tp, dp=1536 // (8 * tp), **common), 2304, opts).total
                   for tp in (4, 8, 16))
    assert t16 / t8 > 1.2 and t16 / t8 > (t8 / t4) + 0.15, (t4, t8, t16)


def _tokens_s_per_gpu(cluster, name: str, lay: Layout, batch: int) -> tuple[float, StepTime]:
    st = _step(cluster, name, lay, batch)
    return batch * SEQ / st.total / lay.gpus, st


def test_larger_pipeline_bubble_lowers_throughput(a100):
    """More pipeline stages at the same 16 micro-batches per pipeline: bubble share up, tokens/s per GPU down."""
    rows = []
    for pp in (1, 2, 4, 8):
        dp = 64 // (8 * pp)
        lay = Layout(tp=8, pp=pp, dp=dp, micro_batch=1, virtual_stages=1, zero=1, recompute="full")
        tps, st = _tokens_s_per_gpu(a100, "gpt-39b", lay, batch=16 * dp)
        assert st.microbatches == 16
        rows.append((pp, tps, st.pp_bubble / st.total))
    tps = [r[1] for r in rows]
    shares = [r[2] for r in rows]
    assert all(b < a for a, b in zip(tps, tps[1:])), rows
    assert shares[0] == 0 and all(b > a for a, b in zip(shares, shares[1:])), rows
    expected = (8 - 1) / 16  # Narayanan §2.2.1: bubble = (p − 1)/m of the ideal time
    assert shares[-1] == pytest.approx(expected / (1 + expected), rel=0.25), rows


def test_interleaving_shrinks_the_bubble(a100):
    """Virtual stages (interleaved schedule) cut the bubble and raise tokens/s per GPU at fixed pp and batch."""
    out = []
    for v in (1, 2, 3, 6):  # 48 layers / pp 4 = 12 per stage: v divides 12
        lay = Layout(tp=8, pp=4, dp=2, micro_batch=1, virtual_stages=v, zero=1, recompute="full")
        tps, st = _tokens_s_per_gpu(a100, "gpt-39b", lay, batch=32)
        out.append((v, tps, st.pp_bubble))
    assert all(b[1] > a[1] and b[2] < a[2] for a, b in zip(out, out[1:])), out


def test_more_micro_batches_per_pipeline_raise_throughput(a100):
    """At fixed pp (4) a larger global batch (more micro-batches per pipeline) gives higher tokens/s per GPU."""
    rows = []
    for batch in (64, 128, 256, 512, 1024):
        lay = Layout(tp=2, pp=4, dp=8, micro_batch=1, virtual_stages=1, zero=1, recompute="full")
        tps, st = _tokens_s_per_gpu(a100, "gpt-39b", lay, batch)
        assert st.microbatches == batch // 8
        rows.append((batch, tps, st.pp_bubble / st.total))
    assert all(b[1] > a[1] for a, b in zip(rows, rows[1:])), rows
    assert all(b[2] < a[2] for a, b in zip(rows, rows[1:])), rows


# ================================================================ the CLI

@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory):
    config_home = tmp_path_factory.mktemp("xdg-config")
    runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1", "MPG_PRESETS": None,
                            "XDG_CONFIG_HOME": str(config_home)})
    command = typer.main.get_command(app)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(typer.testing, "_get_command", lambda _app: command)
        yield lambda *args: runner.invoke(app, list(args), catch_exceptions=False)


def _no_constant(name: str) -> Any:
    raise ValueError(f"NaN/Infinity token {name!r} in JSON output")


def test_validate_json_reports_cross_validated_and_in_sample(cli, results, cv_results):
    """'mpg validate --format json' is strict JSON with every run, the CV summary first and the in-sample one beside it."""
    res = cli("validate", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout, parse_constant=_no_constant)
    assert doc["command"] == "validate" and doc["schema_version"] == 1
    assert doc["summary"]["runs"] == len(results) == len(doc["runs"])
    assert doc["summary"]["median_abs_error"] == pytest.approx(summary(cv_results)["median_abs_error"], rel=1e-12)
    assert doc["summary_in_sample"]["median_abs_error"] == pytest.approx(summary(results)["median_abs_error"])
    assert {r["id"] for r in doc["runs"]} == {r.id for r in results}
    assert "attention_eta.ampere" in " ".join(doc["warnings"])  # one source informs it: said
    # Blackwell's curve is informed by several families, all of one document: said too; Hopper's is not one's
    one_document = [w for w in doc["warnings"] if "of one source document only (megatron-bridge-performance)" in w]
    assert any("gemm_eta.blackwell " in w for w in one_document)
    assert not any("gemm_eta.hopper " in w for w in doc["warnings"])


def test_leave_one_document_out_is_reported_and_stricter(cli, cv_results):
    """'mpg validate' also reports the stricter check, a whole source document left out: no fold was fitted on its
    own document (without Megatron-Bridge's pages no Blackwell run is left, so Blackwell uses its stand-in), and
    llm-foundry's A100 and H100 FP8 tables, one README, are left out together."""
    from mpg_cli.validation import fold_constants

    folds = fold_constants(unit="document")
    assert set(folds) == {r.document for r in published_runs()} and len(folds) == 5
    assert {r.document for r in published_runs() if r.group.startswith("llm-foundry")} == {
        "llm-foundry-benchmarking-readme"}
    assert "blackwell" not in folds["megatron-bridge-performance"].gemm_eta
    assert "blackwell" in fold_constants()["megatron-bridge-qwen3-30b"].gemm_eta  # a family left out keeps it
    res = cli("validate", "--format", "json")
    doc = json.loads(res.stdout, parse_constant=_no_constant)
    pub = doc["by_class"]["cross_validated_by_document"]
    assert pub["all"]["runs"] == len(cv_results)
    assert pub["all"]["median_abs_error"] >= summary(cv_results)["median_abs_error"]
    assert "leave one source document out" in cli("validate").stdout


def test_validate_max_median_error_gate_fails(cli):
    """'mpg validate --max-median-error 0.0001' exits 1 with a 'GATE FAILED: median_abs_error' line on stderr."""
    res = cli("validate", "--max-median-error", "0.0001")
    assert res.exit_code == 1
    assert "GATE FAILED: cross-validated median_abs_error" in res.stderr
    assert "Traceback" not in res.stderr
    assert "CV median" in res.stdout  # the table is still printed


def test_validate_max_median_error_gate_passes_at_the_acceptance_bound(cli):
    """'mpg validate --group narayanan --max-median-error 0.10' exits 0 and lists only the 10 Table 1 runs (CV)."""
    res = cli("validate", "--group", "narayanan", "--max-median-error", str(MAX_MEDIAN_ABS_ERROR), "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout, parse_constant=_no_constant)
    assert doc["summary"]["runs"] == 10 == len(doc["runs"])
    assert all(r["group"].startswith("narayanan") for r in doc["runs"])


def test_readme_states_the_memory_misses(results):
    """The README names the runs over the memory limit, as the code finds them."""
    from pathlib import Path

    text = Path(__file__).resolve().parent.parent.joinpath("README.md").read_text()
    for r in results:
        if not r.memory_fits:
            assert r.id in text, r.id


def test_fit_finds_no_much_faster_layout_than_the_published_one():
    """For ≥ 90 % of published runs, the best layout 'mpg fit' finds (same GPUs, batch and framework) is ≤ 15 % faster."""
    from mpg_cli.validation import layout_gap

    gaps = [layout_gap(r) for r in published_runs()]
    over = [(g.id, g.gain, g.best) for g in gaps if g.gain is None or g.gain > 0.15]
    for row in over:
        print(row)
    assert 1 - len(over) / len(gaps) >= 0.90, over
