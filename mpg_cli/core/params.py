"""Parameter counts: total, active (MoE), and the split that memory needs.

Sources:
- GPT-style: Narayanan et al. 2021 (arXiv 2104.04473) §5.1 Eq. (2),
  P = 12·l·h²·(1 + 13/(12h) + (V+s)/(12·l·h)); this module reproduces it term by term
  (QKV 3h², output h², MLP 8h², biases 13h, learned positions s·h, tied embedding V·h).
- Llama-style (SwiGLU, GQA, RMSNorm, untied, RoPE): docs/formulas.md B4, exact for
  Llama-2-7B (6,738,415,616) and Llama-3-8B (8,030,261,248).
- MoE: Megatron-LM ``theoretical_memory_usage.py`` (docs/formulas.md B4): a MoE layer holds
  attention, E routed experts, shared experts and a router of h·E; active parameters use k.
- MLA: DeepSeek-V3 (arXiv 2412.19437) §2.1.1 projections, as in docs/formulas.md A2.6's MLA branch.
- Multi-token prediction: DeepSeek-V3 §2.2: each module is a transformer layer (the model's last kind), a 2h→h
  projection M_k and two RMSNorms, sharing the embedding and the output head.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .specs import ModelSpec


@dataclass(frozen=True)
class ParamBreakdown:
    """Parameter counts by role. ``*_layer`` values are per layer."""

    attention_layer: float  # projections (+ biases); TP-sharded
    dense_mlp_layer: float  # dense FFN (+ biases); TP-sharded
    moe_routed_layer: float  # all routed experts of one MoE layer; EP-sharded
    moe_active_routed_layer: float  # top-k experts of one MoE layer
    moe_shared_layer: float  # shared experts of one MoE layer; TP-sharded
    router_layer: float  # replicated
    norms_layer: float  # replicated
    embedding: float  # input word embedding (first stage)
    position: float  # learned position embedding (first stage)
    output: float  # untied output layer (last stage), 0 when tied
    final_norm: float
    dense_layers: int
    moe_layers: int
    mtp_layers: int = 0
    mtp_module: float = 0.0  # a multi-token prediction module beyond its transformer layer: projection and norms

    @property
    def mtp_total(self) -> float:
        """The multi-token prediction modules: each a layer of the model's last kind plus ``mtp_module``."""
        layer = self.moe_layer_total if self.moe_layers else self.dense_layer_total
        return self.mtp_layers * (layer + self.mtp_module)

    @property
    def dense_layer_total(self) -> float:
        return self.attention_layer + self.dense_mlp_layer + self.norms_layer

    @property
    def moe_layer_total(self) -> float:
        return (
            self.attention_layer
            + self.moe_routed_layer
            + self.moe_shared_layer
            + self.router_layer
            + self.norms_layer
        )

    @property
    def moe_layer_active(self) -> float:
        return (
            self.attention_layer
            + self.moe_active_routed_layer
            + self.moe_shared_layer
            + self.router_layer
            + self.norms_layer
        )

    @property
    def non_layer(self) -> float:
        return self.embedding + self.position + self.output + self.final_norm

    @property
    def total(self) -> float:
        return (
            self.dense_layers * self.dense_layer_total
            + self.moe_layers * self.moe_layer_total
            + self.non_layer
            + self.mtp_total
        )

    @property
    def active(self) -> float:
        return (
            self.dense_layers * self.dense_layer_total
            + self.moe_layers * self.moe_layer_active
            + self.non_layer
            + self.mtp_layers * ((self.moe_layer_active if self.moe_layers else self.dense_layer_total)
                                 + self.mtp_module)
        )


def attention_params(m: ModelSpec) -> float:
    """Attention projection parameters of one layer (GQA/MQA aware, MLA when given).

    GQA: h·a·d_h (Q) + 2·h·n_kv·d_h (K, V) + a·d_h·h (O) (docs/formulas.md A5);
    biases add a·d_h + 2·n_kv·d_h + h when ``linear_biases``, and a·d_h + 2·n_kv·d_h with
    ``qkv_bias`` alone (Qwen2: bias=True on q/k/v_proj, none on o_proj; transformers modeling_qwen2.py).
    """
    h = m.hidden_size
    if m.mla is not None:
        x = m.mla
        qk = x.qk_nope_head_dim + x.qk_rope_head_dim
        if x.q_lora_rank:
            q = h * x.q_lora_rank + x.q_lora_rank + x.q_lora_rank * m.heads * qk
        else:
            q = h * m.heads * qk
        kv = h * (x.kv_lora_rank + x.qk_rope_head_dim) + x.kv_lora_rank
        kv += x.kv_lora_rank * m.heads * (x.qk_nope_head_dim + x.v_head_dim)
        out = m.heads * x.v_head_dim * h
        return float(q + kv + out)
    q, kv = m.q_size, m.kv_size
    weights = h * q + 2 * h * kv + q * h
    biases = (q + 2 * kv + h) if m.linear_biases else ((q + 2 * kv) if m.qkv_bias else 0)
    return float(weights + biases)


def mlp_params(m: ModelSpec, ffn: int) -> float:
    """One FFN of width ``ffn``: GeLU 2·h·f, SwiGLU 3·h·f (Shazeer 2020), plus biases."""
    h = m.hidden_size
    if m.ffn_type == "swiglu":
        return float(3 * h * ffn + ((2 * ffn + h) if m.linear_biases else 0))
    return float(2 * h * ffn + ((ffn + h) if m.linear_biases else 0))


@lru_cache(maxsize=64)
def param_breakdown(m: ModelSpec) -> ParamBreakdown:
    """Split the model's parameters by role (see the module docstring for sources)."""
    h = m.hidden_size
    norm = 2 * h if m.norm == "layernorm" else h
    moe = m.moe
    return ParamBreakdown(
        attention_layer=attention_params(m),
        dense_mlp_layer=mlp_params(m, m.ffn_hidden_size),
        moe_routed_layer=0.0 if moe is None else moe.experts * mlp_params(m, moe.expert_ffn_hidden_size),
        moe_active_routed_layer=0.0 if moe is None else moe.top_k * mlp_params(m, moe.expert_ffn_hidden_size),
        moe_shared_layer=0.0 if moe is None else moe.shared_experts * mlp_params(m, moe.shared_ffn),
        router_layer=0.0 if moe is None else float(h * moe.experts),
        norms_layer=float(2 * norm),
        embedding=float(m.vocab_size * h),
        position=float(m.seq_length * h) if m.position_embedding == "learned" else 0.0,
        output=0.0 if m.tied_embeddings else float(m.vocab_size * h),
        final_norm=float(norm),
        dense_layers=m.dense_layers,
        moe_layers=m.moe_layers,
        mtp_layers=m.mtp_layers,
        mtp_module=float(2 * h * h + 2 * norm) if m.mtp_layers else 0.0,
    )


@dataclass(frozen=True)
class StageParams:
    """Parameters one GPU of a pipeline stage holds, split by how data parallelism shards them."""

    dense: float  # non-expert parameters (TP-sharded ones ÷ tp): sharded by ZeRO over dp·cp
    expert: float  # routed-expert parameters ÷ (ep·tp): sharded by ZeRO over the expert data-parallel group
    largest_layer: tuple[float, float]  # (non-expert, expert) parameters of the stage's largest layer
    layers: int
    moe_layers: int
    embedding: float  # the root unit: input embedding (first stage) and output layer (last stage), ÷ tp

    @property
    def total(self) -> float:
        return self.dense + self.expert


def stage_layers(layers: int, pp: int, stage: str) -> int:
    """Transformer layers on one GPU of ``stage`` ('first', 'middle', 'last' or 'only').

    Stages hold ⌈l/p⌉ layers. When p does not divide l, the shortfall d = p·⌈l/p⌉ − l is taken from the first
    and last stages (the first, which holds the most in-flight micro-batches, gives up the larger half): Llama 3
    §3.3.2 ("we reduce one Transformer layer each from the first and the last stages" to balance memory), as
    Megatron-LM's ``--decoder-first/last-pipeline-num-layers`` and Megatron-Bridge's
    ``account_for_embedding_in_pipeline_split`` / ``account_for_loss_in_pipeline_split`` allow. The middle
    stages keep ⌈l/p⌉; a deficit larger than the two end stages can give is spread over middle stages, which
    still hold at most ⌈l/p⌉ (the fullest stage is what time and memory need).
    """
    n = -(-layers // pp)
    if pp == 1 or stage == "middle":
        return n
    d = n * pp - layers
    if pp == 2:
        cut = d if stage == "first" else 0
    else:
        cut = -(-d // 2) if stage == "first" else d // 2
    return max(1, n - cut)


@lru_cache(maxsize=4096)
def stage_params(m: ModelSpec, tp: int, pp: int, ep: int, stage: str) -> StageParams:
    """What one GPU of ``stage`` ('first', 'middle', 'last' or 'only') holds; memory and communication use it.
    'middle' is the fullest middle stage: ⌈l/p⌉ layers, as many of them MoE as any middle stage holds.

    Megatron-LM ``theoretical_memory_usage.py``: TP-sharded weights ÷ t, experts ÷ (EP·t), all ÷ p; the first
    stage holds the embedding, the last the output layer (a tied embedding is duplicated on the last stage
    when p > 1). Layers per stage: ``stage_layers`` (an uneven split leaves the end stages a layer short); a
    MoE model's leading dense layers sit on the first stage (and spill into the next ones).
    """
    pb = param_breakdown(m)
    n = stage_layers(m.layers, pp, stage)
    if stage in ("first", "only"):
        dense_l = min(pb.dense_layers, n)
    elif stage == "middle":
        # the middle stage that holds the most MoE layers: the one before the last (MoE layers fill from the back)
        dense_l = n - min(n, max(0, pb.moe_layers - stage_layers(m.layers, pp, "last")))
    else:
        dense_l = n - min(pb.moe_layers, n)
    moe_l = n - dense_l
    sharded = dense_l * (pb.attention_layer + pb.dense_mlp_layer) / tp
    sharded += moe_l * (pb.attention_layer + pb.moe_shared_layer) / tp
    sharded += n * pb.norms_layer + moe_l * pb.router_layer
    expert = moe_l * pb.moe_routed_layer / (ep * tp)
    root = 0.0
    if stage in ("first", "only"):
        root += pb.embedding / tp + pb.position
    if stage in ("last", "only"):
        sharded += pb.final_norm
        if pb.output:
            root += pb.output / tp
        if stage == "last" and (not pb.output or pb.mtp_layers):  # the embedding again: tied output, MTP input
            root += pb.embedding / tp
        extra = _mtp_params(pb, tp, ep)  # the MTP modules follow the output layer, on the last stage
        n, moe_l = n + pb.mtp_layers, moe_l + (pb.mtp_layers if pb.moe_layers else 0)
        sharded, expert = sharded + extra[0], expert + extra[1]
    sharded += root
    dense_layer = (pb.dense_layer_total / tp, 0.0) if dense_l else (0.0, 0.0)
    moe_layer = (((pb.attention_layer + pb.moe_shared_layer) / tp + pb.router_layer + pb.norms_layer,
                  pb.moe_routed_layer / (ep * tp)) if moe_l else (0.0, 0.0))
    largest = max(dense_layer, moe_layer, key=sum)
    return StageParams(dense=sharded, expert=expert, largest_layer=largest, layers=n, moe_layers=moe_l,
                       embedding=root)


def _mtp_params(pb: ParamBreakdown, tp: int, ep: int) -> tuple[float, float]:
    """(non-expert, expert) parameters of the multi-token prediction modules on one GPU of the last stage: each a
    layer of the model's last kind (MoE for a MoE model) plus its projection and norms (DeepSeek-V3 §2.2;
    Megatron-Core builds the modules on the last pipeline stage)."""
    mtp = pb.mtp_layers
    if not mtp:
        return 0.0, 0.0
    own = mtp * pb.mtp_module / tp
    if pb.moe_layers:
        layer = (pb.attention_layer + pb.moe_shared_layer) / tp + pb.norms_layer + pb.router_layer
        return own + mtp * layer, mtp * pb.moe_routed_layer / (ep * tp)
    return own + mtp * ((pb.attention_layer + pb.dense_mlp_layer) / tp + pb.norms_layer), 0.0


def model_stages(m: ModelSpec, pp: int) -> tuple[str, ...]:
    """``stages_of`` for a model: its layer count and, for a MoE model, its leading dense layers."""
    return stages_of(pp, m.layers, m.moe.dense_layers if m.moe is not None else 0)


def stages_of(pp: int, layers: int = 0, dense_layers: int = 0) -> tuple[str, ...]:
    """The pipeline stages whose load can be the largest: the first (embedding, most in-flight micro-batches)
    and the last (output layer); with more than two stages also the fullest middle one when it can hold more:
    an uneven split (the ends are a layer short, ``stage_layers``) or a MoE model's leading dense layers (the
    first stage's layers are lighter than a middle stage's all-MoE ones)."""
    if pp == 1:
        return ("only",)
    if pp > 2 and (layers % pp or dense_layers):
        return ("first", "middle", "last")
    return ("first", "last")


def total_params(m: ModelSpec) -> float:
    """Total parameter count (embeddings included)."""
    return param_breakdown(m).total
