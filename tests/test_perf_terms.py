"""Unit tests of the step-time model's terms against the formulas' golden values."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mpg_cli.core.perf import Hardware, PerfOptions, collective_time, load_default_constants, ring_latency, step_time
from mpg_cli.core.perf.constants import LINK_EFFICIENCY_INTER, LINK_EFFICIENCY_INTRA
from mpg_cli.core.specs import Layout
from mpg_cli.presets import load_model

HW = Hardware(peak_flops=312e12, hbm_bytes_s=2.039e12, generation="ampere", gpus_per_node=8,
              intra_bytes_s=300e9, inter_bytes_s=25e9)
C = load_default_constants()
GPT3 = load_model("gpt3-175b")


def test_allreduce_within_a_node_is_the_ring_formula():
    """An all-reduce on one node costs 2(n−1)/n·S/(W·eff) plus latency (nccl-tests busbw model)."""
    s = 1e9
    expect = 2 * 7 / 8 * s / (300e9 * LINK_EFFICIENCY_INTRA) + ring_latency(8, 1)
    assert collective_time(s, 8, 8, 2.0, HW) == pytest.approx(expect)


def test_allgather_factor_is_half_the_allreduce():
    """Reduce-scatter/all-gather move (n−1)/n·S: half an all-reduce's bytes."""
    s = 1e9
    ar = collective_time(s, 8, 8, 2.0, HW) - ring_latency(8, 1)
    ag = collective_time(s, 8, 8, 1.0, HW) - ring_latency(8, 1)
    assert ag == pytest.approx(ar / 2)


def test_cross_node_collective_uses_the_nics_of_the_group():
    """Across nodes, a group with 8 GPUs per node uses 8 NICs; one GPU per node uses one (modeling-notes 4)."""
    s = 1e9
    eight = collective_time(s, 64, 8, 2.0, HW) - ring_latency(64, 8)
    one = collective_time(s, 64, 1, 2.0, HW) - ring_latency(64, 8)
    assert one == pytest.approx(2 * 63 / 64 * s / (25e9 * LINK_EFFICIENCY_INTER))
    assert eight == pytest.approx(max(2 * 63 / 64 * s / (300e9 * LINK_EFFICIENCY_INTRA),
                                      2 * 7 / 8 * s / (25e9 * 8 * LINK_EFFICIENCY_INTER)))
    assert eight < one


def test_single_rank_collective_is_free():
    """A collective over one rank costs nothing."""
    assert collective_time(1e9, 1, 1, 2.0, HW) == 0.0


def _step(gbs: int = 32, **kw):
    lay = Layout(**{**dict(tp=8, pp=8, dp=1, micro_batch=1, virtual_stages=1, zero=0, recompute="full",
                           sequence_parallel=False), **kw})
    return step_time(GPT3, lay, 2048, gbs, HW, PerfOptions(), C)


# The pipeline bubble, (p−1)/(v·m), is tests/test_golden.py::test_pipeline_bubble_fraction (both set-ups).


def test_tp_volume_per_layer_matches_narayanan():
    """TP moves 4 all-reduces of b·s·h per layer per micro-batch (6 with full recompute; Narayanan §3.2)."""
    full = _step(recompute="full", pp=1, gbs=1)
    none = _step(recompute="none", pp=1, gbs=1)
    one = collective_time(2048 * GPT3.hidden_size * 2.0, 8, 8, 2.0, HW)
    assert full.tp_comm == pytest.approx(96 * 6 * one)
    assert none.tp_comm == pytest.approx(96 * 4 * one)


def test_data_parallel_volume_is_twice_the_gradients():
    """ZeRO-0 data parallelism all-reduces 2(d−1)/d·Ψ·4 bytes (fp32 grads; ZeRO paper §7.1), exposed when not overlapped."""
    lay = Layout(tp=8, pp=1, dp=16, micro_batch=1, zero=0, recompute="full", sequence_parallel=False)
    st = step_time(GPT3, lay, 2048, 16, HW, PerfOptions(overlap_grad_reduce=False), C)
    from mpg_cli.core.params import param_breakdown

    pb = param_breakdown(GPT3)
    local = 96 * (pb.attention_layer + pb.dense_mlp_layer) / 8 + (pb.embedding + pb.output) / 8
    expect = collective_time(local * 4.0, 16, 1, 2.0, HW, count=max(1, -(-int(local) // int(40e6))))
    assert st.dp_comm == pytest.approx(expect, rel=3e-3)  # latency per bucket aside


def test_zero3_moves_more_than_plain_data_parallel():
    """ZeRO-3/FSDP gathers weights every micro-batch: at least 1.5× the bytes of a DP all-reduce (ZeRO §7.2)."""
    base = dict(tp=1, pp=1, dp=64, micro_batch=1, recompute="none", sequence_parallel=False)
    m = load_model("gpt-1.7b")
    opts = PerfOptions(grad_reduce_bytes=2.0, overlap_grad_reduce=False)
    c0 = replace(C, overlap=0.0)
    z3 = step_time(m, Layout(**base, zero=3), 2048, 64, HW, opts, c0).dp_comm
    z0 = step_time(m, Layout(**base, zero=0), 2048, 64, HW, opts, c0).dp_comm
    assert z3 >= 1.5 * z0 * 0.99


def test_tp_across_nodes_is_visibly_costly():
    """tp 16 on 8-GPU nodes puts TP traffic on the NICs: TP communication grows several-fold."""
    intra = _step(tp=8, pp=1, gbs=1).tp_comm
    inter = _step(tp=16, pp=1, gbs=1).tp_comm
    assert inter > 5 * intra


def test_moe_all_to_all_appears_with_expert_parallelism():
    """Expert parallelism adds all-to-all time; without it there is none."""
    m = load_model("mixtral-8x7b")
    lay = Layout(tp=1, pp=1, dp=8, ep=8, micro_batch=1, zero=1, recompute="none", sequence_parallel=False)
    assert step_time(m, lay, 4096, 8, HW).moe_all_to_all > 0
    assert step_time(m, replace(lay, ep=1), 4096, 8, HW).moe_all_to_all == 0


def test_breakdown_sums_to_total():
    """The explain breakdown adds up to the iteration time."""
    st = _step()
    assert sum(st.as_dict().values()) == pytest.approx(st.total)


@pytest.mark.parametrize("name,tp,pp,dp,ep,v", [("gpt3-175b", 4, 8, 32, 1, 6), ("llama3-8b", 1, 1, 64, 1, 1),
                                               ("mixtral-8x7b", 1, 4, 32, 8, 2), ("llama3-405b", 8, 16, 8, 1, 8)])
def test_search_bounds_are_below_the_step_time_for_every_zero_stage(name, tp, pp, dp, ep, v):
    """The search's lower bounds never exceed the step time at any ZeRO stage (so pruning cannot drop the fastest),
    the pipeline bound is the tighter one, and both grow with heavier recompute."""
    from mpg_cli.core.perf import compute_bound, pipeline_bound

    m = load_model(name)
    gbs = dp * 16
    for mb in (1, 2):
        last = (0.0, 0.0)
        for rc in ("none", "selective", "full"):
            lay = Layout(tp=tp, pp=pp, dp=dp, ep=ep, micro_batch=mb, virtual_stages=v, recompute=rc,
                         sequence_parallel=tp > 1)
            cb = compute_bound(m, lay, 2048, gbs, HW, PerfOptions(), C)
            pb = pipeline_bound(m, lay, 2048, gbs, HW, PerfOptions(), C)
            assert cb <= pb * (1 + 1e-12)
            for z in (0, 1, 2, 3):
                assert pb <= step_time(m, replace(lay, zero=z), 2048, gbs, HW, PerfOptions(), C).total * (1 + 1e-12)
            assert cb >= last[0] and pb >= last[1]
            last = (cb, pb)
