"""One training iteration's time, term by term (docs/formulas.md A3-A6, docs/modeling-notes.md).

    t_iter = m·t_mb + bubble + pp_comm + exposed_dp + t_optimizer
    t_mb   = Σ_layers(gemm + attention + elementwise) + recompute + exposed(tp, cp, ep, fsdp)
    bubble = (p − 1)/v · t_mb                        (Narayanan 2021 §2.2.2: (p−1)/(v·m) of the ideal time)

Collectives (docs/formulas.md A4): TP all-reduce (or RS+AG with SP) 4 per layer per micro-batch, 6 with full
recompute (A4.1); CP ring exchange of K and V; PP point-to-point b·s·h/t per boundary each way, ×v
(A4.2); DP gradient reduce 2(d−1)/d·Ψ·bytes (A4.3), the distributed optimizer's RS + AG, ZeRO-2's
per-micro-batch reduce-scatter, ZeRO-3/FSDP's weight gathers every micro-batch, 1.5× DP volume (A4.4);
MoE all-to-all k·b·s·h per dispatch/combine (A4.5). What overlaps with compute is ``exposed()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from ..params import StageParams, model_stages, stage_params
from ..specs import Layout, ModelSpec
from .comm import all_to_all_time, collective_time, exposed, p2p_time
from .constants import (
    ADAM_STEP_BYTES_PER_PARAM,
    BF16_BYTES,
    DEEPSPEED_OVERLAP,
    DEEPSPEED_TENSORS_PER_LAYER,
    FP32_BYTES,
    HBM_EFFICIENCY,
    PerfConstants,
    load_default_constants,
)
from .hardware import Hardware, PerfOptions
from .kernels import LayerKernels, layer_kernels

FP8_DISPATCH_BYTES = 1.0 + 1.0 / 32  # FP8 values plus one scale per 32-element block (MXFP8)
# Megatron DDP bucket: max(40M, 1M·dp) parameters (megatron/core/distributed/distributed_data_parallel_config.py)
DDP_BUCKET_PARAMS = 40e6


@dataclass(frozen=True)
class StepTime:
    """One iteration's time, split by where it goes (seconds)."""

    compute: float
    recompute: float
    tp_comm: float
    pp_bubble: float
    pp_comm: float
    dp_comm: float
    moe_all_to_all: float
    optimizer: float
    other: float
    microbatches: int

    @property
    def total(self) -> float:
        return (self.compute + self.recompute + self.tp_comm + self.pp_bubble + self.pp_comm + self.dp_comm
                + self.moe_all_to_all + self.optimizer + self.other)

    def as_dict(self) -> dict[str, float]:
        return {
            "compute": self.compute, "recompute": self.recompute, "tp_communication": self.tp_comm,
            "pipeline_bubble": self.pp_bubble, "pp_communication": self.pp_comm,
            "dp_communication_exposed": self.dp_comm, "moe_all_to_all": self.moe_all_to_all,
            "optimizer": self.optimizer, "other": self.other,
        }


@dataclass(frozen=True)
class Groups:
    """How many ranks of each process group share a node (Megatron rank order tp-cp-dp-pp, ep within dp·cp)."""

    tp: int
    cp: int
    dp_cp: int  # the gradient group: data and context parallel ranks together
    ep: int
    edp: int  # the expert data-parallel group (dp·cp/ep ranks, stride tp·ep)
    pp_same_node: bool


def groups_of(lay: Layout, gpn: int) -> Groups:
    per_tp_block = max(1, gpn // lay.tp)  # ranks with stride tp that fit on a node
    edp = max(1, lay.dp * lay.cp // lay.ep)
    return Groups(tp=min(lay.tp, gpn), cp=min(lay.cp, per_tp_block), dp_cp=min(lay.dp * lay.cp, per_tp_block),
                  ep=min(lay.ep, per_tp_block), edp=min(edp, max(1, gpn // (lay.tp * lay.ep))),
                  pp_same_node=lay.tp * lay.cp * lay.dp < gpn)


@dataclass(frozen=True)
class Compute:
    """One micro-batch's compute on the slowest stage (seconds)."""

    fwd: float
    bwd: float
    rec: float
    gemm_fwd: float  # the GEMM part of fwd (the window TP communication overlaps with)
    moe_fwd: float  # the routed-expert part of fwd (the window expert all-to-all can overlap with)


def compute_times(k: LayerKernels, sp: StageParams, recompute: str, flash: bool = True, heads: int = 1) -> Compute:
    """Forward, backward (2× forward for GEMMs and element-wise work) and recomputation of one micro-batch of
    the stage's layers; ``heads``: how many times the stage runs the output layer and the loss (the last stage:
    once, and once more per multi-token prediction module with that module's projection; others: 0)."""
    n, moe_l = sp.layers, sp.moe_layers
    dense_l = n - moe_l
    gemm_fwd = dense_l * (k.attn_proj + k.dense_mlp) + moe_l * (k.attn_proj + k.moe_mlp)
    head = heads * (k.logits_fwd + k.logits_elem) + max(0, heads - 1) * k.mtp_proj
    fwd = gemm_fwd + n * (k.core_fwd + k.elem_fwd) + head
    bwd = 2.0 * (gemm_fwd + n * k.elem_fwd + head) + k.core_bwd_ratio * n * k.core_fwd
    if recompute == "full":
        rec = gemm_fwd + n * (k.core_fwd + k.elem_fwd)
    elif recompute == "selective" and flash:  # norms and activation re-run (memory.py); attention is flash
        rec = n * k.elem_fwd
    elif recompute == "selective":  # Korthikanti 2022 §5: only the attention core is recomputed
        rec = n * k.core_fwd
    else:
        rec = 0.0
    return Compute(fwd, bwd, rec, gemm_fwd, moe_l * k.moe_mlp)


def tp_comm(m: ModelSpec, lay: Layout, tokens: float, sp: StageParams, cmp: Compute, g: Groups, hw: Hardware,
            opts: PerfOptions, c: PerfConstants) -> float:
    """Tensor-parallel collectives of one micro-batch (docs/formulas.md A4.1), optionally overlapped with GEMMs."""
    if lay.tp <= 1:
        return 0.0
    n_coll = 4 + (2 if lay.recompute == "full" else 0)
    one = collective_time(tokens * m.hidden_size * BF16_BYTES, lay.tp, g.tp, 2.0, hw, share_nics=False)
    total = sp.layers * n_coll * one
    if opts.tp_comm_overlap:  # Transformer Engine userbuffers: split GEMMs overlap their own collectives
        return exposed(total, 3.0 * cmp.gemm_fwd, c.overlap)
    return total


def cp_comm(m: ModelSpec, lay: Layout, tokens: float, sp: StageParams, k: LayerKernels, g: Groups,
            hw: Hardware, c: PerfConstants) -> float:
    """Context-parallel ring exchange of K and V (forward once, backward twice), hidden behind attention."""
    if lay.cp <= 1:
        return 0.0
    kv_bytes = 2.0 * tokens * m.kv_size / lay.tp * BF16_BYTES
    per_layer = 3.0 * collective_time(kv_bytes * lay.cp, lay.cp, g.cp, 1.0, hw)
    return sp.layers * exposed(per_layer, (1.0 + k.core_bwd_ratio) * k.core_fwd, c.overlap)


def ep_comm(m: ModelSpec, lay: Layout, tokens: float, sp: StageParams, cmp: Compute, g: Groups, hw: Hardware,
            opts: PerfOptions) -> float:
    """Expert-parallel all-to-all: dispatch and combine, forward and backward (+forward again with full recompute).

    Each GPU's tokens are distinct, so the inter-node share leaves through the GPU's own NIC (comm.all_to_all_time).
    """
    if m.moe is None or lay.ep <= 1 or sp.moe_layers == 0:
        return 0.0
    # with sequence parallelism each TP rank dispatches its own 1/tp of the tokens (Megatron-Core token dispatcher)
    local = tokens / lay.tp if lay.sequence_parallel else tokens
    per_token = m.moe.top_k * m.hidden_size
    # FP8 runs dispatch FP8 activations (1 B + block scales) and combine in bf16 (DeepEP, Megatron-Core fp8 dispatch)
    dispatch_b = FP8_DISPATCH_BYTES if hw.fp8 else BF16_BYTES
    dispatch = all_to_all_time(local * per_token * dispatch_b, lay.ep, g.ep, hw, opts.node_limited_routing)
    combine = all_to_all_time(local * per_token * BF16_BYTES, lay.ep, g.ep, hw, opts.node_limited_routing)
    # forward: dispatch + combine; backward: the combine's gradient (dispatch-sized) and the dispatch's (combine-sized)
    total = sp.moe_layers * 2.0 * (dispatch + combine) * (1.5 if lay.recompute == "full" else 1.0)
    return exposed(total, 3.0 * cmp.moe_fwd, opts.a2a_overlap) if opts.a2a_overlap > 0 else total


def reduce_bytes(lay: Layout, opts: PerfOptions) -> float:
    """Bytes per gradient element on the wire: the stated reduce dtype, else bf16 under ZeRO-3/FSDP, fp32 otherwise
    (Megatron reduces its fp32 main grads)."""
    if opts.grad_reduce_bytes is not None:
        return opts.grad_reduce_bytes
    return BF16_BYTES if lay.zero >= 3 else FP32_BYTES


def ddp_buckets(sp: StageParams, dp_cp: int) -> int:
    """Gradient buckets of Megatron's DDP: max(40M, 1M·dp) parameters each, one collective per bucket."""
    return max(1, math.ceil(sp.total / max(DDP_BUCKET_PARAMS, 1e6 * dp_cp)))


def dp_collective(lay: Layout, sp: StageParams, g: Groups, hw: Hardware, bytes_per_param: float, factor: float,
                  count: int, share_nics: bool = True) -> float:
    """One data-parallel collective of the stage's parameters: the non-expert ones over dp·cp ranks, the experts
    over the expert data-parallel group (dp·cp/ep ranks), in ``count`` separate collectives."""
    dp_cp = lay.dp * lay.cp
    edp = max(1, dp_cp // lay.ep)
    return (collective_time(sp.dense * bytes_per_param, dp_cp, g.dp_cp, factor, hw, share_nics, count)
            + collective_time(sp.expert * bytes_per_param, edp, g.edp, factor, hw, share_nics, count))


def sharded_comm(lay: Layout, sp: StageParams, cmp: Compute, micro: int, g: Groups, hw: Hardware,
                 opts: PerfOptions, c: PerfConstants) -> tuple[float, float]:
    """Data-parallel communication that happens every micro-batch, and once per step: (per micro-batch, per step).

    ZeRO-3/FSDP gathers the weights for the forward and again for the backward and reduce-scatters the
    gradients, per unit (one unit per layer, plus the root); FSDP prefetches the next unit and overlaps
    (forward window: the forward; backward window: the backward with its recomputation). DeepSpeed ZeRO-3
    gathers per parameter tensor, synchronising the device, with little overlap and one NIC per GPU.
    ZeRO-2 reduce-scatters every micro-batch's gradients (it keeps only a shard) and all-gathers the
    updated weights once per step.
    """
    gb = reduce_bytes(lay, opts)
    if lay.zero >= 3:
        deepspeed = opts.sharded_impl == "deepspeed"
        units = sp.layers + 1
        count = units * DEEPSPEED_TENSORS_PER_LAYER if deepspeed else units
        o = DEEPSPEED_OVERLAP if deepspeed else c.overlap
        ag = dp_collective(lay, sp, g, hw, BF16_BYTES, 1.0, count, not deepspeed)
        rs = dp_collective(lay, sp, g, hw, gb, 1.0, count, not deepspeed)
        per_mb = exposed(ag, cmp.fwd, o) + exposed(ag + rs, cmp.bwd + cmp.rec, o)
        return per_mb, 0.0
    if lay.zero == 2 and micro > 1:
        count = ddp_buckets(sp, lay.dp * lay.cp)
        rs = dp_collective(lay, sp, g, hw, gb, 1.0, count)
        ag = dp_collective(lay, sp, g, hw, BF16_BYTES, 1.0, count)
        return exposed(rs, cmp.bwd + cmp.rec, c.overlap), ag
    return 0.0, 0.0


def dp_step_comm(lay: Layout, sp: StageParams, cmp: Compute, g: Groups, hw: Hardware, opts: PerfOptions,
                 c: PerfConstants, micro: int = 1) -> float:
    """Once-per-step gradient reduction (ZeRO 0-2) and the distributed optimizer's weight all-gather, exposed.

    Megatron overlaps the gradient reduce-scatter (or all-reduce) with the last micro-batch's backward
    (--overlap-grad-reduce) and the weight all-gather with the next step's first forward (--overlap-param-gather).
    ZeRO-3, and ZeRO-2 with gradient accumulation, move their data every micro-batch (``sharded_comm``).
    """
    if lay.zero >= 3 or (lay.zero == 2 and micro > 1) or lay.dp * lay.cp <= 1:
        return 0.0
    gb = reduce_bytes(lay, opts)
    count = ddp_buckets(sp, lay.dp * lay.cp)
    if lay.zero == 0:
        reduce, gather = dp_collective(lay, sp, g, hw, gb, 2.0, count), 0.0
    else:
        reduce = dp_collective(lay, sp, g, hw, gb, 1.0, count)
        gather = dp_collective(lay, sp, g, hw, BF16_BYTES, 1.0, count)
    if not opts.overlap_grad_reduce:
        return reduce + gather
    return exposed(reduce, cmp.bwd + cmp.rec, c.overlap) + exposed(gather, cmp.fwd, c.overlap)


def optimizer_time(lay: Layout, sp: StageParams, hw: Hardware) -> float:
    """Adam's step is memory bound: ADAM_STEP_BYTES_PER_PARAM per local parameter over HBM."""
    shard = lay.dp * lay.cp if lay.zero >= 1 else 1
    edp = max(1, lay.dp * lay.cp // lay.ep) if lay.zero >= 1 else 1
    local = sp.dense / shard + sp.expert / edp
    return local * ADAM_STEP_BYTES_PER_PARAM / (hw.hbm_bytes_s * HBM_EFFICIENCY)


def slowest_stage(m: ModelSpec, lay: Layout) -> StageParams:
    """The fullest pipeline stage: the most layers, then MoE layers, then parameters (``_slowest_stage``, cached
    by tp, pp and ep). The stage whose micro-batch takes longest is ``pace_stage``'s."""
    return _slowest_stage(m, lay.tp, lay.pp, lay.ep)


@lru_cache(maxsize=4096)
def _slowest_stage(m: ModelSpec, tp: int, pp: int, ep: int) -> StageParams:
    return max((stage_params(m, tp, pp, ep, st) for st in model_stages(m, pp)),
               key=lambda x: (x.layers, x.moe_layers, x.total))


def pace_stage(m: ModelSpec, lay: Layout, k: LayerKernels) -> tuple[StageParams, Compute]:
    """The pipeline stage whose micro-batch takes longest, and its compute. In the 1F1B steady state every stage
    runs one micro-batch forward and backward per slot, so the slowest stage sets the slot (Narayanan et al.
    2021 §2.2). Each stage is timed with its own layers, and the output layer and loss on the last stage only:
    with an uneven split the last stage gives up a layer for them (Llama 3 §3.3.2; Megatron-Bridge's
    ``account_for_loss_in_pipeline_split``), so a middle stage with one more layer can be the slower one. The
    last stage also runs the multi-token prediction modules, each with its own pass through the output head.
    Cached (``_pace``): the search asks again for every ZeRO stage and bound of the same layout."""
    return _pace(m, lay.tp, lay.pp, lay.ep, k, lay.recompute, lay.flash_attention)


@lru_cache(maxsize=8192)
def _pace(m: ModelSpec, tp: int, pp: int, ep: int, k: LayerKernels, recompute: str,
          flash: bool) -> tuple[StageParams, Compute]:
    best: tuple[StageParams, Compute] | None = None
    for st, sp in _stages(m, tp, pp, ep):
        heads = 1 + m.mtp_layers if st in ("last", "only") else 0
        cmp = compute_times(k, sp, recompute, flash, heads)
        if best is None or cmp.fwd + cmp.bwd + cmp.rec > best[1].fwd + best[1].bwd + best[1].rec:
            best = (sp, cmp)
    assert best is not None  # model_stages is never empty
    return best


@lru_cache(maxsize=4096)
def _stages(m: ModelSpec, tp: int, pp: int, ep: int) -> tuple[tuple[str, StageParams], ...]:
    """Every distinct pipeline stage of the model and its parameters on one GPU."""
    return tuple((st, stage_params(m, tp, pp, ep, st)) for st in model_stages(m, pp))


def compute_bound(m: ModelSpec, lay: Layout, seq_length: int, global_batch: int, hw: Hardware,
                  opts: PerfOptions = PerfOptions(), c: PerfConstants | None = None) -> float:
    """A lower bound of ``step_time(...).total``: the compute and recompute of every micro-batch plus the bubble
    of that compute alone (every other term is non-negative). The search uses it to skip timing layouts that
    cannot make its list of the fastest."""
    c = c if c is not None else load_default_constants()
    micro = max(1, global_batch // (lay.micro_batch * lay.dp))
    k = layer_kernels(m, lay.tp, lay.cp, lay.ep, lay.micro_batch, lay.sequence_parallel, lay.flash_attention,
                      seq_length, hw, c, opts.expert_imbalance, opts.attention_kernel)
    _, cmp = pace_stage(m, lay, k)
    per_mb = cmp.fwd + cmp.bwd + cmp.rec
    bubble = (lay.pp - 1) / max(1, lay.virtual_stages) if lay.pp > 1 else 0.0
    return (micro + bubble) * per_mb


class _Pipelined(NamedTuple):
    """The ZeRO-independent part of one iteration: per micro-batch compute and TP/CP/EP communication, and the
    pipeline's point-to-point traffic (step_time adds the ZeRO/data-parallel terms and the optimizer)."""

    micro: int
    sp: StageParams
    cmp: Compute
    g: Groups
    tp_mb: float
    cp_mb: float
    ep_mb: float
    pp_comm: float

    @property
    def per_mb(self) -> float:
        return self.cmp.fwd + self.cmp.bwd + self.cmp.rec + self.tp_mb + self.cp_mb + self.ep_mb


def _pipelined(m: ModelSpec, lay: Layout, seq_length: int, global_batch: int, hw: Hardware, opts: PerfOptions,
               c: PerfConstants) -> _Pipelined:
    p, v = lay.pp, max(1, lay.virtual_stages)
    micro = max(1, global_batch // (lay.micro_batch * lay.dp))
    tokens = lay.micro_batch * seq_length / lay.cp  # tokens per GPU per micro-batch
    k = layer_kernels(m, lay.tp, lay.cp, lay.ep, lay.micro_batch, lay.sequence_parallel, lay.flash_attention,
                      seq_length, hw, c, opts.expert_imbalance, opts.attention_kernel)
    sp, cmp = pace_stage(m, lay, k)
    g = groups_of(lay, hw.gpus_per_node)
    pp_comm = 0.0
    if p > 1:  # activations b·s·h/t per boundary each way (scatter/gather, Narayanan §4.1), ×v when interleaved
        one = p2p_time(tokens * m.hidden_size * BF16_BYTES / lay.tp, g.pp_same_node, hw)
        pp_comm = 2.0 * v * one * (micro + p - 1)
    return _Pipelined(micro, sp, cmp, g, tp_comm(m, lay, tokens, sp, cmp, g, hw, opts, c),
                      cp_comm(m, lay, tokens, sp, k, g, hw, c), ep_comm(m, lay, tokens, sp, cmp, g, hw, opts), pp_comm)


def pipeline_bound(m: ModelSpec, lay: Layout, seq_length: int, global_batch: int, hw: Hardware,
                   opts: PerfOptions = PerfOptions(), c: PerfConstants | None = None) -> float:
    """A tighter lower bound of ``step_time(...).total`` that holds for every ZeRO stage: ``step_time`` without
    its data-parallel, ZeRO-3 and optimizer terms (each non-negative), the bubble over the rest of a micro-batch.
    It grows with heavier recompute (more compute, and full recompute repeats TP and EP traffic)."""
    c = c if c is not None else load_default_constants()
    pl = _pipelined(m, lay, seq_length, global_batch, hw, opts, c)
    bubble = (lay.pp - 1) / max(1, lay.virtual_stages) if lay.pp > 1 else 0.0
    return (pl.micro + bubble) * pl.per_mb + pl.pp_comm


def step_time(
    m: ModelSpec,
    lay: Layout,
    seq_length: int,
    global_batch: int,
    hw: Hardware,
    opts: PerfOptions = PerfOptions(),
    c: PerfConstants | None = None,
) -> StepTime:
    """Predict one iteration of ``global_batch`` sequences on ``lay`` (see the module docstring)."""
    c = c if c is not None else load_default_constants()
    p, v = lay.pp, max(1, lay.virtual_stages)
    pl = _pipelined(m, lay, seq_length, global_batch, hw, opts, c)
    micro, sp, cmp, g = pl.micro, pl.sp, pl.cmp, pl.g
    shard_mb, shard_step = sharded_comm(lay, sp, cmp, micro, g, hw, opts, c)
    dp_step = dp_step_comm(lay, sp, cmp, g, hw, opts, c, micro) + shard_step
    t_mb = pl.per_mb + shard_mb
    bubble = (p - 1) / v * t_mb if p > 1 else 0.0
    tp_mb, cp_mb, ep_mb, pp_comm = pl.tp_mb, pl.cp_mb, pl.ep_mb, pl.pp_comm

    return StepTime(
        compute=micro * (cmp.fwd + cmp.bwd),
        recompute=micro * cmp.rec,
        tp_comm=micro * (tp_mb + cp_mb),
        pp_bubble=bubble,
        pp_comm=pp_comm,
        dp_comm=dp_step + micro * shard_mb,
        moe_all_to_all=micro * ep_mb,
        optimizer=optimizer_time(lay, sp, hw),
        other=0.0,
        microbatches=micro,
    )
