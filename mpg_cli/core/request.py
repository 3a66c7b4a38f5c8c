"""What one estimate is asked: the request, where its throughput comes from, and the GPU it runs on.

A request is validated once, when it is built: its precision must be one the GPU has a peak for
(``check_precision``). ``hardware_of`` is the step-time model's view of the request's cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .goodput import GoodputOptions
from .intervals import DEFAULT_LEVEL
from .perf import Hardware, PerfConstants, PerfOptions
from .search import Constraints
from .specs import ClusterSpec, GpuSpec, MemoryOptions, ModelSpec
from ..errors import InputError


class EstimateError(InputError):
    """A scenario the core cannot evaluate: part of the MpgError family (exit 2 at the CLI boundary).

    ``mpg_cli.errors`` imports only the standard library, so the core stays free of typer/rich/yaml.
    """


@dataclass(frozen=True)
class Efficiency:
    """Where achieved throughput comes from: 'tflops', 'mfu' or 'model' (optionally calibrated)."""

    source: str = "model"
    value: Optional[float] = None  # TFLOP/s per GPU for 'tflops', fraction for 'mfu'
    calibration_ratio: float = 1.0  # measured / predicted throughput (mpg calibrate)
    calibration_file: str = ""


@dataclass(frozen=True)
class Request:
    """Everything one estimate needs, as the user gave it (None = default or search)."""

    model: ModelSpec
    cluster: ClusterSpec
    gpus: int
    tokens: Optional[float] = None
    seq_length: Optional[int] = None
    global_batch: Optional[int] = None
    precision: str = "bf16"
    constraints: Constraints = Constraints()
    efficiency: Efficiency = Efficiency()
    price_usd_per_gpu_hour: Optional[float] = None
    goodput: Optional[float] = None  # a fixed fraction (--goodput); None: the goodput model (core.goodput)
    goodput_options: GoodputOptions = GoodputOptions()
    interval_level: float = DEFAULT_LEVEL
    residuals: Optional[tuple[float, ...]] = None  # log errors for the range (None: the class's CV residuals)
    residual_basis: str = ""  # what ``residuals`` are, in words
    memory: MemoryOptions = MemoryOptions()
    perf: PerfOptions = PerfOptions()
    constants: Optional[PerfConstants] = None  # None: the shipped fitted constants

    def __post_init__(self) -> None:
        """Validated once, when built: the precision must be one the GPU has a peak for (names --precision)."""
        check_precision(self.cluster.gpu, self.precision)


def check_precision(gpu: GpuSpec, precision: str) -> float:
    """The GPU's dense peak TFLOP/s at ``precision``; an ``EstimateError`` naming --precision and the GPU if none."""
    peak = gpu.peak(precision)
    if peak is None:
        have = ", ".join(k for k, _ in gpu.peak_tflops)
        raise EstimateError(f"--precision {precision}: the {gpu.name} has no {precision} peak in its preset (it has: {have})",
                            hint=f"use --precision with one of: {have}")
    return peak


def hardware_of(cluster: ClusterSpec, precision: str) -> Hardware:
    """The step-time model's view of a cluster at a precision."""
    gpu = cluster.gpu
    peak = check_precision(gpu, precision)
    bf16 = gpu.peak("bf16") or peak
    return Hardware(peak_flops=peak * 1e12, hbm_bytes_s=gpu.memory_bandwidth_tb_s * 1e12, generation=gpu.generation,
                    gpus_per_node=cluster.gpus_per_node, intra_bytes_s=cluster.intra_node_gb_s * 1e9,
                    inter_bytes_s=cluster.inter_node_gb_s * 1e9, bf16_peak_flops=bf16 * 1e12,
                    fp8=precision == "fp8", intra_topology=cluster.intra_node_topology)
