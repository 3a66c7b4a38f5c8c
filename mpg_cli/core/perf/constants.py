"""The step-time model's constants: few, named, fitted once across published runs, stored as data.

The fitted values live in ``mpg_cli/data/perf_constants.json``, written by ``scripts/fit_perf.py`` with their
provenance (runs-file hash, loss, leave-one-source-out errors, date). Per-generation curves are tables keyed
by GPU generation: a new generation is one data entry. A generation with no published run borrows a stated
stand-in (``STAND_IN``) and the output says so.

Numbers that are *not* fitted are named here with their source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Mapping

BF16_BYTES = 2.0  # 16-bit activations and weights on the wire
FP32_BYTES = 4.0
# Adam step, memory bound: read fp32 master, grad, m, v (16 B), write master, m, v (12 B) and the 16-bit copy (2 B)
ADAM_STEP_BYTES_PER_PARAM = 30.0  # llm-analysis (cli99/llm-analysis analysis.py): optimizer time = state bytes / HBM bw
FP8_CAST_BYTES = 3.0  # Transformer Engine casts each GEMM operand: read 2 B (bf16), write 1 B (fp8)
# NCCL collectives (NCCL src/graph/tuning.cc, ring LL128 protocol): a base latency per collective plus one hop
# latency per ring step; a ring over n ranks takes n-1 steps (docs/formulas.md A4.6 uses 10-20 µs floors)
NCCL_BASE_LATENCY_S = 6.8e-6
NCCL_HOP_LATENCY_NVLINK_S = 1.9e-6
NCCL_HOP_LATENCY_NET_S = 4.0e-6
LINK_EFFICIENCY_INTRA = 0.80  # NVLink busbw/peak (docs/formulas.md A4.6: 370/450 GB/s in nccl-tests)
LINK_EFFICIENCY_INTER = 0.90  # IB/RoCE (docs/formulas.md A4.6, calculon presets)
HBM_EFFICIENCY = 0.80  # achieved fraction of HBM bandwidth for streaming element-wise kernels (STREAM-like)
# Tile quantization (NVIDIA Deep Learning Performance Guide, "Matrix Multiplication Background", §Tile Quantization):
# a GEMM's output is computed in whole thread-block tiles, so its two output dimensions are padded up to the tile
# and the padding is wasted work. The guide's tiles run from 64 to 256 wide; the large GEMMs of training use the
# 128- and 256-wide ones, so an output dimension of 128 or more is padded to a multiple of 128 (the smaller of
# those), and a narrower one gets a tile of its own width (kernels.tile_fill).
GEMM_TILE = 128
# FlashAttention backward runs 5 GEMM-like products against the forward's 2, with QKᵀ recomputed (Dao et al. 2022 §3.1)
FLASH_BACKWARD_RATIO = 2.5
MATERIALISED_BACKWARD_RATIO = 2.0  # plain batched GEMMs: backward = 2 × forward
# DeepSpeed ZeRO-3 (2021-era releases) gathers each parameter tensor on its own, synchronising the device, with
# small prefetch buckets: per-tensor collectives and hardly any overlap (DeepSpeed issue tracker, ZeRO-Infinity §6)
DEEPSPEED_TENSORS_PER_LAYER = 9  # q, k, v, o, up, (gate), down, two norms
DEEPSPEED_OVERLAP = 0.2

# FlashAttention-2 uses Ampere-era mma.sync instructions: on H100 it reaches ~35 % of the peak against up to
# ~70 % on A100 (Shah et al. 2024, "FlashAttention-3", §1). FA2-class attention on later generations therefore
# runs at half its Ampere fraction of the peak; it is not fitted separately.
FA2_LATER_VS_AMPERE = 0.5

# Softmax exponentials run on the special-function units (SFU/MUFU), not on the tensor cores, and flash attention
# computes one per score: forward, and again in the backward (P recomputed from the saved log-sum-exp). Shah et al.
# 2024 ("FlashAttention-3", §3): an H100 SXM5 does 3.9 T exp/s against 989 TFLOP/s of 16-bit matmul, so at head dim
# 128 the exponentials take about half the matmul time. A100: 108 SMs × 16 exp2 per clock (CUDA C++ Programming
# Guide, arithmetic-instruction throughput, compute capability 8.x) × 1.41 GHz = 2.44 T/s. B200 about 5 T/s and
# Blackwell Ultra (B300, GB300) twice the per-SM SFU rate, 10.7 T/s (NVIDIA technical blog "Inside NVIDIA Blackwell
# Ultra", 2025: "2× attention-layer acceleration"). Stored as exponentials per dense 16-bit FLOP so a GPU's own peak
# scales it; other generations use their stand-in's ratio.
SFU_EXP_PER_FLOP = {"ampere": 2.44e12 / 312e12, "hopper": 3.9e12 / 989e12, "blackwell": 5.0e12 / 2250e12,
                    "blackwell-ultra": 10.7e12 / 2250e12}

# A sanity cap on any derived kernel efficiency (an FP8 GEMM at bf16 efficiency × fp8_ratio, a stand-in attention
# kernel scaled by its generation's GEMM efficiency): no kernel sustains its full peak under clock and power limits.
MAX_KERNEL_EFFICIENCY = 0.98

# Generations with no published run in the validation set borrow a fitted curve (stated in the output).
STAND_IN = {"blackwell-ultra": "blackwell", "volta": "ampere", "ada": "ampere", "cdna2": "ampere", "cdna3": "hopper",
            "cdna4": "hopper", "gaudi": "hopper", "tpu": "hopper"}


@dataclass(frozen=True)
class PerfConstants:
    """Fitted constants of the step-time model (see scripts/fit_perf.py and the data file's provenance)."""

    gemm_eta: Mapping[str, float] = field(default_factory=lambda: {"ampere": 0.80, "hopper": 0.65, "blackwell": 0.6})
    # FP8 GEMM efficiency (fraction of the FP8 peak) per generation; a generation without an entry uses its
    # bf16 efficiency × fp8_ratio. The shipped fit has no entries: one ratio informed by every FP8 run. Fitted per
    # generation instead (Hopper, Blackwell, Blackwell Ultra) the cross-validated figures get worse (all runs
    # 7.5 -> 7.8 %, p90 21 -> 28 %, MoE 11.8 -> 20.5 %, Hopper 8.9 -> 13.4 %; scripts/fit_perf.py with those three)
    fp8_gemm_eta: Mapping[str, float] = field(default_factory=dict)
    fp8_ratio: float = 1.25
    # fused attention, keyed by generation and kernel class: '<gen>' is FlashAttention-2-class, '<gen>-fa3' the
    # generation-specific kernels (FlashAttention-3 / cuDNN fused attention on Hopper, cuDNN on Blackwell)
    attention_eta: Mapping[str, float] = field(default_factory=lambda: {"ampere": 0.4, "hopper-fa3": 0.45,
                                                                       "blackwell-fa3": 0.45})
    gemm_m0: float = 356.0  # tokens: M/(M+m0)
    gemm_k0: float = 9.47  # K/(K+k0) and N/(N+k0)
    elementwise_passes: float = 8.0  # bytes per token per layer forward = passes·2·(h_local + f_local)
    overlap: float = 0.8  # fraction of an overlappable window that hides communication
    provenance: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __hash__(self) -> int:  # tables are dicts: hash their items (constants key the kernel cache)
        cached = self.__dict__.get("_hash")
        if cached is None:  # computed once: the kernel cache hashes the constants on every lookup
            cached = hash((tuple(sorted(self.gemm_eta.items())), tuple(sorted(self.fp8_gemm_eta.items())),
                           tuple(sorted(self.attention_eta.items())), self.fp8_ratio, self.gemm_m0, self.gemm_k0,
                           self.elementwise_passes, self.overlap))
            object.__setattr__(self, "_hash", cached)
        return cached

    def fitted_generation(self, generation: str) -> str:
        """The generation whose curve ``generation`` uses: itself when fitted, else the first fitted generation
        along its stand-in chain (``STAND_IN``), else Hopper, else any fitted one (a fit without that family)."""
        gen, seen = generation, set()
        while gen not in self.gemm_eta and gen in STAND_IN and gen not in seen:
            seen.add(gen)
            gen = STAND_IN[gen]
        if gen in self.gemm_eta or not self.gemm_eta:
            return gen
        return "hopper" if "hopper" in self.gemm_eta else next(iter(self.gemm_eta))

    def eta(self, generation: str, fp8: bool = False) -> float:
        """Peak GEMM efficiency (fraction of the dense peak at the GEMM precision)."""
        gen = self.fitted_generation(generation)
        if fp8:
            if gen in self.fp8_gemm_eta:
                return self.fp8_gemm_eta[gen]
            return min(MAX_KERNEL_EFFICIENCY, self.gemm_eta[gen] * self.fp8_ratio)
        return self.gemm_eta[gen]

    def attention(self, generation: str, kernel: str = "auto") -> float:
        """Fused-attention efficiency (fraction of the dense bf16 peak) for a kernel class.

        ``kernel``: 'fa2' (FlashAttention-2 class), 'fa3' (the generation's own kernels: FA3/cuDNN), or 'auto'
        (the best the generation has). A (generation, kernel) with no published run takes the ratio to GEMM
        efficiency of the nearest fitted entry of its kernel class (along the stand-in chain, else the last
        fitted), times its own generation's GEMM efficiency, capped at ``MAX_KERNEL_EFFICIENCY`` (stated in the
        output as a stand-in).
        """
        key = self.attention_key(generation, kernel)
        if key in self.attention_eta:
            return self.attention_eta[key]
        gen = self.fitted_generation(generation)
        if not key.endswith("-fa3") and "ampere" in self.attention_eta:  # FA2 class beyond Ampere (sourced ratio)
            return self.attention_eta["ampere"] * FA2_LATER_VS_AMPERE
        fa3 = key.endswith("-fa3")
        refs = [k for k in self.attention_eta if k.endswith("-fa3") == fa3] or list(self.attention_eta)
        ref, near = refs[-1], gen
        while near in STAND_IN:  # the nearest fitted entry: blackwell-ultra -> blackwell, cdna3 -> hopper, ...
            near = STAND_IN[near]
            if (f"{near}-fa3" if fa3 else near) in self.attention_eta:
                ref = f"{near}-fa3" if fa3 else near
                break
        ref_gen = ref[: -len("-fa3")] if ref.endswith("-fa3") else ref
        ratio = self.attention_eta[ref] / self.gemm_eta.get(ref_gen, 0.6)
        return min(MAX_KERNEL_EFFICIENCY, self.gemm_eta.get(gen, 0.6) * ratio)

    def attention_key(self, generation: str, kernel: str = "auto") -> str:
        gen = self.fitted_generation(generation)
        if kernel == "fa2" or (kernel == "auto" and gen == "ampere"):
            return gen
        return f"{gen}-fa3" if gen != "ampere" else gen

    @property
    def count(self) -> int:
        """How many numbers are fitted (the overfitting check: about a dozen at most)."""
        return len(self.gemm_eta) + len(self.fp8_gemm_eta) + len(self.attention_eta) + 5

    def with_values(self, values: Mapping[str, float]) -> "PerfConstants":
        """A copy with flat names ('gemm_eta.hopper', 'gemm_m0', ...) replaced."""
        tables: dict[str, dict[str, float]] = {k: dict(getattr(self, k))
                                               for k in ("gemm_eta", "fp8_gemm_eta", "attention_eta")}
        scalars: dict[str, float] = {}
        for name, v in values.items():
            if "." in name:
                t, gen = name.split(".", 1)
                tables[t][gen] = float(v)
            else:
                scalars[name] = float(v)
        out = replace(self, gemm_eta=tables["gemm_eta"], fp8_gemm_eta=tables["fp8_gemm_eta"],
                      attention_eta=tables["attention_eta"])
        return replace(out, **scalars) if scalars else out  # type: ignore[arg-type]

    def flat(self) -> dict[str, float]:
        out = {f"{t}.{g}": v for t in ("gemm_eta", "fp8_gemm_eta", "attention_eta")
               for g, v in getattr(self, t).items()}
        out.update(fp8_ratio=self.fp8_ratio, gemm_m0=self.gemm_m0, gemm_k0=self.gemm_k0,
                   elementwise_passes=self.elementwise_passes, overlap=self.overlap)
        return out


def exp_per_flop(generation: str) -> float:
    """Softmax exponentials per dense 16-bit FLOP of ``generation`` (``SFU_EXP_PER_FLOP``, else its stand-in's)."""
    if generation in SFU_EXP_PER_FLOP:
        return SFU_EXP_PER_FLOP[generation]
    return SFU_EXP_PER_FLOP.get(STAND_IN.get(generation, "hopper"), SFU_EXP_PER_FLOP["hopper"])


def constants_from_document(doc: Mapping[str, Any]) -> PerfConstants:
    """Build constants from the data file's JSON document (values under 'constants')."""
    return PerfConstants(gemm_eta={}, fp8_gemm_eta={}, attention_eta={}).with_values(doc["constants"]) if doc else \
        PerfConstants()


@lru_cache(maxsize=1)
def load_default_constants() -> PerfConstants:
    """The shipped fitted constants (``mpg_cli/data/perf_constants.json``), with their provenance. Read by path,
    beside this package (``importlib.resources`` would import tempfile, zipfile and random: ~5 ms of start-up)."""
    from pathlib import Path

    try:
        text = (Path(__file__).resolve().parents[2] / "data" / "perf_constants.json").read_text(encoding="utf-8")
    except OSError:
        return PerfConstants()
    doc = json.loads(text)
    return replace(constants_from_document(doc), provenance=doc.get("provenance", {}))
