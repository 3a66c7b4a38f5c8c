"""Golden values from /work/shared/reference/formulas.md section E, computed through the core functions."""

from __future__ import annotations

import math

import pytest

from mpg_cli.core.estimate import hardware_of
from mpg_cli.core.flops import narayanan_eq4_time_s, token_flops
from mpg_cli.core.memory import activation_bytes_per_layer, model_state_bytes
from mpg_cli.core.params import total_params
from mpg_cli.core.perf import Hardware, PerfOptions, load_default_constants, step_time
from mpg_cli.core.specs import Layout
from mpg_cli.presets import load_cluster, load_model

DAY = 86400.0


@pytest.fixture(scope="module")
def gpt3():
    return load_model("gpt3-175b")


# ---------------------------------------------------------------- parameter counts (Narayanan eq. 2, docs/formulas.md B4)

@pytest.mark.parametrize("name, expected, rel", [
    ("gpt3-175b", 174.62e9, 5e-5),
    ("gpt-1t", 1.008e12, 5e-4),
    ("llama2-70b", 68.98e9, 5e-4),
    ("llama3-70b", 70.55e9, 5e-4),
])
def test_param_counts_match_published_values(name, expected, rel):
    """Total parameters of GPT-3, GPT 1T, Llama-2-70B and Llama-3-70B match docs/formulas.md E to the quoted digits."""
    assert total_params(load_model(name)) == pytest.approx(expected, rel=rel)


@pytest.mark.parametrize("name, expected", [("llama2-7b", 6_738_415_616), ("llama3-8b", 8_030_261_248)])
def test_llama_param_counts_are_exact(name, expected):
    """Llama-2-7B and Llama-3-8B parameter counts equal the published integers exactly."""
    assert total_params(load_model(name)) == expected


def test_gpt3_params_follow_narayanan_eq2(gpt3):
    """GPT-3 parameters equal Narayanan eq. 2 plus the final LayerNorm (2h), which eq. 2 leaves out."""
    n_layers, h, v, s = gpt3.layers, gpt3.hidden_size, gpt3.vocab_size, gpt3.seq_length
    eq2 = 12 * n_layers * h**2 * (1 + 13 / (12 * h) + (v + s) / (12 * n_layers * h))
    assert total_params(gpt3) == pytest.approx(eq2 + 2 * h, rel=1e-12)


# ---------------------------------------------------------------- FLOPs per token (Korthikanti)

def test_gpt3_training_flops_per_token(gpt3):
    """GPT-3 model FLOPs per token are 72Lh²+12Lsh+6Vh = 1.0764e12."""
    assert token_flops(gpt3).model == pytest.approx(1.0764e12, rel=5e-5)


def test_gpt3_flops_per_token_closed_form(gpt3):
    """GPT-3 model FLOPs per token equal 72·l·h²·(1 + s/(6h) + V/(12·l·h)) (Korthikanti eq. 7)."""
    n_layers, h, v, s = gpt3.layers, gpt3.hidden_size, gpt3.vocab_size, gpt3.seq_length
    assert token_flops(gpt3).model == pytest.approx(72 * n_layers * h**2 * (1 + s / (6 * h) + v / (12 * n_layers * h)), rel=1e-12)


def test_selective_recompute_overhead(gpt3):
    """Selective recomputation adds 2.69 % hardware FLOPs for GPT-3."""
    tf = token_flops(gpt3)
    assert tf.hardware("selective") / tf.model - 1 == pytest.approx(0.0269, abs=5e-5)


def test_full_recompute_hfu_over_mfu(gpt3):
    """Full recomputation gives HFU/MFU = 1.332 for GPT-3."""
    tf = token_flops(gpt3)
    assert tf.hardware("full") / tf.model == pytest.approx(1.332, abs=5e-4)


def test_no_recompute_adds_no_hardware_flops(gpt3):
    """Without recomputation hardware FLOPs equal model FLOPs."""
    tf = token_flops(gpt3)
    assert tf.hardware("none") == tf.model


# ---------------------------------------------------------------- ZeRO model states (Fig. 1)

@pytest.mark.parametrize("zero, expected_gb", [(0, 120.0), (1, 31.41), (2, 16.64), (3, 1.875)])
def test_zero_figure1_model_states(zero, expected_gb):
    """ZeRO Fig. 1: 7.5B parameters on 64 GPUs need 120 / 31.41 / 16.64 / 1.875 GB for stages 0-3."""
    assert sum(model_state_bytes(7.5e9, 64, zero)) / 1e9 == pytest.approx(expected_gb, abs=5e-3)


# ---------------------------------------------------------------- activations per layer (Korthikanti Table 2)

def test_gpt3_activations_no_parallelism(gpt3):
    """GPT-3 layer activations at b=1, s=2048 without parallelism are sbh·(34 + 5as/h) = 2.869 GB."""
    lay = Layout(tp=1, sequence_parallel=False, recompute="none", flash_attention=False)
    assert activation_bytes_per_layer(gpt3, lay, 1, 2048, False) / 1e9 == pytest.approx(2.869, abs=5e-4)


def test_gpt3_activations_tp8_sp_selective(gpt3):
    """GPT-3 layer activations with t=8, sequence parallelism and selective recompute are sbh·34/t = 0.107 GB."""
    lay = Layout(tp=8, sequence_parallel=True, recompute="selective", flash_attention=False)
    assert activation_bytes_per_layer(gpt3, lay, 1, 2048, False) / 1e9 == pytest.approx(0.107, abs=5e-4)


def test_gpt3_activations_selective_with_flash_recomputes_norms_and_activation(gpt3):
    """With FlashAttention, selective recompute also re-runs the norms and GeLU: sbh·22/t (34 − 2·2 − 8)."""
    lay = Layout(tp=8, sequence_parallel=True, recompute="selective", flash_attention=True)
    expect = 2048 * 12288 * 22 / 8
    assert activation_bytes_per_layer(gpt3, lay, 1, 2048, False) == pytest.approx(expect)


def test_gpt3_activations_full_recompute(gpt3):
    """GPT-3 layer activations with full recompute keep only the layer input, 2·sbh = 0.050 GB."""
    lay = Layout(tp=1, sequence_parallel=False, recompute="full", flash_attention=False)
    assert activation_bytes_per_layer(gpt3, lay, 1, 2048, False) / 1e9 == pytest.approx(0.0503, abs=5e-4)


# ---------------------------------------------------------------- Narayanan eq. 4

@pytest.mark.parametrize("tokens, params, gpus, tflops, days", [
    (300e9, 175e9, 1024, 140, 33.91),
    (450e9, 1e12, 3072, 163, 83.21),
])
def test_narayanan_eq4_days(tokens, params, gpus, tflops, days):
    """Narayanan eq. 4, 8·T·P/(n·X): GPT-3 takes 33.91 days and GPT 1T 83.21 days."""
    assert narayanan_eq4_time_s(tokens, params, gpus, tflops * 1e12) / DAY == pytest.approx(days, abs=5e-3)


def test_narayanan_eq4_without_recompute_is_six_eighths():
    """Without recomputation eq. 4 uses 6·T·P instead of 8·T·P."""
    with_rc = narayanan_eq4_time_s(300e9, 175e9, 1024, 140e12, recompute=True)
    without = narayanan_eq4_time_s(300e9, 175e9, 1024, 140e12, recompute=False)
    assert without / with_rc == pytest.approx(0.75, rel=1e-12)


# ---------------------------------------------------------------- pipeline bubble (Narayanan §2.2)

# Two set-ups with m = 32 micro-batches per pipeline (merged from test_perf_terms.py, which had the second):
# dp 2, global batch 64, ZeRO 1, selective recompute, the dgx-a100 preset's hardware; and dp 1, global batch 32,
# ZeRO 0, full recompute, no sequence parallelism, Hardware given directly (A100: 312 TFLOP/s, 2.039 TB/s HBM,
# 300/25 GB/s per GPU) with the shipped constants.
BUBBLE_SETUPS = {
    "selective-dp2": (dict(dp=2, zero=1, recompute="selective"), 64, None),
    "full-dp1": (dict(dp=1, zero=0, recompute="full", sequence_parallel=False), 32,
                 Hardware(peak_flops=312e12, hbm_bytes_s=2.039e12, generation="ampere", gpus_per_node=8,
                          intra_bytes_s=300e9, inter_bytes_s=25e9)),
}


@pytest.mark.parametrize("setup", sorted(BUBBLE_SETUPS))
@pytest.mark.parametrize("virtual, expected", [(1, 0.219), (2, 0.109)])
def test_pipeline_bubble_fraction(gpt3, virtual, expected, setup):
    """With p=8 and m=32 micro-batches the bubble is (p-1)/(v·m) of the ideal time: 0.219 (v=1), 0.109 (v=2)
    (docs/formulas.md E), whatever the recompute policy, ZeRO stage and dp."""
    kw, gbs, hw = BUBBLE_SETUPS[setup]
    if hw is None:
        hw = hardware_of(load_cluster("dgx-a100"), "bf16")
    # tp 8, pp 8, micro-batch 1 -> m = gbs / (1·dp) = 32 micro-batches per pipeline
    lay = Layout(tp=8, pp=8, micro_batch=1, virtual_stages=virtual, **kw)
    st = step_time(gpt3, lay, 2048, gbs, hw, PerfOptions(), load_default_constants())
    assert st.microbatches == 32
    # m·t_mb = compute + recompute + TP comm (+ MoE all-to-all); FSDP gathers are absent for ZeRO 1
    ideal = st.compute + st.recompute + st.tp_comm + st.moe_all_to_all
    assert st.pp_bubble / ideal == pytest.approx(7 / (virtual * 32), rel=1e-9)
    assert st.pp_bubble / ideal == pytest.approx(expected, abs=5e-4)


def test_no_bubble_without_pipeline(gpt3):
    """A layout without pipeline parallelism has no bubble."""
    hw = hardware_of(load_cluster("dgx-a100"), "bf16")
    st = step_time(gpt3, Layout(tp=8, pp=1, dp=16, micro_batch=1, zero=1), 2048, 512, hw)
    assert st.pp_bubble == 0.0
    assert math.isfinite(st.total) and st.total > 0


def test_full_recompute_hardware_flops_equal_narayanan_eq3(gpt3):
    """Hardware FLOPs with full recompute equal Narayanan eq. 3 exactly for GPT-3 (per token, B·s tokens)."""
    from mpg_cli.core.flops import narayanan_eq3_flops_per_iteration

    per_iter = narayanan_eq3_flops_per_iteration(1536, 2048, 96, 12288, 51200)
    assert token_flops(gpt3).hardware("full") * 1536 * 2048 == pytest.approx(per_iter, rel=1e-12)


def test_six_n_per_token_and_chinchilla_default(gpt3):
    """6N per token for GPT-3 is 1.0477e12 (docs/formulas.md E), and the default tokens are 20 per parameter (Chinchilla)."""
    from mpg_cli.core.estimate import TOKENS_PER_PARAM
    from mpg_cli.core.params import total_params

    n = total_params(gpt3)
    assert 6 * n == pytest.approx(1.0477e12, rel=1e-3)
    assert TOKENS_PER_PARAM * 1e9 * 6 * 1e9 == pytest.approx(1.2e20, rel=0.02)  # Table 3: 1B -> 20.2B, 6ND = 1.21e20
