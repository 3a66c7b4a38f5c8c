"""Memory per GPU: model states, activations and framework overhead.

Sources (docs/formulas.md section B):
- Model states: ZeRO paper (Rajbhandari et al. 2020, arXiv 1910.02054) §5 / Fig. 1:
  baseline (2+2+K)Ψ, ZeRO-1 2Ψ+2Ψ+KΨ/N_d, ZeRO-2 2Ψ+(2+K)Ψ/N_d, ZeRO-3 (2+2+K)Ψ/N_d.
  Bytes per component are explicit (docs/formulas.md D2): 16-bit weights 2, gradients 4
  (Megatron-LM keeps fp32 main grads for bf16, ``theoretical_memory_usage.py``; DeepSpeed
  keeps 2), Adam fp32 master + moments 12 (8-bit Adam: 4 + 2, Dettmers et al. 2022).
- Sharded data parallel has two accountings. PyTorch FSDP (mixed precision, param dtype bf16) keeps
  the fp32 parameter shard, which *is* the master copy, its fp32 gradient shard and Adam's moments:
  16 B/param sharded; the bf16 copies are transient, per unit (torch.distributed.fsdp docs, "FSDP
  mixed precision"). DeepSpeed ZeRO-3 keeps bf16 parameter and fp32 gradient partitions beside the
  fp32 master and moments: 18 B/param sharded. Live FSDP units: two units' gathered bf16 parameters
  (the current one and the prefetched one), the unit's unsharded bf16 gradient and, when gradients
  are reduced in another dtype, its copy; plus the root unit (embedding, output layer).
- Parameter placement: ``params.stage_params`` (Megatron-LM ``theoretical_memory_usage.py``).
- Activations: Korthikanti et al. 2022 (arXiv 2205.05198) §4, Eq. (1) and Table 2, generalised
  to GQA and SwiGLU as docs/formulas.md B2 derives; dropout masks only when the model uses dropout;
  FlashAttention (Dao et al. 2022) removes the 5·a·s²·b score term, and with it selective recompute
  re-runs the norms and the activation function (Megatron-Core recompute_modules core_attn, layernorm,
  act: transformer_config.py) instead of storing their outputs; the first 1F1B stage holds
  min(p, m) micro-batches (×(1+(p−1)/(p·v)) when interleaved, Korthikanti §4.2.3); the logits and
  cross-entropy buffer on the last stage: ~4 B per logit fused, ~12 B with an fp32 softmax.
- FP8 (Transformer Engine): 16-bit weights stay; each local weight also has a cached FP8 copy
  (1 B/param; scaling history is negligible), and the inputs a GEMM saves for its backward are its
  FP8-cast operands (1 B per element instead of 2). MoE: the permuted copy of each token's k
  expert inputs is kept for the backward, and the all-to-all send/receive buffers of one layer are live.
- Overheads: docs/formulas.md B3: CUDA context + NCCL reserve (memory in use), and one safety margin
  (allocator headroom) on capacity.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .params import StageParams, model_stages, stage_params, stages_of
from .specs import GiB, LOSS_IMPLS, Layout, MemoryOptions, ModelSpec

WEIGHT_BYTES = 2.0  # bf16/fp16 weights; Transformer Engine FP8 keeps 16-bit weights too (docs/formulas.md B1)
FP8_WEIGHT_COPY_BYTES = 1.0  # TE: an FP8 copy of each local weight, cached across micro-batches
OPTIMIZER_BYTES = {"adam": 12.0, "adam8bit": 6.0}  # fp32 master 4 + moments 8 (or 2 at 8 bits)
MASTER_BYTES = 4.0  # the fp32 master copy inside OPTIMIZER_BYTES
FP32_GRAD = 4.0  # FSDP's sharded gradient is fp32 (the dtype of the flat parameter)

__all__ = ["MemoryBreakdown", "OPTIMIZER_BYTES", "combine", "grad_bytes", "memory_breakdown", "model_state_bytes",
           "stage_activations", "stage_states", "stages_of"]


def grad_bytes(precision: str, reduce_bytes: "float | None" = None) -> float:
    """Gradient bytes per parameter: the gradient buffer's dtype is the reduce dtype when one is set
    (Megatron-Core DDP: grad_reduce_in_fp32); else fp32 main grads for bf16/fp8 (Megatron default), 2 for fp16."""
    if reduce_bytes is not None:
        return reduce_bytes
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
    stage: str  # which pipeline stage is the most loaded: 'first', 'middle', 'last' or 'only'

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


def _fsdp_units(sp: StageParams, opts: MemoryOptions) -> float:
    """Live bytes of FSDP units beyond the shards: two gathered units, one unsharded gradient (+ its reduce copy)."""
    unit = sum(sp.largest_layer)
    reduce_copy = opts.grad_reduce_bytes if opts.grad_reduce_bytes and opts.grad_reduce_bytes != WEIGHT_BYTES else 0.0
    return 2.0 * WEIGHT_BYTES * unit + (WEIGHT_BYTES + reduce_copy) * unit + WEIGHT_BYTES * sp.embedding


def stage_states(m: ModelSpec, lay: Layout, stage: str, precision: str,
                 opts: MemoryOptions = MemoryOptions()) -> tuple[float, float, float]:
    """(weights, gradients, optimizer) bytes on one GPU of ``stage`` (depends on tp, pp, dp, ep, cp, zero)."""
    sp = stage_params(m, lay.tp, lay.pp, lay.ep, stage)
    gb = grad_bytes(precision, opts.grad_reduce_bytes if lay.zero < 3 else None)
    ob = OPTIMIZER_BYTES[opts.optimizer]
    edp = max(1, lay.dp * lay.cp // lay.ep)  # expert data-parallel size (Megatron: ep carved out of dp·cp)
    dp_states = lay.dp * lay.cp  # Megatron's distributed optimizer shards over dp×cp
    fp8 = FP8_WEIGHT_COPY_BYTES if precision == "fp8" else 0.0
    if dp_states == 1 and edp == 1:
        lay = replace(lay, zero=0)  # one replica: nothing to shard (frameworks skip it)
    if lay.zero >= 3 and opts.sharded_impl == "fsdp":
        # the fp32 shard is the master copy: weights 4 + grads 4 + moments (optimizer bytes − master), sharded
        shard = sp.dense / dp_states + sp.expert / edp
        # live units never exceed a gathered copy of everything local (then FSDP behaves like ZeRO-2)
        unit = min(_fsdp_units(sp, opts), WEIGHT_BYTES * sp.total) + fp8 * min(2.0 * sum(sp.largest_layer), sp.total)
        # shown as ZeRO shows it: the fp32 master shard among the optimizer states, live units as weights
        return unit, FP32_GRAD * shard, ob * shard
    w1, g1, o1 = model_state_bytes(sp.dense, dp_states, lay.zero, WEIGHT_BYTES, gb, ob)
    w2, g2, o2 = model_state_bytes(sp.expert, edp, lay.zero, WEIGHT_BYTES, gb, ob)
    weights = w1 + w2
    if lay.zero >= 3:  # DeepSpeed: gathered working copy of the current and prefetched unit beyond the shard
        big = sp.largest_layer
        gathered = 2.0 * WEIGHT_BYTES * (big[0] * (1.0 - 1.0 / dp_states) + big[1] * (1.0 - 1.0 / edp))
        weights += min(gathered, WEIGHT_BYTES * (sp.dense * (1.0 - 1.0 / dp_states) + sp.expert * (1.0 - 1.0 / edp)))
        weights += fp8 * min(2.0 * sum(big), sp.total)
    else:
        weights += fp8 * sp.total
    return weights, g1 + g2, o1 + o2


def activation_bytes_per_layer(m: ModelSpec, lay: Layout, micro_batch: int, seq_length: int, moe_layer: bool,
                               fp8: bool = False) -> float:
    """Stored activation bytes of one layer for one micro-batch on one GPU (Korthikanti Table 2, generalised).

    Per token: norm inputs 2h + 2h, the QKV and FC1 inputs 2h + 2h (1 B each in FP8), dropout masks
    h + h (only with dropout); Q, K 2(q+kv), V 2kv, the output projection's input 2q (q in FP8); the MLP's
    activation input 2f (GeLU) or 4f (SwiGLU gate and up) and FC2's input 2f (f in FP8).
    """
    b, s, h = micro_batch, seq_length / lay.cp, m.hidden_size
    tp = lay.tp
    sp_div = tp if lay.sequence_parallel else 1
    if lay.recompute == "full":
        return 2.0 * s * b * h / sp_div
    q, kv = m.q_size, m.kv_size
    gin = 1.0 if fp8 else 2.0  # bytes of a saved GEMM input
    # selective recompute with FlashAttention (Megatron-Core --recompute-modules core_attn layernorm act): the
    # norm outputs (QKV and FC1 inputs) and the activation's output (FC2 input) are re-run in the backward
    light = lay.recompute == "selective" and lay.flash_attention
    norm_out = 0.0 if light else 2.0 * gin * h
    replicated = s * b * (4.0 * h + norm_out + (2.0 * h if m.dropout else 0.0))
    attn = s * b * (2.0 * (q + kv) + 2.0 * kv + gin * q)
    if not lay.flash_attention and lay.recompute == "none":
        attn += (5.0 if m.dropout else 4.0) * m.heads * s * s * b
    act = 4.0 if m.ffn_type == "swiglu" else 2.0
    fc2_in = 0.0 if light else gin
    if moe_layer and m.moe is not None:
        x = m.moe
        mlp = s * b * (act + fc2_in) * (x.top_k * x.expert_ffn_hidden_size + x.shared_experts * x.shared_ffn)
        permuted = s * b * gin * x.top_k * h  # permuted expert inputs, one copy per routed token (EP, not TP)
    else:
        mlp = s * b * (act + fc2_in) * m.ffn_hidden_size
        permuted = 0.0
    return replicated / sp_div + (attn + mlp) / tp + permuted


def _inflight(lay: Layout, stage: str, m_micro: int) -> float:
    """Micro-batches whose activations a stage holds at the peak, in units of the whole stage.

    1F1B (Narayanan et al. 2021 §2.2): rank r holds p − r (the first p, the last 1); interleaved with v chunks,
    Megatron-Core's warm-up of (p − r − 1)·2 + (v − 1)·p chunk-micro-batches (schedules.py,
    ``forward_backward_pipelining_with_interleaving``) plus the one in flight, i.e. p + (p − 1 − 2r)/v stages'
    worth: p + (p − 1)/v on the first rank, p + (p − 3)/v on the second ('middle': no middle rank holds more),
    p − (p − 1)/v on the last."""
    p, v = lay.pp, max(1, lay.virtual_stages)
    if p == 1:
        return float(min(p, m_micro))
    rank = {"first": 0, "middle": 1}.get(stage, p - 1)
    if v == 1:
        return float(min(p - rank, m_micro))
    return float(min(p, m_micro)) * (1.0 + (p - 1 - 2 * rank) / (p * v))


def stage_activations(m: ModelSpec, lay: Layout, stage: str, seq_length: int, global_batch: int,
                      opts: MemoryOptions = MemoryOptions(), precision: str = "bf16") -> float:
    """Activation bytes on one GPU of ``stage``, in-flight micro-batches included."""
    sp = stage_params(m, lay.tp, lay.pp, lay.ep, stage)
    n_layers, moe_l = sp.layers, sp.moe_layers
    dense_l = n_layers - moe_l
    m_micro = max(1, global_batch // (lay.micro_batch * lay.dp))  # micro-batches per pipeline
    fp8 = precision == "fp8"
    per_dense = activation_bytes_per_layer(m, lay, lay.micro_batch, seq_length, False, fp8) if dense_l else 0.0
    per_moe = activation_bytes_per_layer(m, lay, lay.micro_batch, seq_length, True, fp8) if moe_l else 0.0
    per_stage = dense_l * per_dense + moe_l * per_moe
    inflight = _inflight(lay, stage, m_micro)
    acts = per_stage * inflight
    tokens = seq_length / lay.cp * lay.micro_batch
    if lay.recompute == "full":  # one layer rematerialised during its backward, beyond its stored input
        working = replace(lay, recompute="none")
        moe = moe_l > 0
        acts += (activation_bytes_per_layer(m, working, lay.micro_batch, seq_length, moe, fp8)
                 - activation_bytes_per_layer(m, lay, lay.micro_batch, seq_length, moe, fp8))
    if moe_l and m.moe is not None and lay.ep > 1:  # one layer's all-to-all send and receive buffers
        acts += 2.0 * tokens * m.moe.top_k * m.hidden_size * WEIGHT_BYTES
    if stage in ("last", "only"):  # the loss buffer of the output head, and one more per multi-token prediction
        # module (each computes its own logits and cross-entropy, kept until its backward: DeepSeek-V3 §2.2)
        acts += (1 + m.mtp_layers) * LOSS_IMPLS[opts.loss_impl] * tokens * m.vocab_size / lay.tp
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
                        stage_activations(m, lay, st, seq_length, global_batch, opts, precision), st, memory_gib,
                        opts)
                for st in model_stages(m, lay.pp)), key=lambda r: r.total)

