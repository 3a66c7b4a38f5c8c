"""Shared CLI options, defined once as Typer ``Annotated`` aliases and grouped.

``shared(*groups)`` adds a group's options to a command's signature, so ``estimate``, ``fit``
and ``compare`` take the same flags with the same names, help and checks, and each command
body receives them as keyword arguments. The option names are a contract for scripts.
"""

from __future__ import annotations

import inspect
from enum import Enum
from typing import Annotated, Any, Callable, Optional

import typer

from .args import ESTIMATE_DEFAULTS


class Fmt(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class Recompute(str, Enum):
    none = "none"
    selective = "selective"
    full = "full"


class Precision(str, Enum):
    bf16 = "bf16"
    fp16 = "fp16"
    fp8 = "fp8"


class Optimizer(str, Enum):
    adam = "adam"
    adam8bit = "adam8bit"


class ShardedImpl(str, Enum):
    fsdp = "fsdp"
    deepspeed = "deepspeed"


class LossImpl(str, Enum):
    fused = "fused"
    fp32 = "fp32"


class AttentionKernel(str, Enum):
    auto = "auto"
    fa2 = "fa2"
    fa3 = "fa3"


H_MODEL = "Model and hardware"
H_LAYOUT = "Parallel layout (omitted dimensions are searched)"
H_RUN = "Training run"
H_EFF = "Efficiency (default: the step-time model)"
H_MEM = "Memory-model defaults"
H_OUT = "Output"
H_GATE = "Gates (exit 1 when one fails)"
H_PLAN = "Planning (solve for the unknown)"

def _complete(kind: str) -> Callable[[str], list[str]]:
    def names(incomplete: str) -> list[str]:
        from .presets import complete

        return complete(kind)(incomplete)

    return names


ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Model preset name, a YAML file, a Hugging Face config.json or a model directory holding one.", rich_help_panel=H_MODEL, autocompletion=_complete("models"))]
ClusterOpt = Annotated[str, typer.Option("--cluster", "-c", help="Cluster preset name or YAML file.", rich_help_panel=H_MODEL, autocompletion=_complete("clusters"))]
GpuOpt = Annotated[Optional[str], typer.Option("--gpu", help="GPU preset or YAML file; overrides the cluster's GPU type.", rich_help_panel=H_MODEL, autocompletion=_complete("gpus"))]
GpusOpt = Annotated[Optional[str], typer.Option("--gpus", "-n", help="GPU count (default: the whole cluster); a list such as 64,128,256 gives a scaling table.", rich_help_panel=H_MODEL)]
PresetsOpt = Annotated[Optional[str], typer.Option("--presets", help="Extra preset directory (models/, gpus/, clusters/); overrides built-ins. Also $MPG_PRESETS.", rich_help_panel=H_MODEL)]

TokensOpt = Annotated[Optional[str], typer.Option("--tokens", help="Training tokens: 300e9, 300B, 1.4T, or 'chinchilla' (20 per parameter, the default).", rich_help_panel=H_RUN)]
SeqOpt = Annotated[Optional[int], typer.Option("--seq-length", min=1, max=10_000_000, help="Sequence length (default: the model's).", rich_help_panel=H_RUN)]
GbsOpt = Annotated[Optional[int], typer.Option("--global-batch", min=1, max=100_000_000, help="Global batch in sequences (default: ~4M tokens).", rich_help_panel=H_RUN)]
PrecisionOpt = Annotated[Precision, typer.Option("--precision", help="Training precision (dense peak used for MFU).", rich_help_panel=H_RUN)]
GoodputOpt = Annotated[Optional[float], typer.Option("--goodput", help="Fix the fraction of wall time that trains (default: modelled from failures, checkpoints and restarts).", rich_help_panel=H_RUN)]
H_GOOD = "Goodput and ranges (failures, checkpoints, restarts; uncertainty)"
FailRateOpt = Annotated[Optional[float], typer.Option("--failures-per-gpu-hour", help="Job interruptions per GPU-hour (default: the cluster preset's, else Llama 3's 419 in 54 days on 16,384 GPUs ≈ 2e-5).", rich_help_panel=H_GOOD)]
StorageOpt = Annotated[Optional[float], typer.Option("--storage-tb-s", help="Checkpoint storage bandwidth, TB/s (default: the cluster preset's, else Llama 3's 2 TB/s sustained).", rich_help_panel=H_GOOD)]
AsyncCkptOpt = Annotated[bool, typer.Option("--async-checkpoint/--no-async-checkpoint", help="Asynchronous checkpoints: only the device-to-host copy blocks training.", rich_help_panel=H_GOOD)]
RestartOpt = Annotated[Optional[float], typer.Option("--restart-minutes", help="Detection, rescheduling and start after an interruption, minutes (default 10; the checkpoint reload is added).", rich_help_panel=H_GOOD)]
CkptIntervalOpt = Annotated[Optional[float], typer.Option("--checkpoint-minutes", help="Training minutes between checkpoints (default: the Young/Daly optimum √(2·write·MTBF)).", rich_help_panel=H_GOOD)]
MaintOpt = Annotated[float, typer.Option("--maintenance-fraction", help="Fraction of wall time for planned maintenance and evaluation (default 0).", rich_help_panel=H_GOOD)]
IntervalOpt = Annotated[float, typer.Option("--interval", help="Level of the uncertainty range (default 0.8: the range a new run's throughput falls in 80 % of the time, calibrated on the cross-validated errors of the published runs, one source family left out at a time).", rich_help_panel=H_GOOD)]
ConfidenceOpt = Annotated[Optional[float], typer.Option("--confidence", help="With --days or a budget: solve so the run finishes within it with this probability (e.g. 0.9).", rich_help_panel=H_GOOD)]
PriceOpt = Annotated[Optional[float], typer.Option("--price", help="USD per GPU-hour (default: the preset's dated price, if any).", rich_help_panel=H_RUN)]

MicroOpt = Annotated[Optional[int], typer.Option("--micro-batch", min=1, max=1_000_000, help="Micro-batch size (sequences).", rich_help_panel=H_LAYOUT)]
TpOpt = Annotated[Optional[int], typer.Option("--tp", min=1, max=1_000_000, help="Tensor-parallel size.", rich_help_panel=H_LAYOUT)]
PpOpt = Annotated[Optional[int], typer.Option("--pp", min=1, max=1_000_000, help="Pipeline-parallel size.", rich_help_panel=H_LAYOUT)]
DpOpt = Annotated[Optional[int], typer.Option("--dp", min=1, max=10_000_000, help="Data-parallel size (derived: gpus/(tp·pp·cp)).", rich_help_panel=H_LAYOUT)]
EpOpt = Annotated[Optional[int], typer.Option("--ep", min=1, max=1_000_000, help="Expert-parallel size (MoE).", rich_help_panel=H_LAYOUT)]
CpOpt = Annotated[Optional[int], typer.Option("--cp", min=1, max=1_000_000, help="Context-parallel size.", rich_help_panel=H_LAYOUT)]
VirtualOpt = Annotated[Optional[int], typer.Option("--virtual-stages", min=1, max=1_000_000, help="Interleaved pipeline chunks per GPU.", rich_help_panel=H_LAYOUT)]
ZeroOpt = Annotated[Optional[int], typer.Option("--zero", min=0, max=3, help="ZeRO stage 0-3 (1 = distributed optimizer, 3 = FSDP).", rich_help_panel=H_LAYOUT)]
RecomputeOpt = Annotated[Optional[Recompute], typer.Option("--recompute", help="Activation recomputation.", rich_help_panel=H_LAYOUT)]
SpOpt = Annotated[Optional[bool], typer.Option("--sequence-parallel/--no-sequence-parallel", help="Sequence parallelism (default: on when tp > 1).", rich_help_panel=H_LAYOUT, show_default=False)]
FlashOpt = Annotated[bool, typer.Option("--flash-attention/--no-flash-attention", help="Fused FlashAttention-style attention.", rich_help_panel=H_LAYOUT)]
OverlapDpOpt = Annotated[bool, typer.Option("--overlap-grad-reduce/--no-overlap-grad-reduce", help="Gradient reduction overlapped with the last micro-batch's backward (Megatron --overlap-grad-reduce, PyTorch DDP).", rich_help_panel=H_LAYOUT)]
OverlapTpOpt = Annotated[bool, typer.Option("--tp-comm-overlap/--no-tp-comm-overlap", help="Tensor-parallel communication overlapped with GEMMs (Megatron/Transformer Engine --tp-comm-overlap).", rich_help_panel=H_LAYOUT)]

TflopsOpt = Annotated[Optional[float], typer.Option("--tflops", help="Achieved hardware TFLOP/s per GPU (recompute counted, as Narayanan et al. 2021 report it).", rich_help_panel=H_EFF)]
MfuOpt = Annotated[Optional[float], typer.Option("--mfu", help="Model FLOPs utilisation, 0-1 (e.g. 0.45).", rich_help_panel=H_EFF)]
CalibOpt = Annotated[Optional[str], typer.Option("--calibration", help="Calibration file from 'mpg calibrate --save': scales the step-time model.", rich_help_panel=H_EFF)]

OptimOpt = Annotated[Optimizer, typer.Option("--optimizer", help="Optimizer states: adam (12 B/param with fp32 master) or adam8bit (6).", rich_help_panel=H_MEM)]
ReservedOpt = Annotated[float, typer.Option("--reserved-gib", help="Per-GPU CUDA context + NCCL reserve, GiB.", rich_help_panel=H_MEM)]
HeadroomOpt = Annotated[float, typer.Option("--headroom", help="Fraction of GPU memory kept free for allocator fragmentation.", rich_help_panel=H_MEM)]

FormatOpt = Annotated[Fmt, typer.Option("--format", "-f", help="Output format.", rich_help_panel=H_OUT)]
def _set_verbose(value: bool) -> bool:
    from .safeio import set_verbose

    set_verbose(value)
    return value


VerboseOpt = Annotated[bool, typer.Option("--verbose", help="Say on stderr which file --output/--save created or replaced.", rich_help_panel="Output", callback=_set_verbose)]
OneGpusOpt = Annotated[Optional[str], typer.Option("--gpus", "-n", help="GPU count, one number (default: the whole cluster).", rich_help_panel="Model and hardware")]
OutputOpt = Annotated[Optional[str], typer.Option("--output", "-o", help="Write the output to FILE (atomically) instead of stdout.", rich_help_panel=H_OUT)]
FromOpt = Annotated[Optional[list[str]], typer.Option("--from", help="Training config to read the model, layout, batch, precision, tokens and GPUs from: a Megatron-LM script or argument list, torchtitan TOML, llm-foundry YAML, DeepSpeed JSON, NeMo YAML, or a Hugging Face config.json/model directory; repeat to combine (flags override).", rich_help_panel="Training config", show_default=False, metavar="FILE")]
FromFormatOpt = Annotated[Optional[str], typer.Option("--from-format", help="Force the --from format: megatron, torchtitan, composer, deepspeed, nemo or hf (default: detected).", rich_help_panel="Training config", metavar="FORMAT")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No warnings on stderr.", rich_help_panel=H_OUT)]

MaxDaysOpt = Annotated[Optional[float], typer.Option("--max-days", help="Fail when training takes more days.", rich_help_panel=H_GATE)]
MaxGpuHOpt = Annotated[Optional[float], typer.Option("--max-gpu-hours", help="Fail above this many GPU-hours.", rich_help_panel=H_GATE)]
MaxCostOpt = Annotated[Optional[float], typer.Option("--max-cost", help="Fail above this cost in USD.", rich_help_panel=H_GATE)]
ShardedOpt = Annotated[ShardedImpl, typer.Option("--sharded-impl", help="ZeRO-3 implementation: fsdp (PyTorch FSDP / Megatron-FSDP: 16 B/param sharded, prefetch and overlap) or deepspeed (18 B/param, per-tensor gathers, little overlap).", rich_help_panel=H_LAYOUT)]
AttnKernelOpt = Annotated[AttentionKernel, typer.Option("--attention-kernel", help="Fused attention kernel class: fa2 (FlashAttention-2), fa3 (FlashAttention-3 / cuDNN), auto (the best the GPU has).", rich_help_panel=H_LAYOUT)]
A2aOverlapOpt = Annotated[float, typer.Option("--a2a-overlap", min=0.0, max=1.0, help="Fraction of the MoE all-to-all hidden behind compute (DualPipe-style schedules: ~1; default 0).", rich_help_panel=H_LAYOUT)]
NodeLimitOpt = Annotated[Optional[int], typer.Option("--node-limited-routing", min=1, help="MoE: each token's experts on at most this many nodes (DeepSeek-V3: 4).", rich_help_panel=H_LAYOUT)]
ImbalanceOpt = Annotated[float, typer.Option("--expert-imbalance", min=1.0, help="MoE: busiest expert's tokens / the mean (1.0 = balanced, as vendor benchmarks force).", rich_help_panel=H_LAYOUT)]
LossOpt = Annotated[LossImpl, typer.Option("--loss-impl", help="Cross-entropy memory: fused (~4 B per logit) or fp32 (an fp32 softmax, ~12 B).", rich_help_panel=H_MEM)]
RequireFitOpt = Annotated[bool, typer.Option("--require-fit", help="Fail when the model does not fit in GPU memory.", rich_help_panel=H_GATE)]


def _p(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


D = ESTIMATE_DEFAULTS  # each default is declared once, in mpg_cli/args.py (and the core's option records)


def _d(name: str) -> inspect.Parameter:
    """An option of the estimate family, its default taken from ``EstimateArgs``."""
    return _p(name, _ANNOTATIONS[name], getattr(D, name))


_ANNOTATIONS: dict[str, Any] = {
    "model": ModelOpt, "cluster": ClusterOpt, "gpu": GpuOpt, "gpus": GpusOpt, "presets": PresetsOpt,
    "tokens": TokensOpt, "seq_length": SeqOpt, "global_batch": GbsOpt, "precision": PrecisionOpt,
    "goodput": GoodputOpt, "price": PriceOpt, "failures_per_gpu_hour": FailRateOpt, "storage_tb_s": StorageOpt,
    "async_checkpoint": AsyncCkptOpt, "restart_minutes": RestartOpt, "checkpoint_minutes": CkptIntervalOpt,
    "maintenance_fraction": MaintOpt, "interval": IntervalOpt, "confidence": ConfidenceOpt,
    "tp": TpOpt, "pp": PpOpt, "dp": DpOpt, "ep": EpOpt, "cp": CpOpt, "micro_batch": MicroOpt,
    "virtual_stages": VirtualOpt, "zero": ZeroOpt, "recompute": RecomputeOpt, "sequence_parallel": SpOpt,
    "flash_attention": FlashOpt, "overlap_grad_reduce": OverlapDpOpt, "tp_comm_overlap": OverlapTpOpt,
    "sharded_impl": ShardedOpt, "attention_kernel": AttnKernelOpt, "a2a_overlap": A2aOverlapOpt,
    "node_limited_routing": NodeLimitOpt, "expert_imbalance": ImbalanceOpt,
    "tflops": TflopsOpt, "mfu": MfuOpt, "calibration": CalibOpt,
    "optimizer": OptimOpt, "reserved_gib": ReservedOpt, "headroom": HeadroomOpt, "loss_impl": LossOpt,
    "max_days": MaxDaysOpt, "max_gpu_hours": MaxGpuHOpt, "max_cost": MaxCostOpt, "require_fit": RequireFitOpt,
}
_ENUMS = {"precision": Precision, "recompute": Recompute, "sharded_impl": ShardedImpl,
          "attention_kernel": AttentionKernel, "optimizer": Optimizer, "loss_impl": LossImpl}


def _enum_default(name: str) -> inspect.Parameter:
    """An Enum-typed option: the default is the member whose value ``EstimateArgs`` declares."""
    return _p(name, _ANNOTATIONS[name], _ENUMS[name](getattr(D, name)))


def _g(*names: str) -> list[inspect.Parameter]:
    return [_enum_default(n) if n in _ENUMS and getattr(D, n) is not None else _d(n) for n in names]


GROUPS: dict[str, list[inspect.Parameter]] = {
    "model": _g("model", "cluster", "gpu", "gpus", "presets"),
    "run": _g("tokens", "seq_length", "global_batch", "precision", "goodput", "price", "failures_per_gpu_hour",
              "storage_tb_s", "async_checkpoint", "restart_minutes", "checkpoint_minutes", "maintenance_fraction",
              "interval"),
    "confidence": _g("confidence"),  # estimate and compare: with --days or a budget
    "layout": _g("tp", "pp", "dp", "ep", "cp", "micro_batch", "virtual_stages", "zero", "recompute",
                 "sequence_parallel", "flash_attention", "overlap_grad_reduce", "tp_comm_overlap", "sharded_impl",
                 "attention_kernel", "a2a_overlap", "node_limited_routing", "expert_imbalance"),
    "efficiency": _g("tflops", "mfu", "calibration"),
    "memory": _g("optimizer", "reserved_gib", "headroom", "loss_impl"),
    "inputs": [_p("from_", FromOpt, None), _p("from_format", FromFormatOpt, None)],
    "output": [_p("format", FormatOpt, Fmt.table), _p("output", OutputOpt, None), _p("quiet", QuietOpt, False),
               _p("verbose", VerboseOpt, False)],
    "gates": _g("max_days", "max_gpu_hours", "max_cost", "require_fit"),
}


def shared(*groups: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the named option groups to a command's signature (after its own parameters)."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn, eval_str=True)
        own = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        names = {p.name for p in own}  # a command's own definition of a shared option wins (its own help)
        extra = [p for g in groups for p in GROUPS[g] if p.name not in names]
        fn.__signature__ = sig.replace(parameters=own + extra)  # type: ignore[attr-defined]
        fn.__annotations__ = {**fn.__annotations__, **{p.name: p.annotation for p in extra}}
        return fn

    return deco


ESTIMATE_GROUPS = ("model", "inputs", "run", "confidence", "layout", "efficiency", "memory", "output", "gates")


def explicit_options() -> set[str]:
    """Names of the options the user gave (command line or environment), not left at their defaults."""
    try:  # Typer >= 0.29 vendors Click as typer._click; older Typer uses Click itself
        from typer._click.globals import get_current_context  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - depends on the installed Typer
        from click import get_current_context  # type: ignore[no-redef,import-not-found,unused-ignore]

    ctx = get_current_context(silent=True)
    if ctx is None:
        return set()
    out = set()
    for name in ctx.params:
        src = ctx.get_parameter_source(name)
        if src is not None and src.name in ("COMMANDLINE", "ENVIRONMENT"):
            out.add(name)
    return out


class ReportFmt(str, Enum):
    """mpg report's formats: the HTML page, or the JSON data behind its charts."""

    html = "html"
    json = "json"
