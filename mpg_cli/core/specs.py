"""Frozen input specifications: model, GPU, cluster, layout and workload.

These are plain data. They are built by ``mpg_cli.presets`` (which validates
user input) or directly in Python; every formula in ``mpg_cli.core`` takes
them as arguments and nothing else. Units are in the field names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

PRECISIONS = ("bf16", "fp16", "fp8")
RECOMPUTE = ("none", "selective", "full")
FFN_TYPES = ("gelu", "swiglu")
GiB = 1024**3


@dataclass(frozen=True)
class MoESpec:
    """Mixture-of-experts FFN: routed experts, top-k, shared experts, leading dense layers."""

    experts: int
    top_k: int
    expert_ffn_hidden_size: int
    shared_experts: int = 0
    shared_expert_ffn_hidden_size: Optional[int] = None
    dense_layers: int = 0

    @property
    def shared_ffn(self) -> int:
        return self.shared_expert_ffn_hidden_size or self.expert_ffn_hidden_size


@dataclass(frozen=True)
class MLASpec:
    """DeepSeek-V2/V3 multi-head latent attention dimensions."""

    q_lora_rank: int
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int


@dataclass(frozen=True)
class ModelSpec:
    """Shape of a decoder-only transformer."""

    name: str
    layers: int
    hidden_size: int
    heads: int
    ffn_hidden_size: int
    vocab_size: int
    seq_length: int
    kv_heads: Optional[int] = None
    head_dim: Optional[int] = None
    ffn_type: str = "gelu"
    tied_embeddings: bool = False
    position_embedding: str = "rope"
    linear_biases: bool = False
    norm: str = "layernorm"
    dropout: bool = False  # dropout layers in training (GPT-2/3-era models: yes; Llama-era: none) — stores masks
    qkv_bias: bool = False  # biases on Q, K, V only (Qwen2); implied by linear_biases
    moe: Optional[MoESpec] = None
    mla: Optional[MLASpec] = None
    mtp_layers: int = 0  # multi-token prediction modules after the last layer (DeepSeek-V3 §2.2), on the last stage
    declared_params: Optional[float] = None
    batch_tokens: Optional[float] = None  # the published training batch (tokens per step), the default batch
    description: str = ""
    source: str = ""
    origin: str = ""
    seq_source: str = ""  # where seq_length came from (e.g. a config.json key), for the assumptions
    notes: tuple[str, ...] = ()  # approximations the model's source implies, for the assumptions

    @property
    def n_kv(self) -> int:
        return self.kv_heads or self.heads

    @property
    def d_head(self) -> int:
        return self.head_dim or self.hidden_size // self.heads

    @property
    def q_size(self) -> int:
        """Query projection width (a·d_h)."""
        return self.heads * self.d_head

    @property
    def kv_size(self) -> int:
        """Key (or value) projection width (n_kv·d_h)."""
        return self.n_kv * self.d_head

    @property
    def moe_layers(self) -> int:
        return 0 if self.moe is None else self.layers - self.moe.dense_layers

    @property
    def dense_layers(self) -> int:
        return self.layers - self.moe_layers


@dataclass(frozen=True)
class GpuSpec:
    """One accelerator: dense peaks per dtype, memory, bandwidth, power."""

    name: str
    memory_gib: float
    peak_tflops: tuple[tuple[str, float], ...]
    memory_bandwidth_tb_s: float
    tdp_watts: float
    generation: str = "hopper"
    intra_node_gb_s: Optional[float] = None
    price_usd_per_hour: Optional[float] = None
    price_as_of: str = ""
    price_source: str = ""
    description: str = ""
    source: str = ""
    origin: str = ""

    def peak(self, precision: str) -> Optional[float]:
        """Dense peak TFLOP/s for ``precision`` (fp16 falls back to bf16 and back)."""
        table = dict(self.peak_tflops)
        if precision in table:
            return table[precision]
        alias = {"bf16": "fp16", "fp16": "bf16"}.get(precision)
        return table.get(alias) if alias else None


@dataclass(frozen=True)
class ClusterSpec:
    """A cluster of identical nodes: the GPU, node size and link bandwidths."""

    name: str
    gpu: GpuSpec
    gpus_per_node: int
    nodes: int
    intra_node_gb_s: float
    inter_node_gb_s: float
    price_usd_per_gpu_hour: Optional[float] = None
    price_as_of: str = ""
    price_source: str = ""
    pue: Optional[float] = None
    intra_node_topology: str = "switch"  # 'switch' (NVSwitch) or 'mesh' (one link per GPU pair, e.g. AMD xGMI)
    failures_per_gpu_hour: Optional[float] = None  # job interruptions per GPU-hour (None: core.goodput default)
    storage_tb_s: Optional[float] = None  # checkpoint storage bandwidth, TB/s (None: core.goodput default)
    description: str = ""
    source: str = ""
    origin: str = ""

    @property
    def total_gpus(self) -> int:
        return self.gpus_per_node * self.nodes


@dataclass(frozen=True)
class Layout:
    """A parallel layout. ``dp`` is derived by the caller (gpus / (tp·pp·cp))."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: int = 1
    cp: int = 1
    micro_batch: int = 1
    virtual_stages: int = 1
    zero: int = 1
    recompute: str = "selective"
    sequence_parallel: bool = True
    flash_attention: bool = True  # FlashAttention-style fused attention (Dao et al. 2022)

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp * self.cp


LOSS_IMPLS = {"fused": 4.0, "fp32": 12.0}  # logits/cross-entropy bytes per token per vocabulary entry (÷ tp)
SHARDED_IMPLS = ("fsdp", "deepspeed")


@dataclass(frozen=True)
class MemoryOptions:
    """Named memory-model defaults (docs/formulas.md B1, B3); every one is overridable.

    One safety margin: ``headroom_fraction`` of capacity kept free for allocator fragmentation. The
    CUDA context and NCCL buffers (``reserved_gib``) are memory in use, shown as their own line.
    """

    optimizer: str = "adam"  # adam | adam8bit
    reserved_gib: float = 1.5  # CUDA context + NCCL buffers: the low end of docs/formulas.md B3's 1.5-4 GiB
    headroom_fraction: float = 0.05  # mpg's choice for the one margin, fragmentation (docs/formulas.md B3)
    activation_buffer: float = 1.0  # multiplier on activations (Megatron theoretical_memory_usage.py uses 1.05)
    loss_impl: str = "fused"  # 'fused' cross-entropy (~4 B per logit) or an fp32 softmax (~12 B)
    sharded_impl: str = "fsdp"  # ZeRO-3 accounting: PyTorch FSDP (16 B/param sharded) or DeepSpeed (18 B/param)
    grad_reduce_bytes: Optional[float] = None  # FSDP's reduce dtype copy (None: bf16 reduce, no copy)
