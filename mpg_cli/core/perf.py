"""Step-time performance model: predict one training iteration's time from the layout.

The model follows formulas.md A3-A6 and modeling-notes.md:

    t_iter = m·t_mb + bubble + pp_comm + exposed_dp + t_optimizer + t_other
    t_mb   = Σ_layers(gemm + attention + elementwise + tp_comm + ep_comm) [+ logits on the last stage]
    bubble = (p − 1)/v · t_mb                        (Narayanan 2021 §2.2.2: (p−1)/(v·m) of the ideal time)

- GEMMs run at a fraction of the dense peak that depends on the matrix each GPU sees
  (tokens per micro-batch M, the reduction K and the output N, after tensor parallelism):
  η = η_max(gen)·M/(M+m0)·K/(K+k0)·N/(N+k0) (modeling-notes.md 1).
- The attention core is costed separately: FlashAttention skips masked blocks, so the causal
  half of the s² work is executed, its backward is 2.5× its forward (5 GEMMs vs 2 with the
  recomputation of QKᵀ, Dao et al. 2022), at a lower efficiency (modeling-notes.md 2).
- Element-wise work (norms, activations, residuals, dropout, softmax of the logits) costs bytes
  over HBM bandwidth (modeling-notes.md 3).
- Collectives use the nccl-tests bus-bandwidth model (formulas.md A4.0) with a link efficiency
  and latency (A4.6): TP all-reduce (or RS+AG with SP) 4 per layer per micro-batch, 6 with full
  recompute (A4.1); PP point-to-point b·s·h/t per boundary each way, ×v (A4.2); DP gradient
  reduce 2(d−1)/d·Ψ·bytes (A4.3), ZeRO-2 reduce-scatters gradients every micro-batch (it keeps only a
  shard), ZeRO-3/FSDP also gathers weights every micro-batch, 1.5× DP volume (A4.4);
  MoE all-to-all k·b·s·h per dispatch/combine (A4.5). TP beyond one node uses the per-GPU
  inter-node bandwidth. DP overlaps with the last micro-batch's backward when enabled.
- The optimizer step is memory bound: Adam reads and writes ~30 bytes per local parameter
  (llm-analysis: optimizer time = state bytes / HBM bandwidth).

The constants in ``PerfConstants`` are few, named and fitted once across all published runs
in ``mpg_cli/data/runs.yaml`` (``scripts/fit_perf.py``), never per run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from .params import param_breakdown
from .specs import Layout, ModelSpec


@dataclass(frozen=True)
class PerfConstants:
    """Fitted constants of the step-time model (see scripts/fit_perf.py)."""

    # peak GEMM efficiency per GPU generation; generations without a published run use a stated stand-in
    gemm_eta_max: tuple[tuple[str, float], ...] = (("ampere", 0.813), ("hopper", 0.653))
    gemm_m0: float = 356.0  # tokens: M/(M+m0)
    gemm_k0: float = 9.47  # K/(K+k0) and N/(N+k0)
    attention_ratio: float = 0.439  # FlashAttention efficiency / GEMM efficiency
    elementwise_passes: float = 7.99  # bytes per token per layer forward = passes·2·(h_local + f_local)
    hbm_efficiency: float = 0.80  # achieved fraction of HBM bandwidth for element-wise kernels
    link_efficiency_intra: float = 0.80  # NVLink busbw/peak (formulas.md A4.6: 370/450)
    link_efficiency_inter: float = 0.90  # IB/RoCE (formulas.md A4.6)
    overlap: float = 0.817  # fraction of an overlappable window that hides communication
    latency_intra_s: float = 10e-6  # formulas.md A4.6
    latency_inter_s: float = 20e-6
    iteration_overhead_s: float = 0.0

    def eta_max(self, generation: str) -> float:
        table = dict(self.gemm_eta_max)
        return table.get(STAND_IN.get(generation, generation), table["hopper"])


# Generations with no published run in the validation set borrow a calibrated curve (stated in output).
STAND_IN = {"volta": "ampere", "ada": "ampere", "blackwell": "hopper", "cdna2": "ampere", "cdna3": "hopper",
            "gaudi": "hopper", "tpu": "hopper"}
CALIBRATED = ("ampere", "hopper")
DEFAULT_CONSTANTS = PerfConstants()


@dataclass(frozen=True)
class Hardware:
    """What the step-time model needs of the cluster."""

    peak_flops: float  # dense FLOP/s at the training precision
    hbm_bytes_s: float
    generation: str
    gpus_per_node: int
    intra_bytes_s: float  # per GPU, one direction
    inter_bytes_s: float  # per GPU, one direction


@dataclass(frozen=True)
class PerfOptions:
    """Framework settings that change the step time (stated by the user or the source)."""

    grad_reduce_bytes: float | None = None  # None: 4 for ZeRO 0-2 (Megatron fp32 grads), 2 for ZeRO-3/FSDP
    overlap_grad_reduce: bool = True
    tp_comm_overlap: bool = False


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


def _sat(x: float, x0: float) -> float:
    return x / (x + x0)


def collective_time(bytes_: float, ranks: int, ranks_per_node: int, factor: float, hw: "Hardware",
                    c: "PerfConstants", share_nics: bool = True) -> float:
    """Time of one collective over ``ranks`` GPUs, ``ranks_per_node`` of them on each node.

    nccl-tests bus-bandwidth model (formulas.md A4.0): factor·(n−1)/n·S/W, factor 2 for all-reduce,
    1 for reduce-scatter, all-gather and all-to-all. Across nodes the collective is hierarchical
    (scaling-book gpus.md, formulas.md A4.6): T = max(intra-node part, inter-node part), where the
    inter-node part moves factor·(M−1)/M·S over the NICs of the group's GPUs on a node (each GPU
    owns 1/gpus_per_node of the node's NIC bandwidth; modeling-notes.md 4). ``share_nics=False``
    charges each GPU's own NIC only: tensor parallelism across nodes sends many small, latency-bound
    messages every layer and gains nothing from the other GPUs' NICs (modeling-notes.md 5).
    """
    if ranks <= 1 or bytes_ <= 0:
        return 0.0
    g = max(1, min(ranks, ranks_per_node))
    nodes = -(-ranks // g)
    intra = factor * (ranks - 1) / ranks * bytes_ / (hw.intra_bytes_s * c.link_efficiency_intra) if g > 1 else 0.0
    if nodes == 1:
        return intra + c.latency_intra_s
    nics = g if share_nics else 1
    inter = factor * (nodes - 1) / nodes * bytes_ / (hw.inter_bytes_s * nics * c.link_efficiency_inter)
    return max(intra, inter) + c.latency_inter_s


@lru_cache(maxsize=4096)
def _kernels(m: ModelSpec, t: int, cp: int, ep: int, micro_batch: int, sequence_parallel: bool, flash: bool,
             s: int, hw: Hardware, c: PerfConstants) -> tuple[float, ...]:
    """Per-layer kernel times of one micro-batch (they depend on tp, cp, ep and the micro-batch only).

    Returns (attention projections, dense MLP, MoE MLP, attention core forward, its backward/forward ratio,
    element-wise forward, logits GEMM forward, logits element-wise) in seconds.
    """
    h = m.hidden_size
    tokens = micro_batch * s / cp  # M: tokens per GPU per micro-batch
    eta_max = c.eta_max(hw.generation)
    peak = hw.peak_flops

    def gemm(M: float, K: float, N: float) -> float:
        eff = eta_max * _sat(M, c.gemm_m0) * _sat(K, c.gemm_k0) * _sat(N, c.gemm_k0)
        return 2.0 * M * K * N / (peak * eff)

    q, kv = m.q_size, m.kv_size
    if m.mla is not None:
        x = m.mla
        qk = x.qk_nope_head_dim + x.qk_rope_head_dim
        attn_proj = (gemm(tokens, h, x.q_lora_rank) + gemm(tokens, x.q_lora_rank, m.heads * qk / t)
                     if x.q_lora_rank else gemm(tokens, h, m.heads * qk / t))
        attn_proj += gemm(tokens, h, x.kv_lora_rank + x.qk_rope_head_dim)
        attn_proj += gemm(tokens, x.kv_lora_rank, m.heads * (x.qk_nope_head_dim + x.v_head_dim) / t)
        attn_proj += gemm(tokens, m.heads * x.v_head_dim / t, h)
        core_dims = m.heads * (qk + x.v_head_dim)
    else:
        attn_proj = gemm(tokens, h, (q + 2 * kv) / t) + gemm(tokens, q / t, h)
        core_dims = m.heads * 2 * m.d_head
    up = 2 if m.ffn_type == "swiglu" else 1

    def mlp(M: float, f: float) -> float:
        return gemm(M, h, up * f / t) + gemm(M, f / t, h)

    dense_mlp = mlp(tokens, m.ffn_hidden_size)
    moe_mlp = 0.0
    if m.moe is not None:
        x = m.moe
        # E/ep local experts, each a GEMM of tokens·ep·k/E rows; total work = tokens·k rows
        per_expert_tokens = tokens * ep * x.top_k / x.experts
        moe_mlp = x.experts / ep * mlp(per_expert_tokens, x.expert_ffn_hidden_size)
        if x.shared_experts:
            moe_mlp += x.shared_experts * mlp(tokens, x.shared_ffn)
        moe_mlp += gemm(tokens, h, x.experts)  # router
    # attention core. FlashAttention: the causal half of the s² work is executed, at a lower efficiency
    # than GEMMs, and its backward is 2.5× its forward. Without it (Megatron before 2022): full s² batched
    # GEMMs, and the a·s² score matrix goes through softmax and dropout in memory (element-wise bytes).
    sp_div = t if sequence_parallel else 1
    f_eff = m.ffn_hidden_size if m.moe is None else m.moe.top_k * m.moe.expert_ffn_hidden_size
    elem_width = h / sp_div + up * f_eff / t
    core_full = 2.0 * micro_batch * s * (s / cp) * core_dims / t
    if flash:
        attn_eff = eta_max * c.attention_ratio * _sat(s, c.gemm_m0) * _sat(m.d_head, c.gemm_k0)
        core_fwd = 0.5 * core_full / (peak * attn_eff)
        core_bwd_ratio = 2.5
    else:
        core_fwd = core_full / (peak * eta_max * _sat(s, c.gemm_m0) * _sat(m.d_head, c.gemm_k0))
        core_bwd_ratio = 2.0
        elem_width += m.heads * s / cp / t
    # element-wise: bytes = passes·2·width per token, forward; backward twice that
    elem_fwd = c.elementwise_passes * 2.0 * tokens * elem_width / (hw.hbm_bytes_s * c.hbm_efficiency)
    # logits on the last stage: GEMM M×h×V/t and an fp32 softmax cross-entropy, three passes over M×V/t fp32
    # values (read the logits, write the probabilities, read them for the gradient)
    logits_fwd = gemm(tokens, h, m.vocab_size / t)
    logits_elem = 3 * 4.0 * tokens * m.vocab_size / t / (hw.hbm_bytes_s * c.hbm_efficiency)
    return attn_proj, dense_mlp, moe_mlp, core_fwd, core_bwd_ratio, elem_fwd, logits_fwd, logits_elem


def step_time(
    m: ModelSpec,
    lay: Layout,
    seq_length: int,
    global_batch: int,
    hw: Hardware,
    opts: PerfOptions = PerfOptions(),
    c: PerfConstants = DEFAULT_CONSTANTS,
) -> StepTime:
    """Predict one iteration of ``global_batch`` sequences on ``lay`` (see module docstring)."""
    h, s, t, p, v = m.hidden_size, seq_length, lay.tp, lay.pp, max(1, lay.virtual_stages)
    micro = max(1, global_batch // (lay.micro_batch * lay.dp))
    tokens = lay.micro_batch * s / lay.cp  # M: tokens per GPU per micro-batch
    kv = m.kv_size
    attn_proj, dense_mlp, moe_mlp, core_fwd, core_bwd_ratio, elem_fwd, logits_fwd, logits_elem = _kernels(
        m, t, lay.cp, lay.ep, lay.micro_batch, lay.sequence_parallel, lay.flash_attention, s, hw, c)

    n_layers = math.ceil(m.layers / p)
    moe_layers_stage = min(m.moe_layers, n_layers)
    dense_layers_stage = n_layers - moe_layers_stage
    gemm_fwd_stage = dense_layers_stage * (attn_proj + dense_mlp) + moe_layers_stage * (attn_proj + moe_mlp)
    fwd = gemm_fwd_stage + n_layers * (core_fwd + elem_fwd) + logits_fwd + logits_elem
    bwd = 2.0 * (gemm_fwd_stage + n_layers * elem_fwd + logits_fwd + logits_elem) + core_bwd_ratio * n_layers * core_fwd
    if lay.recompute == "full":
        rec = gemm_fwd_stage + n_layers * (core_fwd + elem_fwd)
    elif lay.recompute == "selective":
        rec = n_layers * core_fwd
    else:
        rec = 0.0

    # Megatron rank order tp-cp-ep-dp-pp: a group's stride decides how many of its ranks share a node
    gpn = hw.gpus_per_node
    per_node_tp = min(t, gpn)
    per_node_cp = max(1, gpn // t)
    per_node_dp = max(1, gpn // (t * lay.cp))

    # tensor parallel: 2 all-reduces forward, 2 backward (+2 with full recompute), b·s·h·2 bytes each
    n_ar = 4 + (2 if lay.recompute == "full" else 0)
    tp_one = collective_time(tokens * h * 2.0, t, per_node_tp, 2.0, hw, c, share_nics=False)
    tp_mb = n_layers * n_ar * tp_one
    if opts.tp_comm_overlap:
        tp_mb = max(tp_mb * (1.0 - c.overlap), tp_mb - c.overlap * gemm_fwd_stage * 3.0)

    # context parallel: ring exchange of K and V (forward, and twice in backward), overlapped with attention
    cp_mb = 0.0
    if lay.cp > 1:
        kv_bytes = 2.0 * tokens * kv / t * 2.0
        cp_comm = 3.0 * collective_time(kv_bytes * lay.cp, lay.cp, per_node_cp, 1.0, hw, c)
        cp_mb = n_layers * max(cp_comm * (1.0 - c.overlap), cp_comm - c.overlap * (1.0 + core_bwd_ratio) * core_fwd)

    # expert parallel all-to-all: dispatch + combine, forward and backward (formulas.md A4.5)
    ep_mb = 0.0
    if m.moe is not None and lay.ep > 1:
        a2a = collective_time(tokens * m.moe.top_k * h * 2.0, lay.ep, min(lay.ep, per_node_dp), 1.0, hw, c)
        ep_mb = moe_layers_stage * 4 * a2a * (1.5 if lay.recompute == "full" else 1.0)

    # data parallel: gradients (and ZeRO-3/FSDP weights every micro-batch) over dp·cp ranks
    pb = param_breakdown(m)
    stage_params = (dense_layers_stage * (pb.attention_layer + pb.dense_mlp_layer) / t
                    + moe_layers_stage * (pb.attention_layer + pb.moe_shared_layer) / t
                    + moe_layers_stage * pb.moe_routed_layer / (lay.ep * t)
                    + (pb.embedding + pb.output) / t / (1 if p == 1 else 2))
    dp_group = lay.dp * lay.cp
    dp_per_node = min(dp_group, max(1, gpn // t))
    grad_b = opts.grad_reduce_bytes if opts.grad_reduce_bytes is not None else (2.0 if lay.zero >= 3 else 4.0)
    fsdp_mb = 0.0
    dp_total = 0.0
    if lay.zero >= 3:
        ag = collective_time(stage_params * 2.0, dp_group, dp_per_node, 1.0, hw, c)
        rs = collective_time(stage_params * grad_b, dp_group, dp_per_node, 1.0, hw, c)
        fwd_compute = fwd + (rec if lay.recompute == "full" else 0.0)
        fsdp_mb = max(ag * (1.0 - c.overlap), ag - c.overlap * fwd_compute)
        fsdp_mb += max((ag + rs) * (1.0 - c.overlap), ag + rs - c.overlap * bwd)
    elif lay.zero == 2 and micro > 1:
        # ZeRO-2 keeps only its gradient shard, so every micro-batch's gradients are reduce-scattered during
        # its backward (ZeRO §5.2); the updated 16-bit weights are all-gathered once per step
        rs = collective_time(stage_params * grad_b, dp_group, dp_per_node, 1.0, hw, c)
        fsdp_mb = max(rs * (1.0 - c.overlap), rs - c.overlap * bwd)
        dp_total = collective_time(stage_params * 2.0, dp_group, dp_per_node, 1.0, hw, c)
    elif lay.zero >= 1:  # distributed optimizer: reduce-scatter grads + all-gather 16-bit weights
        dp_total = collective_time(stage_params * (grad_b + 2.0), dp_group, dp_per_node, 1.0, hw, c)
    else:
        dp_total = collective_time(stage_params * grad_b, dp_group, dp_per_node, 2.0, hw, c)
    dp_exposed = dp_total
    if opts.overlap_grad_reduce and dp_total:
        dp_exposed = max(dp_total * (1.0 - c.overlap), dp_total - c.overlap * bwd)

    t_mb_compute = fwd + bwd
    t_mb = t_mb_compute + rec + tp_mb + cp_mb + ep_mb + fsdp_mb
    bubble = (p - 1) / v * t_mb if p > 1 else 0.0
    pp_comm = 0.0
    if p > 1:  # activations b·s·h/t per boundary each way (scatter/gather, Narayanan §4.1), ×v when interleaved
        stride = t * lay.cp * lay.dp
        one = collective_time(tokens * h * 2.0 / t, 2, 2 if stride < gpn else 1, 2.0, hw, c)
        pp_comm = 2.0 * v * one * (micro + p - 1)
    opt_params = stage_params / (dp_group if lay.zero >= 1 else 1)
    optimizer = opt_params * 30.0 / (hw.hbm_bytes_s * c.hbm_efficiency)

    return StepTime(
        compute=micro * t_mb_compute,
        recompute=micro * rec,
        tp_comm=micro * (tp_mb + cp_mb),
        pp_bubble=bubble,
        pp_comm=pp_comm,
        dp_comm=dp_exposed + micro * fsdp_mb,
        moe_all_to_all=micro * ep_mb,
        optimizer=optimizer,
        other=c.iteration_overhead_s,
        microbatches=micro,
    )
