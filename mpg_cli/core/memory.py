"""Memory per GPU: model states, activations and framework overhead.

Sources (formulas.md section B):
- Model states: ZeRO paper (Rajbhandari et al. 2020, arXiv 1910.02054) §5 / Fig. 1:
  baseline (2+2+K)Ψ, ZeRO-1 2Ψ+2Ψ+KΨ/N_d, ZeRO-2 2Ψ+(2+K)Ψ/N_d, ZeRO-3 (2+2+K)Ψ/N_d.
  Bytes per component are explicit (formulas.md D2): 16-bit weights 2, gradients 4
  (Megatron-LM keeps fp32 main grads for bf16, ``theoretical_memory_usage.py``; DeepSpeed
  keeps 2), Adam fp32 master + moments 12 (8-bit Adam: 4 + 2, Dettmers et al. 2022).
- Parameter placement: Megatron-LM ``theoretical_memory_usage.py``: TP-sharded weights ÷ t,
  experts ÷ (EP·ETP), all ÷ p; the first stage holds the embedding, the last the output layer
  (a tied embedding is duplicated on the last stage when p > 1).
- Activations: Korthikanti et al. 2022 (arXiv 2205.05198) §4, Eq. (1) and Table 2, generalised
  to GQA and SwiGLU as formulas.md B2 derives; FlashAttention (Dao et al. 2022) removes the
  5·a·s²·b score term; the first 1F1B stage holds min(p, m) micro-batches (×(1+(p−1)/(p·v)) when
  interleaved, Korthikanti §4.2.3); logits 6·s·b·V bytes (fp32 + 16-bit copy, stas00
  ml-engineering) on the last stage.
- Overheads: formulas.md B3: CUDA context + NCCL reserve, ×1.05 activation buffer
  (Megatron ``theoretical_memory_usage.py``), 10 % allocator headroom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .params import ParamBreakdown, param_breakdown
from .specs import GiB, Layout, MemoryOptions, ModelSpec

WEIGHT_BYTES = 2.0  # bf16/fp16 weights; Transformer Engine FP8 keeps 16-bit weights too (formulas.md B1)
OPTIMIZER_BYTES = {"adam": 12.0, "adam8bit": 6.0}  # fp32 master 4 + moments 8 (or 2 at 8 bits)


def grad_bytes(precision: str) -> float:
    """Gradient bytes per parameter: fp32 main grads for bf16/fp8 (Megatron default), 2 for fp16."""
    return 2.0 if precision == "fp16" else 4.0


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes on the most loaded GPU and whether they fit."""

    weights: float
    gradients: float
    optimizer: float
    activations: float
    overhead: float
    capacity: float
    usable: float
    stage: str  # which pipeline stage is the most loaded: 'first', 'last' or 'only'

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + self.overhead

    @property
    def fits(self) -> bool:
        return self.total <= self.usable

    @property
    def fraction_of_capacity(self) -> float:
        return self.total / self.capacity


def model_state_bytes(
    params: float, dp: int, zero: int, weight_b: float = 2.0, grad_b: float = 2.0, optim_b: float = 12.0
) -> tuple[float, float, float]:
    """(weights, gradients, optimizer) bytes for ``params`` sharded by ZeRO ``zero`` over ``dp`` ranks.

    ZeRO paper §5: stage 1 shards optimizer states, stage 2 also gradients, stage 3 also weights.
    With the defaults (2, 2, 12) this is the paper's K = 12 case (Fig. 1: 7.5B on 64 GPUs gives
    120, 31.4, 16.6 and 1.9 GB).
    """
    w, g, o = params * weight_b, params * grad_b, params * optim_b
    if zero >= 1:
        o /= dp
    if zero >= 2:
        g /= dp
    if zero >= 3:
        w /= dp
    return w, g, o


def _stage_params(pb: ParamBreakdown, m: ModelSpec, lay: Layout, stage: str) -> tuple[float, float, tuple[float, float]]:
    """(dense-sharded, expert, largest layer) parameters held by one GPU of ``stage``.

    The largest layer is split into its non-expert and expert parameters, which ZeRO shards over
    different data-parallel groups (dp·cp and dp·cp/ep).
    """
    n = math.ceil(m.layers / lay.pp)
    if stage in ("first", "only"):
        dense_l = min(pb.dense_layers, n)
    else:
        dense_l = n - min(pb.moe_layers, n)
    moe_l = n - dense_l
    tp = lay.tp
    sharded = dense_l * (pb.attention_layer + pb.dense_mlp_layer) / tp
    sharded += moe_l * (pb.attention_layer + pb.moe_shared_layer) / tp
    sharded += n * pb.norms_layer + moe_l * pb.router_layer
    expert = moe_l * pb.moe_routed_layer / (lay.ep * tp)
    if stage in ("first", "only"):
        sharded += pb.embedding / tp + pb.position
    if stage in ("last", "only"):
        sharded += pb.final_norm
        if pb.output:
            sharded += pb.output / tp
        elif stage == "last":  # tied embedding duplicated on the last stage
            sharded += pb.embedding / tp
    dense_layer = (pb.dense_layer_total / tp, 0.0) if dense_l else (0.0, 0.0)
    moe_layer = (((pb.attention_layer + pb.moe_shared_layer) / tp + pb.router_layer + pb.norms_layer,
                  pb.moe_routed_layer / (lay.ep * tp)) if moe_l else (0.0, 0.0))
    largest = max(dense_layer, moe_layer, key=sum)
    return sharded, expert, largest


def activation_bytes_per_layer(m: ModelSpec, lay: Layout, micro_batch: int, seq_length: int, moe_layer: bool) -> float:
    """Stored activation bytes of one layer for one micro-batch on one GPU (Korthikanti Table 2, generalised)."""
    b, s, h = micro_batch, seq_length / lay.cp, m.hidden_size
    tp = lay.tp
    sp_div = tp if lay.sequence_parallel else 1
    if lay.recompute == "full":
        return 2.0 * s * b * h / sp_div
    q, kv = m.q_size, m.kv_size
    # replicated across TP ranks unless sequence parallel: norm inputs 4h, attention and MLP inputs 2h+2h, masks h+h
    replicated = s * b * (10.0 * h)
    attn = s * b * (2.0 * (q + kv) + 2.0 * kv + 2.0 * q)
    if not lay.flash_attention and lay.recompute == "none":
        attn += 5.0 * m.heads * s * s * b
    if moe_layer and m.moe is not None:
        x = m.moe
        per = 6.0 if m.ffn_type == "swiglu" else 4.0
        mlp = s * b * per * (x.top_k * x.expert_ffn_hidden_size + x.shared_experts * x.shared_ffn)
    else:
        mlp = s * b * (6.0 if m.ffn_type == "swiglu" else 4.0) * m.ffn_hidden_size
    return replicated / sp_div + (attn + mlp) / tp


def stages_of(lay: Layout) -> tuple[str, ...]:
    """The pipeline stages whose memory can be the largest."""
    return ("only",) if lay.pp == 1 else ("first", "last")


def stage_states(m: ModelSpec, lay: Layout, stage: str, precision: str,
                 opts: MemoryOptions = MemoryOptions()) -> tuple[float, float, float]:
    """(weights, gradients, optimizer) bytes on one GPU of ``stage`` (depends on tp, pp, dp, ep, cp, zero)."""
    pb = param_breakdown(m)
    gb = grad_bytes(precision)
    ob = OPTIMIZER_BYTES[opts.optimizer]
    edp = max(1, lay.dp * lay.cp // lay.ep)  # expert data-parallel size (Megatron: ep carved out of dp·cp)
    dp_states = lay.dp * lay.cp  # Megatron's distributed optimizer shards over dp×cp
    sharded, expert, largest = _stage_params(pb, m, lay, stage)
    w1, g1, o1 = model_state_bytes(sharded, dp_states, lay.zero, WEIGHT_BYTES, gb, ob)
    w2, g2, o2 = model_state_bytes(expert, edp, lay.zero, WEIGHT_BYTES, gb, ob)
    weights = w1 + w2
    if lay.zero >= 3:  # gathered working copy: current + prefetched unit (formulas.md B1, FSDP),
        # beyond the shard already held (non-expert weights are sharded over dp·cp, experts over dp·cp/ep)
        weights += 2.0 * WEIGHT_BYTES * (largest[0] * (1.0 - 1.0 / dp_states) + largest[1] * (1.0 - 1.0 / edp))
    return weights, g1 + g2, o1 + o2


def stage_activations(m: ModelSpec, lay: Layout, stage: str, seq_length: int, global_batch: int,
                      opts: MemoryOptions = MemoryOptions()) -> float:
    """Activation bytes on one GPU of ``stage``, in-flight micro-batches and buffer included."""
    pb = param_breakdown(m)
    n_layers = math.ceil(m.layers / lay.pp)
    m_micro = max(1, global_batch // (lay.micro_batch * lay.dp))  # micro-batches per pipeline
    dense_l = min(pb.dense_layers, n_layers) if stage != "last" else n_layers - min(pb.moe_layers, n_layers)
    per_dense = activation_bytes_per_layer(m, lay, lay.micro_batch, seq_length, False) if dense_l else 0.0
    per_moe = activation_bytes_per_layer(m, lay, lay.micro_batch, seq_length, True) if n_layers > dense_l else 0.0
    per_stage = dense_l * per_dense + (n_layers - dense_l) * per_moe
    if stage == "last":
        inflight = 1.0
    else:
        inflight = float(min(lay.pp, m_micro))
        if lay.virtual_stages > 1 and lay.pp > 1:
            inflight *= 1.0 + (lay.pp - 1) / (lay.pp * lay.virtual_stages)
    acts = per_stage * inflight
    if lay.recompute == "full":  # one layer rematerialised during its backward, beyond its stored input
        working = Layout(lay.tp, lay.pp, lay.dp, lay.ep, lay.cp, lay.micro_batch, lay.virtual_stages, lay.zero, "none",
                         lay.sequence_parallel, lay.flash_attention)
        acts += (activation_bytes_per_layer(m, working, lay.micro_batch, seq_length, m.moe is not None)
                 - activation_bytes_per_layer(m, lay, lay.micro_batch, seq_length, m.moe is not None))
    if stage in ("last", "only"):
        acts += 6.0 * seq_length / lay.cp * lay.micro_batch * m.vocab_size / lay.tp
    return acts * opts.activation_buffer


def combine(states: tuple[float, float, float], acts: float, stage: str, memory_gib: float,
            opts: MemoryOptions) -> MemoryBreakdown:
    capacity = memory_gib * GiB
    return MemoryBreakdown(weights=states[0], gradients=states[1], optimizer=states[2], activations=acts,
                           overhead=opts.reserved_gib * GiB, capacity=capacity,
                           usable=capacity * (1.0 - opts.headroom_fraction), stage=stage)


def memory_breakdown(
    m: ModelSpec,
    lay: Layout,
    seq_length: int,
    global_batch: int,
    precision: str,
    memory_gib: float,
    opts: MemoryOptions = MemoryOptions(),
) -> MemoryBreakdown:
    """Per-GPU memory of the most loaded pipeline stage (see the module docstring for sources)."""
    return max((combine(stage_states(m, lay, st, precision, opts),
                        stage_activations(m, lay, st, seq_length, global_batch, opts), st, memory_gib, opts)
                for st in stages_of(lay)), key=lambda r: r.total)
