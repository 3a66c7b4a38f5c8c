"""mpg fit: published layouts fit, impossible ones are rejected, the search is fast and finds good layouts."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import examples

from mpg_cli.core.memory import memory_breakdown
from mpg_cli.core.planning import min_gpus, run_search
from mpg_cli.core.search import Constraints
from mpg_cli.core.specs import Layout
from mpg_cli.presets import load_model
from mpg_cli.scenario import build_requests


def request(model: str, cluster: str, gpus: int, **opts):
    return build_requests({"model": model, "cluster": cluster, "gpus": str(gpus), **opts})[0]


PUBLISHED_FITS = [
    # (model, cluster, GPUs, tp, pp, global batch, zero, recompute): layouts that trained
    ("gpt3-175b", "dgx-a100", 1024, 8, 8, 1536, 1, "full"),  # Narayanan 2021 §5.1 (tp 8, pp 8)
    ("bloom-176b", "dgx-a100", 384, 4, 12, 2048, 1, "full"),  # BLOOM: tp 4, pp 12, dp 8, ZeRO-1
    ("llama3-405b", "dgx-h100", 16384, 8, 16, 2048, 1, "full"),  # Llama 3: tp 8, pp 16
    ("gpt-1.7b", "dgx-a100", 32, 1, 1, 512, 0, "full"),  # Narayanan Table 1 rows
    ("gpt-3.6b", "dgx-a100", 64, 2, 1, 512, 0, "full"),
    ("gpt-7.5b", "dgx-a100", 128, 4, 1, 512, 0, "full"),
    ("gpt-18b", "dgx-a100", 256, 8, 1, 1024, 0, "full"),
    ("gpt-39b", "dgx-a100", 512, 8, 2, 1536, 0, "full"),
    ("gpt-76b", "dgx-a100", 1024, 8, 4, 1792, 0, "full"),
    ("gpt-145b", "dgx-a100", 1536, 8, 8, 2304, 0, "full"),
    ("gpt-310b", "dgx-a100", 1920, 8, 16, 2160, 0, "full"),
    ("gpt-530b", "dgx-a100", 2520, 8, 35, 2520, 0, "full"),
    ("gpt-1t", "dgx-a100", 3072, 8, 64, 3072, 0, "full"),
]


@pytest.mark.parametrize("model,cluster,gpus,tp,pp,gbs,zero,rc", PUBLISHED_FITS)
def test_published_layouts_fit(model, cluster, gpus, tp, pp, gbs, zero, rc):
    """Layouts that published runs trained with are found to fit (with micro-batch 1)."""
    req = request(model, cluster, gpus, tp=tp, pp=pp, global_batch=gbs, zero=zero, recompute=rc, micro_batch=1)
    res = run_search(req, keep=1)
    assert res.candidates, f"{model} tp{tp} pp{pp} on {gpus} GPUs should fit"
    assert res.candidates[0].memory.fits


def test_gpt3_without_parallelism_or_zero_is_rejected():
    """GPT-3 175B with tp 1, pp 1 and no ZeRO does not fit on 80 GB GPUs."""
    req = request("gpt3-175b", "dgx-a100", 1024, tp=1, pp=1, zero=0)
    assert run_search(req, keep=1).candidates == []


def test_weights_larger_than_all_memory_never_fit():
    """A model whose weights alone exceed the memory of all GPUs fits with no layout."""
    req = request("gpt-1t", "dgx-a100", 8)  # 1T params × 2 bytes = 2 TB > 8 × 80 GiB
    assert run_search(req, keep=1).candidates == []


def test_fit_cli_nothing_fits_exits_1_with_smallest_change(invoke):
    """When nothing fits, fit exits 1, says so on stderr and names the smallest change that fits."""
    # llama2-70b on 8 A100s (0.16 s): gpt3-175b on 8 (0.8 s) is the README's example, run by test_docs
    res = invoke("fit", "-m", "llama2-70b", "-c", "dgx-a100", "-n", "8")
    assert res.exit_code == 1
    assert "does not fit" in res.stderr
    assert "TIP: smallest change that fits: --gpus" in res.stderr


def test_fit_cli_constrained_zero_suggests_zero3(invoke):
    """A fixed ZeRO stage that cannot fit gets '--zero 3' (or another change) suggested."""
    res = invoke("fit", "-m", "gpt3-175b", "-c", "dgx-a100", "-n", "64", "--zero", "0", "--tp", "8",
                 "--recompute", "none", "--micro-batch", "4")
    assert res.exit_code == 1
    assert "--zero 3" in res.stdout or "--recompute full" in res.stdout


def test_fit_json_lists_layouts_with_estimate_keys(invoke_json):
    """fit --format json gives layouts, each with inputs, memory and throughput like estimate."""
    doc = invoke_json("fit", "-m", "gpt-7.5b", "-c", "dgx-a100", "-n", "64", "--top", "3")
    assert doc["command"] == "fit"
    assert 1 <= len(doc["layouts"]) <= 3
    for lay in doc["layouts"]:
        assert {"inputs", "memory", "throughput", "time"} <= set(lay)
        assert lay["memory"]["fits"] is True
    steps = [lay["throughput"]["step_time_s"] / lay["inputs"]["global_batch"] for lay in doc["layouts"]]
    assert steps == sorted(steps)


def test_fit_constraints_are_honoured(invoke_json):
    """Flags fix dimensions: every layout shown has the fixed tp, pp and ZeRO stage."""
    doc = invoke_json("fit", "-m", "gpt3-175b", "-c", "dgx-a100", "-n", "1024", "--tp", "8", "--pp", "8",
                      "--zero", "1")
    assert doc["layouts"]
    assert all((x["inputs"]["tp"], x["inputs"]["pp"], x["inputs"]["zero"]) == (8, 8, 1) for x in doc["layouts"])


def test_single_gpu_question(invoke):
    """A single-GPU question works: llama2-7b with full Adam does not fit one 80 GB GPU and the answer says why."""
    res = invoke("fit", "-m", "llama2-7b", "--gpu", "a100-80gb", "-n", "1")
    assert res.exit_code == 1
    assert "--gpus 2" in res.stdout


def test_min_gpus_finds_smallest_count():
    """--min-gpus: the count found fits and the next smaller count with a layout at the batch does not."""
    from mpg_cli.core.planning import candidate_gpu_counts

    # llama2-70b (16 GPUs, 0.08 s); gpt3-175b (48 GPUs, 0.5 s) is the README's 'fit --min-gpus' example (test_docs)
    req = request("llama2-70b", "dgx-a100", 8)
    n, cand = min_gpus(req)
    assert cand.memory.fits
    assert n % 8 == 0
    smaller = [k for k in candidate_gpu_counts(req) if k < n]
    assert smaller and not run_search(replace(req, gpus=smaller[-1]), keep=1).candidates


def test_min_gpus_cli(invoke):
    """mpg fit --min-gpus prints the fewest GPUs and exits 0."""
    res = invoke("fit", "-m", "llama2-7b", "-c", "dgx-a100", "--min-gpus")
    assert res.exit_code == 0
    assert "Fewest GPUs" in res.stdout


@pytest.mark.parametrize("model,gpus,tp,pp,gbs", [(r[0], r[2], r[3], r[4], r[5]) for r in PUBLISHED_FITS[3:]])
def test_search_is_at_least_as_fast_as_published_layout(model, gpus, tp, pp, gbs):
    """For the Table 1 models, fit's best layout is within 10% of the published layout's predicted speed, or faster."""
    free = run_search(request(model, "dgx-a100", gpus, global_batch=gbs), keep=1).candidates[0]
    pub = run_search(request(model, "dgx-a100", gpus, global_batch=gbs, tp=tp, pp=pp), keep=1).candidates[0]
    assert free.step.total <= 1.10 * pub.step.total


def test_search_speed_gpt_1t():
    """The whole search for gpt-1t on 3072 GPUs takes well under a second."""
    req = request("gpt-1t", "dgx-a100", 3072)
    t0 = time.perf_counter()
    res = run_search(req)
    assert time.perf_counter() - t0 < 1.0
    assert res.evaluated > 100 and res.candidates


GPT = load_model("gpt-7.5b")


@settings(max_examples=examples(60, 600), deadline=None)
@given(tp=st.sampled_from([1, 2, 4, 8]), pp=st.sampled_from([1, 2, 4]), zero=st.integers(0, 3),
       rc=st.sampled_from(["none", "selective", "full"]), mb=st.sampled_from([1, 2, 4]), dp=st.sampled_from([1, 2, 8]))
def test_memory_never_rises_with_tp_pp_zero_or_recompute(tp, pp, zero, rc, mb, dp):
    """Per-GPU memory never rises when tp, pp, the ZeRO stage or recomputation increases."""
    def mem(**kw):
        lay = Layout(**{**dict(tp=tp, pp=pp, dp=dp, micro_batch=mb, zero=zero, recompute=rc,
                               sequence_parallel=True), **kw})
        return memory_breakdown(GPT, lay, 2048, 64 * dp, "bf16", 80.0).total

    base = mem()
    if tp < 8:
        assert mem(tp=tp * 2) <= base * (1 + 1e-9)
    if pp < 4:
        assert mem(pp=pp * 2) <= base * (1 + 1e-9)
    if zero < 3:
        assert mem(zero=zero + 1) <= base * (1 + 1e-9)
    order = ["none", "selective", "full"]
    if rc != "full":
        assert mem(recompute=order[order.index(rc) + 1]) <= base * (1 + 1e-9)


def test_constraints_dataclass_empty():
    """Constraints() is empty; fixing any dimension makes it non-empty."""
    assert Constraints().is_empty
    assert not Constraints(tp=8).is_empty


@given(st.integers(1, 8), st.integers(1, 8), st.integers(1, 64), st.integers(1, 4), st.booleans(), st.booleans(),
       st.integers(1, 16), st.integers(1, 8), st.integers(0, 3), st.sampled_from(["none", "selective", "full"]))
@settings(max_examples=50, deadline=None)
def test_search_layout_builder_equals_replace(tp, pp, dp, cp, sp, fa, mb, v, zero, rc):
    """search._layout (built directly for speed) gives the layout dataclasses.replace gives, every field."""
    from mpg_cli.core.search import _layout

    base = Layout(tp=tp, pp=pp, dp=dp, ep=1, cp=cp, sequence_parallel=sp, flash_attention=fa)
    assert _layout(base, mb, v, zero, rc) == replace(base, micro_batch=mb, virtual_stages=v, zero=zero, recompute=rc)


def test_estimate_layout_is_the_fastest_of_the_full_search():
    """The estimate's search keeps one layout (more pruning, fewer layouts sized): it is the first of a search that
    keeps them all."""
    from mpg_cli.core.estimate import choose_layout

    for opts in ({}, {"model": "mixtral-8x7b", "cluster": "dgx-h100", "gpus": "512"},
                 {"model": "llama3-8b", "cluster": "dgx-h100", "gpus": "64"}):
        req = build_requests(opts)[0]
        best, _, res = choose_layout(req, req.model.seq_length)
        full = run_search(req, keep=10**6)
        assert best == full.candidates[0] and 0 < res.evaluated <= full.evaluated
