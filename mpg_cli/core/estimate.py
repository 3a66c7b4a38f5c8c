"""From a scenario to a result: layout, FLOPs, throughput, time, GPU-hours, cost, energy, memory.

    time_to_train = hardware FLOPs / (GPUs × achieved FLOP/s) / goodput       (docs/formulas.md A6)

Achieved FLOP/s comes, in this order, from ``--tflops`` (hardware TFLOP/s per GPU, recompute
counted, as Narayanan et al. 2021 report it), ``--mfu`` (model FLOPs / dense peak), or the
step-time model (``perf.step_time``), optionally scaled by a calibration ratio.

The pieces live in their own modules: the request (``core.request``), the layout choice
(``core.layout_choice``), the assumptions as records (``core.assumptions``), and the wall time with the
range (``core.wall_time``). Their public names are importable from here too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from .assumptions import FLOPS_CONVENTION, Assumption, batch_assumption, calibration_assumption, energy_assumption
from .assumptions import layout_assumption, layout_notes, memory_assumption, mfu_assumption
from .assumptions import model_throughput_assumption, price_assumption, step_model_assumption, tflops_assumption
from .assumptions import tokens_assumption
from .flops import narayanan_eq4_time_s, token_flops
from .goodput import Goodput
from .intervals import Interval
from .layout_choice import choose_layout, run_search, searched_dimensions
from .memory import MemoryBreakdown
from .params import ParamBreakdown, param_breakdown
from .perf import StepTime, load_default_constants, step_time
from .request import Efficiency, EstimateError, Request, check_precision, hardware_of
from .search import Candidate, SearchResult, default_global_batch
from .specs import Layout
from .wall_time import days_at_confidence, goodput_of, interval_of, range_source

__all__ = ["SECONDS_PER_DAY", "TOKENS_PER_PARAM", "Assumption", "Check", "Efficiency", "EstimateError", "Request",
           "Result", "check_precision", "choose_layout", "days_at_confidence", "estimate", "evaluate", "hardware_of",
           "range_source", "run_search", "searched_dimensions", "with_gates"]

SECONDS_PER_DAY = 86400.0
TOKENS_PER_PARAM = 20.0  # Chinchilla (Hoffmann et al. 2022) Table 3, ≈20 tokens per parameter


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    limit: float
    passed: bool


@dataclass(frozen=True)
class Result:
    """One evaluated estimate. Frozen: a later step (gates, notes from input files) makes a new one with
    ``dataclasses.replace``."""

    request: Request
    layout: Layout
    layout_source: str  # 'given', 'searched', 'partly searched'
    seq_length: int
    global_batch: int
    tokens: float
    params_total: float
    params_active: float
    flops_per_token_model: float
    flops_per_token_hardware: float
    step_time_s: float
    tokens_per_second: float
    tflops_per_gpu: float
    model_tflops_per_gpu: float
    mfu: float
    hfu: float
    time_s: float
    gpu_hours: float
    cost_usd: Optional[float]
    price_usd_per_gpu_hour: Optional[float]
    energy_kwh: Optional[float]
    memory: MemoryBreakdown
    step: Optional[StepTime]
    peak_tflops: float
    assumptions: tuple[Assumption, ...] = ()  # records; mpg_cli.output.assumptions words them
    warnings: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()
    steady_time_s: float = 0.0  # steady-state training time (time_s is the wall time with goodput losses)
    goodput: Optional[Goodput] = None
    interval: Optional[Interval] = None

    @property
    def steady_days(self) -> float:
        return self.steady_time_s / SECONDS_PER_DAY

    @property
    def bf16_peak_tflops(self) -> float:
        """The GPU's dense 16-bit peak: the common yardstick for FP8 and bf16 runs."""
        return self.request.cluster.gpu.peak("bf16") or self.peak_tflops

    @property
    def mfu_bf16(self) -> float:
        """Model FLOPs utilisation against the dense bf16 peak (equals ``mfu`` for 16-bit training)."""
        return self.model_tflops_per_gpu / self.bf16_peak_tflops if self.bf16_peak_tflops else self.mfu

    @property
    def days(self) -> float:
        return self.time_s / SECONDS_PER_DAY

    @property
    def total_model_flops(self) -> float:
        return self.flops_per_token_model * self.tokens

    @property
    def total_hardware_flops(self) -> float:
        return self.flops_per_token_hardware * self.tokens

    @property
    def iterations(self) -> float:
        return self.tokens / (self.global_batch * self.seq_length)

    def step_breakdown_s(self) -> Optional[dict[str, float]]:
        """Where one iteration's time goes, scaled to the reported step time (a calibration scales it)."""
        if self.step is None:
            return None
        scale = self.step_time_s / self.step.total
        return {k: v * scale for k, v in self.step.as_dict().items()}


def estimate(req: Request) -> Result:
    """Run one estimate (see module docstring): choose the layout, then evaluate it."""
    seq = req.seq_length or req.model.seq_length
    cand, layout_source, res = choose_layout(req, seq)
    return evaluate(req, cand, layout_source, res)


def evaluate(req: Request, cand: Candidate, layout_source: str, res: Optional[SearchResult] = None) -> Result:
    """Time, cost, energy and throughput of one candidate layout."""
    m = req.model
    seq = req.seq_length or m.seq_length
    pb = param_breakdown(m)
    notes: list[Assumption] = []
    tokens = TOKENS_PER_PARAM * pb.total if req.tokens is None else req.tokens
    if req.tokens is None:
        notes.append(tokens_assumption(tokens, TOKENS_PER_PARAM))
    lay, gbs = cand.layout, cand.global_batch
    batch_notes, warnings = _batch_and_layout_notes(req, cand, layout_source, res, seq)
    notes += batch_notes
    tf = token_flops(m, seq)
    per_tok_model, per_tok_hw = tf.model, tf.hardware(lay.recompute)
    notes.append(FLOPS_CONVENTION)
    peak = (req.cluster.gpu.peak(req.precision) or 0.0) * 1e12
    if peak <= 0:
        hardware_of(req.cluster, req.precision)  # raises with the available precisions
    n = req.gpus
    tps, step, tps_notes, tps_warnings = _throughput(req, cand, seq, tokens, pb, per_tok_model, per_tok_hw, peak)
    notes += tps_notes
    warnings += tps_warnings
    steady_s = tokens / tps
    gp, gp_note = goodput_of(req, steady_s, pb.total, cand.memory.weights + cand.memory.optimizer)
    notes.append(gp_note)
    warnings.extend(gp.notes)
    time_s = gp.wall_s
    gpu_hours = n * time_s / 3600.0
    price, cost, energy, cost_notes = _cost_and_energy(req, time_s, gpu_hours)
    notes += cost_notes
    notes.append(memory_assumption(req, lay))
    warnings += _input_warnings(req, seq, pb)
    model_tflops = tps / n * per_tok_model
    hw_tflops = tps / n * per_tok_hw
    interval, range_note = interval_of(req, tps, time_s / SECONDS_PER_DAY, gpu_hours, cost, energy, gp)
    if range_note is not None:
        notes.append(range_note)
    return Result(
        request=req, layout=lay, layout_source=layout_source, seq_length=seq, global_batch=gbs, tokens=tokens,
        params_total=pb.total, params_active=pb.active, flops_per_token_model=per_tok_model,
        flops_per_token_hardware=per_tok_hw, step_time_s=gbs * seq / tps, tokens_per_second=tps,
        tflops_per_gpu=hw_tflops / 1e12, model_tflops_per_gpu=model_tflops / 1e12, mfu=model_tflops / peak,
        hfu=hw_tflops / peak, time_s=time_s, gpu_hours=gpu_hours, cost_usd=cost, price_usd_per_gpu_hour=price,
        energy_kwh=energy, memory=cand.memory, step=step, peak_tflops=peak / 1e12, assumptions=tuple(notes),
        warnings=tuple(warnings), steady_time_s=steady_s, goodput=gp, interval=interval,
    )


def _batch_and_layout_notes(req: Request, cand: Candidate, layout_source: str, res: Optional[SearchResult],
                            seq: int) -> tuple[list[Assumption], list[str]]:
    """The default global batch (and a warning when it had to change), the searched layout dimensions, an
    uneven pipeline split and default sequence parallelism."""
    m, lay, gbs = req.model, cand.layout, cand.global_batch
    notes: list[Assumption] = []
    warnings: list[str] = []
    if req.global_batch is None:
        default = default_global_batch(seq, m.batch_tokens)
        batch = batch_assumption(m, gbs, default, seq, req.gpus)
        notes.append(batch)
        if gbs != default:
            warnings.append(f"{req.gpus:,} GPUs use {gbs:,} sequences per step, not {batch.source} ({default:,}): its "
                            "layouts on this count are slower or none; give --global-batch, or a GPU count whose "
                            "data-parallel size divides the batch")
    if layout_source != "given" and res is not None:
        notes.append(layout_assumption(lay, searched_dimensions(req, lay), layout_source != "searched", res.evaluated))
    notes += layout_notes(m, lay, req.constraints.sequence_parallel is not None)
    return notes, warnings


def _throughput(req: Request, cand: Candidate, seq: int, tokens: float, pb: ParamBreakdown, per_tok_model: float,
                per_tok_hw: float, peak: float) -> tuple[float, Optional[StepTime], list[Assumption], list[str]]:
    """(tokens/s for the whole cluster, the step time when the model sets it, assumptions, warnings)."""
    eff, n, lay, m = req.efficiency, req.gpus, cand.layout, req.model
    if eff.source in ("tflops", "mfu") and eff.value is None:
        raise EstimateError(f"efficiency source {eff.source!r} needs a value", hint=f"pass --{eff.source} VALUE")
    if eff.source == "tflops":
        assert eff.value is not None
        achieved = eff.value * 1e12  # hardware FLOP/s per GPU
        approx = narayanan_eq4_time_s(tokens, pb.total, n, achieved, lay.recompute == "full") / SECONDS_PER_DAY
        return n * achieved / per_tok_hw, None, [tflops_assumption(eff.value, lay.recompute == "full", approx)], []
    if eff.source == "mfu":
        assert eff.value is not None
        hfu = eff.value * per_tok_hw / per_tok_model
        if hfu > 1.0:
            raise EstimateError(f"--mfu {eff.value:g} with recompute {lay.recompute} means {hfu:.0%} of the dense peak "
                                "in hardware FLOPs (recomputation included): impossible",
                                hint="lower --mfu, or set --recompute none/selective")
        return n * peak * eff.value / per_tok_model, None, [mfu_assumption(eff.value, req.precision)], []
    gbs = cand.global_batch
    step = cand.step or step_time(m, lay, seq, gbs, hardware_of(req.cluster, req.precision), req.perf, req.constants)
    tps = gbs * seq / step.total * eff.calibration_ratio
    consts = req.constants or load_default_constants()
    notes = [model_throughput_assumption(consts, m, req), step_model_assumption(req, lay)]
    warnings: list[str] = []
    gen = req.cluster.gpu.generation
    used = consts.fitted_generation(gen)
    if used != gen:
        warnings.append(f"no published run on a {gen} GPU calibrates the model: it uses the "
                        f"{used} curves (stand-in); treat the throughput as rough or calibrate it (mpg calibrate)")
    if eff.calibration_ratio != 1.0:
        notes.append(calibration_assumption(eff.calibration_ratio, eff.calibration_file))
    return tps, step, notes, warnings


def _cost_and_energy(req: Request, time_s: float,
                     gpu_hours: float) -> tuple[Optional[float], Optional[float], Optional[float], list[Assumption]]:
    """(price per GPU-hour, cost, energy in kWh, assumptions): the price from --price or a preset; energy
    from the GPUs' TDP × the cluster's PUE over the wall time."""
    notes: list[Assumption] = []
    price = req.price_usd_per_gpu_hour
    if price is None:
        price = req.cluster.price_usd_per_gpu_hour or req.cluster.gpu.price_usd_per_hour
        if price is not None:
            src = req.cluster if req.cluster.price_usd_per_gpu_hour else req.cluster.gpu
            notes.append(price_assumption(price, src.name, src.price_as_of or "undated"))
    cost = gpu_hours * price if price is not None else None
    tdp = req.cluster.gpu.tdp_watts
    pue = req.cluster.pue or 1.0
    energy = req.gpus * tdp * pue * time_s / 3.6e6 if tdp else None
    if tdp:
        notes.append(energy_assumption(tdp, pue, bool(req.cluster.pue)))
    return price, cost, energy, notes


def _input_warnings(req: Request, seq: int, pb: ParamBreakdown) -> list[str]:
    """Inputs the estimate takes but doubts: a context past learned positions, a missing precision peak,
    a parameter count far from the declared one."""
    m, gpu = req.model, req.cluster.gpu
    warnings = []
    if m.position_embedding == "learned" and seq > m.seq_length:
        warnings.append(f"{m.name} has learned position embeddings for {m.seq_length:,} tokens; --seq-length "
                        f"{seq:,} needs more (the parameter count assumes {m.seq_length:,})")
    if gpu.peak(req.precision) is not None and req.precision not in dict(gpu.peak_tflops):
        other = "fp16" if req.precision == "bf16" else "bf16"
        warnings.append(f"{gpu.name} has no {req.precision} peak in its preset: using its {other} peak; "
                        f"set --precision {other}")
    if m.declared_params and abs(pb.total / m.declared_params - 1) > 0.02:
        warnings.append(f"{m.name}: computed {pb.total:,.0f} parameters differs from the declared "
                        f"{m.declared_params:,.0f} by {pb.total / m.declared_params - 1:+.1%}")
    return warnings


def with_gates(r: Result, max_days: Optional[float] = None, max_gpu_hours: Optional[float] = None,
               max_cost: Optional[float] = None, require_fit: bool = False) -> Result:
    """The result with the requested gates evaluated (``checks``; all pass = exit 0)."""
    checks: list[Check] = []
    if max_days is not None:
        checks.append(Check("days", r.days, max_days, r.days <= max_days))
    if max_gpu_hours is not None:
        checks.append(Check("gpu_hours", r.gpu_hours, max_gpu_hours, r.gpu_hours <= max_gpu_hours))
    if max_cost is not None:
        if r.cost_usd is None:
            raise EstimateError("--max-cost needs a price: the presets have none for this GPU",
                                hint="give --price USD-per-GPU-hour")
        checks.append(Check("cost_usd", r.cost_usd, max_cost, r.cost_usd <= max_cost))
    if require_fit:
        checks.append(Check("memory_bytes_per_gpu", r.memory.total, r.memory.usable, r.memory.fits))
    return replace(r, checks=tuple(checks))
