"""Per-layer kernel times of one micro-batch on one GPU: GEMMs, the attention core, element-wise work, logits.

- GEMMs run at a fraction of the dense peak that depends on the matrix each GPU sees (tokens per
  micro-batch M, the reduction K and the output N, after tensor parallelism):
  η = η_max(gen, precision)·M/(M+m0)·K/(K+k0)·N/(N+k0) (docs/modeling-notes.md 1), times the tile
  quantization of the weight's dimensions in each pass's output: the forward computes M×N, the input gradient
  M×K and the weight gradient K×N, each in whole 128-wide tiles, so a weight dimension of 128 or more that is
  not a multiple of 128 (GPT-OSS's hidden size 2880, MLA's 576-wide KV projection) pays for its padding in the
  two passes it is an output of (``gemm_fill``, ``constants.GEMM_TILE``, NVIDIA Deep Learning Performance
  Guide; docs/modeling-notes.md 12). The token dimension M is not padded: it is a batch of whatever size, and
  an expert's share of it varies around its mean.
  In FP8 (Transformer
  Engine) only the GEMMs run at the FP8 peak, with their own per-generation η_max, and each activation
  operand is cast (3 bytes per element over HBM); the attention core stays 16-bit.
- The attention core is costed separately: FlashAttention skips masked blocks, so the causal half of
  the s² work is executed, at its own per-generation efficiency of the 16-bit peak (FlashAttention-2
  gains far less from A100 to H100 than GEMMs do, Shah et al. 2024 "FlashAttention-3" §1), and its
  backward's matmuls are 2.5× its forward's (Dao et al. 2022). Each score also takes one exponential in
  the forward and one in the backward on the special-function units, charged in series with the
  matmuls at the GPU's SFU rate (``constants.SFU_EXP_PER_FLOP``, FlashAttention-3 §3): it weighs most
  at small head dimensions and on GPUs whose tensor cores outgrew their SFUs. Without flash attention
  (Megatron before 2022) the full s² batched GEMMs run at GEMM efficiency and the a·s² scores go
  through softmax and dropout in memory.
- Element-wise work (norms, activations, residuals, dropout) costs bytes over HBM (docs/modeling-notes.md 3).
- Logits: a GEMM M×h×V/t and the cross-entropy's passes over M×V/t fp32 values.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable, NamedTuple

from ..specs import ModelSpec
from .constants import BF16_BYTES as BF16
from .constants import (
    FLASH_BACKWARD_RATIO,
    FP8_CAST_BYTES,
    GEMM_TILE,
    HBM_EFFICIENCY,
    MATERIALISED_BACKWARD_RATIO,
    PerfConstants,
    exp_per_flop,
)
from .hardware import Hardware


class LayerKernels(NamedTuple):
    """Forward times (s) of one layer's parts for one micro-batch; backward ratios where they differ."""

    attn_proj: float  # attention projections (QKV, output; MLA's low-rank projections)
    dense_mlp: float  # a dense layer's FFN
    moe_mlp: float  # a MoE layer's routed experts (at the busiest expert's load), shared experts and router
    core_fwd: float  # attention core forward
    core_bwd_ratio: float  # its backward / forward
    elem_fwd: float  # element-wise work, forward (backward is twice)
    logits_fwd: float  # output GEMM, forward (last stage)
    logits_elem: float  # cross-entropy passes (last stage)
    mtp_proj: float = 0.0  # a multi-token prediction module's 2h→h projection, forward (last stage)


REFERENCE_BALANCE = 312e12 / 2.039e12  # A100 80GB bf16: FLOP per HBM byte; gemm_m0/k0 are in A100 units


def _sat(x: float, x0: float) -> float:
    return x / (x + x0)


def tile_fill(x: float) -> float:
    """The useful fraction of a weight dimension computed in whole ``GEMM_TILE``-wide tiles: x / (⌈x/T⌉·T).
    A dimension under one tile is 1: libraries have narrower tiles for skinny GEMMs (a router's N = 8), whose
    cost the saturation curves already carry."""
    if x < GEMM_TILE:
        return 1.0
    return min(1.0, x / (math.ceil(x / GEMM_TILE - 1e-9) * GEMM_TILE))


def gemm_fill(K: float, N: float) -> float:
    """The tile fill of a GEMM's three passes taken together, over the weight's dimensions: the forward's M×N
    output pays N's, the input gradient's M×K pays K's, the weight gradient's K×N both. Each pass has the same
    FLOPs, so their times add as 1/fill; the model times the backward as twice the forward, so the forward
    carries the harmonic mean of the three (a full recomputation, a forward only, pays that mean too)."""
    fk, fn = tile_fill(K), tile_fill(N)
    return 3.0 / (1.0 / fn + 1.0 / fk + 1.0 / (fk * fn))


@lru_cache(maxsize=8192)
def layer_kernels(m: ModelSpec, t: int, cp: int, ep: int, micro_batch: int, sequence_parallel: bool, flash: bool,
                  s: int, hw: Hardware, c: PerfConstants, expert_imbalance: float = 1.0,
                  attention_kernel: str = "auto") -> LayerKernels:
    """Kernel times of one layer (they depend on tp, cp, ep and the micro-batch only; cached across layouts)."""
    h = m.hidden_size
    tokens = micro_batch * s / cp  # M: tokens per GPU per micro-batch
    eta_max = c.eta(hw.generation, fp8=hw.fp8)
    peak = hw.peak_flops
    hbm = hw.hbm_bytes_s * HBM_EFFICIENCY
    # the saturation sizes scale with the machine balance (FLOP per HBM byte): a GEMM of a given shape is as
    # far from its roofline ridge on any GPU and precision when its dimensions are in units of peak/bandwidth
    balance = hw.peak_flops / hw.hbm_bytes_s / REFERENCE_BALANCE
    m0, k0 = c.gemm_m0 * balance, c.gemm_k0 * balance
    balance16 = hw.attention_peak_flops / hw.hbm_bytes_s / REFERENCE_BALANCE
    m0_16, k0_16 = c.gemm_m0 * balance16, c.gemm_k0 * balance16

    def gemm(M: float, K: float, N: float) -> float:
        """One GEMM's time; in FP8 with the cast of its activation input (the backward, 2× the time, casts its
        output gradient alike). Weights are cast once per step and cached across micro-batches (TE)."""
        eff = eta_max * _sat(M, m0) * _sat(K, k0) * _sat(N, k0) * gemm_fill(K, N)
        cast = FP8_CAST_BYTES * M * K / hbm if hw.fp8 else 0.0
        return 2.0 * M * K * N / (peak * eff) + cast

    attn_proj, core_dims, d_head = _attention_projections(m, t, tokens, gemm)
    up = 2 if m.ffn_type == "swiglu" else 1

    def mlp(M: float, f: float) -> float:
        return gemm(M, h, up * f / t) + gemm(M, f / t, h)

    dense_mlp = mlp(tokens, m.ffn_hidden_size)
    moe_mlp = _moe_mlp(m, tokens, ep, expert_imbalance, mlp, gemm, hbm)
    sp_div = t if sequence_parallel else 1
    f_eff = m.ffn_hidden_size if m.moe is None else m.moe.top_k * m.moe.expert_ffn_hidden_size
    elem_width = h / sp_div + up * f_eff / t
    core_full = 2.0 * micro_batch * s * (s / cp) * core_dims / t
    attn_peak = hw.attention_peak_flops
    if flash:
        attn_eff = c.attention(hw.generation, attention_kernel) * _sat(s, m0_16) * _sat(d_head, k0_16)
        core_fwd, core_bwd_ratio = _flash_core(0.5 * core_full / (attn_peak * attn_eff),
                                               0.5 * micro_batch * s * (s / cp) * m.heads / t, attn_peak, hw)
    else:
        eta16 = c.eta(hw.generation)
        core_fwd = core_full / (attn_peak * eta16 * _sat(s, m0_16) * _sat(d_head, k0_16))
        core_bwd_ratio = MATERIALISED_BACKWARD_RATIO
        elem_width += m.heads * s / cp / t
    elem_fwd = c.elementwise_passes * 2.0 * tokens * elem_width / hbm
    # Megatron pads the vocabulary to a multiple of 128·t (--make-vocab-size-divisible-by): the tile fill again
    logits_fwd = 2.0 * tokens * h * m.vocab_size / t / (peak * eta_max * _sat(tokens, m0) * _sat(h, k0)
                                                       * _sat(m.vocab_size / t, k0)
                                                       * gemm_fill(h, m.vocab_size / t))
    logits_elem = 3 * 4.0 * tokens * m.vocab_size / t / hbm
    mtp_proj = gemm(tokens, 2 * h, h / t) if m.mtp_layers else 0.0
    return LayerKernels(attn_proj, dense_mlp, moe_mlp, core_fwd, core_bwd_ratio, elem_fwd, logits_fwd, logits_elem,
                        mtp_proj)


def _flash_core(matmul_fwd: float, scores: float, attn_peak: float, hw: Hardware) -> tuple[float, float]:
    """(forward time, backward/forward ratio) of flash attention: the matmuls (``matmul_fwd`` s forward, 2.5×
    that backward) plus one exponential per executed score in each pass at the GPU's SFU rate (FlashAttention-3
    §3), charged in series."""
    exp = scores / (attn_peak * exp_per_flop(hw.generation))
    fwd = matmul_fwd + exp
    return fwd, (FLASH_BACKWARD_RATIO * matmul_fwd + exp) / fwd


def _attention_projections(m: ModelSpec, t: int, tokens: float,
                           gemm: Callable[[float, float, float], float]) -> tuple[float, float, float]:
    """(projection GEMM time, attention-core width heads·(d_qk + d_v), head dim) of one layer: GQA/MHA's QKV and
    output projections, or MLA's low-rank ones (DeepSeek-V2 §2.1)."""
    h = m.hidden_size
    if m.mla is None:
        q, kv = m.q_size, m.kv_size
        return gemm(tokens, h, (q + 2 * kv) / t) + gemm(tokens, q / t, h), m.heads * 2 * m.d_head, m.d_head
    mla = m.mla
    qk = mla.qk_nope_head_dim + mla.qk_rope_head_dim
    proj = (gemm(tokens, h, mla.q_lora_rank) + gemm(tokens, mla.q_lora_rank, m.heads * qk / t)
            if mla.q_lora_rank else gemm(tokens, h, m.heads * qk / t))
    proj += gemm(tokens, h, mla.kv_lora_rank + mla.qk_rope_head_dim)
    proj += gemm(tokens, mla.kv_lora_rank, m.heads * (mla.qk_nope_head_dim + mla.v_head_dim) / t)
    proj += gemm(tokens, m.heads * mla.v_head_dim / t, h)
    return proj, m.heads * (qk + mla.v_head_dim), qk


def _moe_mlp(m: ModelSpec, tokens: float, ep: int, expert_imbalance: float, mlp: Callable[[float, float], float],
             gemm: Callable[[float, float, float], float], hbm: float) -> float:
    """A MoE layer's routed experts (grouped GEMM at the busiest expert's load), shared experts, router and token
    permutation."""
    moe = m.moe
    if moe is None:
        return 0.0
    h = m.hidden_size
    # E/ep local experts (grouped GEMM), each of tokens·ep·k/E rows on average; the busiest sets the pace
    per_expert_tokens = tokens * ep * moe.top_k / moe.experts * expert_imbalance
    out = moe.experts / ep * mlp(per_expert_tokens, moe.expert_ffn_hidden_size)
    if moe.shared_experts:
        out += moe.shared_experts * mlp(tokens, moe.shared_ffn)
    out += gemm(tokens, h, moe.experts)  # router
    # token permutation and un-permutation: read h, write k·h and back, 2 B per element
    return out + 2.0 * BF16 * (1 + moe.top_k) * tokens * h / hbm
