"""What the step-time model needs of the cluster and of the framework."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

SHARDED_IMPLS = ("fsdp", "deepspeed")


@dataclass(frozen=True)
class Hardware:
    """The cluster as the step-time model sees it (SI units)."""

    peak_flops: float  # dense FLOP/s at the training precision (the GEMMs' peak)
    hbm_bytes_s: float
    generation: str
    gpus_per_node: int
    intra_bytes_s: float  # per GPU, one direction
    inter_bytes_s: float  # per GPU, one direction
    bf16_peak_flops: Optional[float] = None  # dense 16-bit peak: attention and MFU-vs-bf16 (None: peak_flops)
    fp8: bool = False  # GEMMs in FP8 (Transformer Engine); attention stays 16-bit
    intra_topology: str = "switch"  # 'switch' (NVSwitch: any pair gets full bandwidth) or 'mesh' (one link a pair)

    @property
    def attention_peak_flops(self) -> float:
        return self.bf16_peak_flops or self.peak_flops


@dataclass(frozen=True)
class PerfOptions:
    """Framework settings that change the step time (stated by the user or the source)."""

    grad_reduce_bytes: Optional[float] = None  # None: 4 for ZeRO 0-2 (Megatron fp32 grads), 2 for ZeRO-3/FSDP
    overlap_grad_reduce: bool = True
    tp_comm_overlap: bool = False
    sharded_impl: str = "fsdp"  # ZeRO-3 implementation: 'fsdp' (PyTorch FSDP / Megatron-FSDP) or 'deepspeed'
    a2a_overlap: float = 0.0  # fraction of expert all-to-all hidden behind compute (DualPipe-style schedules: ~1)
    node_limited_routing: Optional[int] = None  # max nodes a token's experts span (DeepSeek-V3: 4); None: no limit
    expert_imbalance: float = 1.0  # busiest expert's tokens / mean (1.0: force-balanced, as vendor benchmarks run)
    attention_kernel: str = "auto"  # 'fa2' (FlashAttention-2 class), 'fa3' (FA3/cuDNN), 'auto' (best for the GPU)
