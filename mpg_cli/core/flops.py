"""FLOP counts per token, in the Megatron/Korthikanti convention.

Convention (docs/formulas.md A1, A2.4; stated in every output):
- Only GEMMs count; one multiply-add is 2 FLOPs; backward = 2× forward.
- Attention scores count the *full* s² (no causal saving), as Narayanan 2021 Eq. (3)
  and Korthikanti 2022 App. A do. For GPT this gives the model FLOPs per token
  72·l·h²·(1 + s/(6h) + V/(12·l·h)) (Korthikanti Eq. 7); golden value for GPT-3:
  1.0764e12 (docs/formulas.md E).
- Generalised to GQA (K/V projections of width n_kv·d_h), SwiGLU (3 matrices),
  MoE (top-k routed + shared experts + router) and MLA as Megatron-LM's
  ``num_floating_point_operations`` does (docs/formulas.md A2.6), but without its causal /2.
- Hardware FLOPs add recomputation: selective adds the attention core once more
  (Korthikanti Eq. 8: s/(3h) instead of s/(6h)); full adds one forward of every
  transformer layer, the logit layer excluded (Narayanan Eq. (3), 96 coefficient).
"""

from __future__ import annotations

from dataclasses import dataclass

from .params import param_breakdown
from .specs import ModelSpec


@dataclass(frozen=True)
class TokenFlops:
    """Forward FLOPs per token by part; training totals are derived properties."""

    layer_gemm_fwd: float  # all transformer-layer projection/MLP GEMMs, summed over layers
    attention_core_fwd: float  # QKᵀ and attention·V, full s², summed over layers
    logits_fwd: float  # output layer 2·h·V

    @property
    def model(self) -> float:
        """Model FLOPs per token (forward + backward, no recompute)."""
        return 3.0 * (self.layer_gemm_fwd + self.attention_core_fwd + self.logits_fwd)

    def hardware(self, recompute: str) -> float:
        """Hardware FLOPs per token including the recomputation policy's extra work."""
        if recompute == "full":
            return self.model + self.layer_gemm_fwd + self.attention_core_fwd
        if recompute == "selective":
            return self.model + 3.0 * self.attention_core_fwd
        return self.model


def attention_core_fwd_per_token(m: ModelSpec, seq_length: int) -> float:
    """Forward attention-core FLOPs per token per layer: 2·s·a·d_qk + 2·s·a·d_v (full s²)."""
    if m.mla is not None:
        d_qk = m.mla.qk_nope_head_dim + m.mla.qk_rope_head_dim
        d_v = m.mla.v_head_dim
    else:
        d_qk = d_v = m.d_head
    return 2.0 * seq_length * m.heads * (d_qk + d_v)


def _gemm_weights(m: ModelSpec) -> tuple[float, float]:
    """GEMM weight counts (no biases, no norms) of one dense and one MoE layer, active experts only."""
    pb = param_breakdown(m)
    h = m.hidden_size
    if m.linear_biases and m.mla is None:
        attn = pb.attention_layer - (m.q_size + 2 * m.kv_size + h)
    else:
        attn = pb.attention_layer
    mult = 3 if m.ffn_type == "swiglu" else 2
    dense = attn + mult * h * m.ffn_hidden_size
    moe = 0.0
    if m.moe is not None:
        x = m.moe
        moe = attn + mult * h * (x.top_k * x.expert_ffn_hidden_size + x.shared_experts * x.shared_ffn)
        moe += h * x.experts  # router GEMM
    return float(dense), float(moe)


def token_flops(m: ModelSpec, seq_length: int | None = None) -> TokenFlops:
    """Per-token forward FLOPs of ``m`` at sequence length ``seq_length`` (default the model's)."""
    s = seq_length or m.seq_length
    dense_w, moe_w = _gemm_weights(m)
    # multi-token prediction modules (DeepSeek-V3 §2.2): a layer of the last kind, a 2h→h projection and the shared
    # output head each (Megatron-LM's num_floating_point_operations counts them as well)
    mtp, h = m.mtp_layers, m.hidden_size
    mtp_w = mtp * ((moe_w if m.moe_layers else dense_w) + 2 * h * h)
    return TokenFlops(
        layer_gemm_fwd=2.0 * (m.dense_layers * dense_w + m.moe_layers * moe_w + mtp_w),
        attention_core_fwd=(m.layers + mtp) * attention_core_fwd_per_token(m, s),
        logits_fwd=(1 + mtp) * 2.0 * h * m.vocab_size,
    )


def narayanan_eq3_flops_per_iteration(batch: int, seq: int, layers: int, hidden: int, vocab: int) -> float:
    """Narayanan 2021 Eq. (3): F = 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h)), full recompute."""
    return 96.0 * batch * seq * layers * hidden**2 * (1 + seq / (6 * hidden) + vocab / (16 * layers * hidden))


def narayanan_eq4_time_s(tokens: float, params: float, gpus: int, achieved_flops: float, recompute: bool = True) -> float:
    """Narayanan 2021 Eq. (4): time ≈ 8·T·P/(n·X) with recompute, 6·T·P/(n·X) without."""
    return (8.0 if recompute else 6.0) * tokens * params / (gpus * achieved_flops)
