"""The typed request of the estimate family (estimate, compare, fit, plan, calibrate, report).

``EstimateArgs`` holds every estimate input with its one default: the flags (``options.py``) take their
defaults from it, a scenario file's missing keys fall back to it, and the memory- and step-time-model
defaults come from the core's own option records (``MemoryOptions``, ``PerfOptions``), so each default is
declared once. ``EstimateArgs.from_options`` reads the options a command received (after ``--from``
configs are merged in); ``scenario.build_requests`` is the one conversion to ``core.Request``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Optional

from .core.perf.hardware import PerfOptions
from .core.specs import MemoryOptions

_MEM = MemoryOptions()
_PERF = PerfOptions()


@dataclass(frozen=True)
class EstimateArgs:
    """One estimate's inputs as the user gave them (None: the default, the preset's value, or searched)."""

    # model and hardware
    model: Any = "gpt3-175b"  # a preset name or file, or a ModelSpec (mpg plan's candidates)
    cluster: str = "dgx-a100"
    gpu: Optional[str] = None
    gpus: Optional[str] = None  # one count or a list (64,128,256)
    presets: Optional[str] = None
    # training run
    tokens: Optional[str] = None
    seq_length: Optional[int] = None
    global_batch: Optional[int] = None
    precision: str = "bf16"
    goodput: Optional[float] = None
    price: Optional[float] = None
    failures_per_gpu_hour: Optional[float] = None
    storage_tb_s: Optional[float] = None
    async_checkpoint: bool = False
    restart_minutes: Optional[float] = None
    checkpoint_minutes: Optional[float] = None
    maintenance_fraction: float = 0.0
    interval: float = 0.8
    confidence: Optional[float] = None
    # parallel layout (None: searched)
    tp: Optional[int] = None
    pp: Optional[int] = None
    dp: Optional[int] = None
    ep: Optional[int] = None
    cp: Optional[int] = None
    micro_batch: Optional[int] = None
    virtual_stages: Optional[int] = None
    zero: Optional[int] = None
    recompute: Optional[str] = None
    sequence_parallel: Optional[bool] = None
    flash_attention: bool = True
    overlap_grad_reduce: bool = _PERF.overlap_grad_reduce
    tp_comm_overlap: bool = _PERF.tp_comm_overlap
    sharded_impl: str = _MEM.sharded_impl
    attention_kernel: str = _PERF.attention_kernel
    a2a_overlap: float = _PERF.a2a_overlap
    node_limited_routing: Optional[int] = None
    expert_imbalance: float = _PERF.expert_imbalance
    # efficiency
    tflops: Optional[float] = None
    mfu: Optional[float] = None
    calibration: Optional[str] = None
    # memory model
    optimizer: str = _MEM.optimizer
    reserved_gib: float = _MEM.reserved_gib
    headroom: float = _MEM.headroom_fraction
    loss_impl: str = _MEM.loss_impl
    # gates
    max_days: Optional[float] = None
    max_gpu_hours: Optional[float] = None
    max_cost: Optional[float] = None
    require_fit: bool = False

    @classmethod
    def from_options(cls, opts: dict[str, Any]) -> EstimateArgs:
        """The typed view of a command's options: Enum members become their values; a key that is absent, or
        None where the field has a non-None default, takes the default; other keys are not estimate inputs."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in opts:
                continue
            value = getattr(opts[f.name], "value", opts[f.name])
            if value is None and f.default is not None:
                continue
            values[f.name] = value
        return cls(**values)


ESTIMATE_DEFAULTS = EstimateArgs()


@dataclass(frozen=True)
class CompareArgs:
    """mpg compare's own inputs (what each scenario estimates is read as ``EstimateArgs``)."""

    models: tuple[str, ...] = ()  # repeated -m: the scenarios are the cross product of the repeated flags
    clusters: tuple[str, ...] = ()
    gpu_types: tuple[str, ...] = ()
    gpus: tuple[str, ...] = ()
    scenario_file: Optional[str] = None  # --scenarios: a YAML list of estimate inputs instead
    sort: Optional[str] = None
    baseline: Optional[str] = None
    against: Optional[str] = None  # --against: an earlier estimate/compare JSON document
    fail_on_increase: Optional[str] = None
    metrics: tuple[str, ...] = ()  # --metric (empty: days, gpu_hours, cost)
    allow_new: bool = False
    allow_missing: bool = False
    days: Optional[float] = None  # --days: solve each scenario for its GPU count


@dataclass(frozen=True)
class CalibrateArgs:
    """mpg calibrate's own inputs: the log or one measured figure, and where to save the calibration."""

    log: Optional[str] = None  # a training log ('-': standard input)
    step_time: Optional[float] = None  # measured seconds per iteration
    tokens_per_second: Optional[float] = None  # measured whole-job tokens/s
    tflops: Optional[float] = None  # measured hardware TFLOP/s per GPU
    mfu: Optional[float] = None  # measured model FLOPs utilisation
    warmup: Optional[int] = None  # leading log records to skip (None: automatic)
    log_format: Optional[str] = None  # force the log dialect
    save: Optional[str] = None
    force: bool = False

    def measured(self) -> dict[str, Optional[float]]:
        """The measured figures by name (None where not given)."""
        return {"step_time": self.step_time, "tokens_per_second": self.tokens_per_second, "tflops": self.tflops,
                "mfu": self.mfu}


@dataclass(frozen=True)
class ReportArgs:
    """mpg report's own inputs (the estimate inputs are ``EstimateArgs``)."""

    scenario_file: Optional[str] = None
    days: Optional[float] = None
    budget_gpu_hours: Optional[float] = None
    budget_usd: Optional[float] = None
    format: str = "html"
    output: Optional[str] = None
    quiet: bool = False
