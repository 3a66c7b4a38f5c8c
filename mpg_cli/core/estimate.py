"""From a scenario to a result: layout, FLOPs, throughput, time, GPU-hours, cost, energy, memory.

    time_to_train = hardware FLOPs / (GPUs × achieved FLOP/s) / goodput       (docs/formulas.md A6)

Achieved FLOP/s comes, in this order, from ``--tflops`` (hardware TFLOP/s per GPU, recompute
counted, as Narayanan et al. 2021 report it), ``--mfu`` (model FLOPs / dense peak), or the
step-time model (``perf.step_time``), optionally scaled by a calibration ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from .flops import narayanan_eq4_time_s, token_flops
from .goodput import DEFAULTS_SOURCES, FAILURES_PER_GPU_HOUR, RESTART_S, STORAGE_TB_S, Goodput, GoodputOptions
from .goodput import checkpoint_bytes, fixed_goodput, model_goodput
from .intervals import (DEFAULT_LEVEL, Interval, RangeModel, goodput_only, log_error_bounds, propagate, range_model,
                        records_from, upper_log_error)
from .memory import OPTIMIZER_BYTES, MemoryBreakdown, grad_bytes
from .params import param_breakdown, stage_layers
from .perf import Hardware, PerfConstants, PerfOptions, StepTime, load_default_constants, step_time
from .search import RECOMPUTE_ORDER, Candidate, Constraints, SearchResult, default_global_batch, search
from .specs import LOSS_IMPLS, ClusterSpec, GpuSpec, Layout, MemoryOptions, ModelSpec
from ..errors import InputError

SECONDS_PER_DAY = 86400.0
TOKENS_PER_PARAM = 20.0  # Chinchilla (Hoffmann et al. 2022) Table 3, ≈20 tokens per parameter


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


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    limit: float
    passed: bool


@dataclass
class Result:
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
    assumptions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
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


def accuracy_note(consts: PerfConstants, m: ModelSpec, req: Request) -> str:
    """How well the model predicts runs of this class it was not fitted on (leave-one-source-out, mpg validate)."""
    prov = consts.provenance or {}
    cv = prov.get("cross_validated", {})
    cls = "moe" if m.moe is not None else ("dense-fp8" if req.precision == "fp8" else "dense-bf16")
    gen = req.cluster.gpu.generation
    parts = [f"{k} {cv[k]['median_abs_error']:.0%}" for k in (cls, gen) if k in cv]
    fitted = f"fitted on {prov['runs']} published runs" if "runs" in prov else "fitted on published runs"
    if not parts:
        return f"({fitted}; see mpg validate)"
    return f"({fitted}; median error on unseen sources: {', '.join(parts)}; see mpg validate)"


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


def run_search(req: Request, gpus: Optional[int] = None, keep: int = 50, require_fit: bool = True) -> SearchResult:
    """The layout search for a request (optionally at another GPU count)."""
    seq = req.seq_length or req.model.seq_length
    return search(req.model, hardware_of(req.cluster, req.precision), gpus or req.gpus, seq, req.global_batch,
                  req.precision, req.cluster.gpu.memory_gib, req.constraints, req.memory, req.perf, req.constants,
                  keep=keep, require_fit=require_fit)


def choose_layout(req: Request, seq: int) -> tuple[Candidate, str, SearchResult]:
    """The layout to use: the fastest fitting one under the user's constraints (or the given one).

    When nothing fits, the layout that comes closest (least memory) is returned; the result says it does not fit.
    With the throughput given (--tflops, --mfu) the step-time model does not set the time, recomputation does:
    the fitting layout with the lightest recomputation is used (the fastest of those by the model), so more
    GPUs never cost more GPU-hours because a heavier policy was picked.
    """
    c = req.constraints
    given = req.efficiency.source in ("tflops", "mfu")
    # the model sets the time: only the fastest is used, and a search keeping one prunes more (its bound is held
    # against the best time so far, not the 50th): the same layout, as a layout is skipped only when its compute
    # lower bound (below its step time: the optimizer step is never free) is no faster than one already timed
    # (search._Ranker; tests/test_fit.py compares it with a search that keeps every layout)
    res = run_search(req, keep=50 if given else 1)
    best = res.candidates[0] if res.candidates else res.smallest_misfit
    if res.candidates and given:
        best = min(res.candidates, key=lambda cand: (RECOMPUTE_ORDER.index(cand.layout.recompute),
                                                     cand.seconds_per_sequence))
    missing = searched_dimensions(req, best.layout if best else None)
    source = "given" if not missing else ("searched" if c.is_empty else "partly searched")
    if best is None:
        raise EstimateError(_no_layout_message(req, seq), hint=_no_layout_hint(req))
    return best, source, res


def searched_dimensions(req: Request, lay: Optional[Layout]) -> list[str]:
    """The layout dimensions the search filled (not given by the user) that matter for this model and layout."""
    c = req.constraints
    dims = ["tp", "pp", "micro_batch", "zero", "recompute"]
    if req.model.moe is not None:
        dims.append("ep")
    seq = req.seq_length or req.model.seq_length
    if seq >= 16384:
        dims.append("cp")
    if lay is None or lay.pp > 1 or (c.pp or 1) > 1:
        dims.append("virtual_stages")
    return [d for d in dims if getattr(c, d) is None]


def _no_layout_message(req: Request, seq: int) -> str:
    c = req.constraints
    given = " ".join(f"--{k.replace('_', '-')} {getattr(c, k)}"
                     for k in ("tp", "pp", "dp", "ep", "cp", "micro_batch", "virtual_stages") if getattr(c, k) is not None)
    batch = f"global batch {req.global_batch}" if req.global_batch else "the default global batch"
    return (f"no valid parallel layout for {req.model.name} on {req.gpus} GPUs with {batch}"
            + (f" and {given}" if given else ""))


def _no_layout_hint(req: Request) -> str:
    m = req.model
    return (f"tp must divide heads ({m.heads}) and kv_heads ({m.n_kv}); pp must divide layers ({m.layers}) or be a "
            f"power of two; tp·pp·cp must divide --gpus; dp must divide --global-batch, and the micro-batch the "
            f"per-replica batch (global batch / dp)")


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
    assumptions: list[str] = []
    warnings: list[str] = []
    if req.tokens is None:
        tokens = TOKENS_PER_PARAM * pb.total
        assumptions.append(f"tokens: {TOKENS_PER_PARAM:g} per parameter (Chinchilla compute-optimal, Hoffmann et al. "
                           f"2022) = {tokens:.3g}; set --tokens")
    else:
        tokens = req.tokens
    lay, gbs = cand.layout, cand.global_batch
    if req.global_batch is None:
        basis = (f"{m.name}'s published batch" if m.batch_tokens else "the default ~4M tokens")
        default = default_global_batch(seq, m.batch_tokens)
        if gbs == default:
            assumptions.append(f"global batch: {gbs:,} sequences = {gbs * seq / 1e6:.2f}M tokens ({basis}, the same "
                               "for every layout and GPU count); set --global-batch")
        else:
            assumptions.append(f"global batch: {gbs:,} sequences = {gbs * seq / 1e6:.2f}M tokens: {req.gpus:,} GPUs "
                               f"split {basis} ({default:,} sequences) poorly or not at all, so the batch within 1/8 "
                               "of it whose fastest layout is fastest per sequence is used; set --global-batch")
            warnings.append(f"{req.gpus:,} GPUs use {gbs:,} sequences per step, not {basis} ({default:,}): its "
                            "layouts on this count are slower or none; give --global-batch, or a GPU count whose "
                            "data-parallel size divides the batch")
    if layout_source != "given" and res is not None:
        what = "chosen" if layout_source == "searched" else "completed"
        names = {"micro_batch": "micro-batch", "virtual_stages": "virtual stages", "zero": "ZeRO"}
        filled = ", ".join(f"{names.get(d, d)} {getattr(lay, d)}" for d in searched_dimensions(req, lay))
        assumptions.append(f"layout {what} by search: fastest fitting of {res.evaluated:,} evaluated; searched: "
                           f"{filled}; fix any with --tp/--pp/--zero/...")
    if m.layers % lay.pp:
        ends = f"first {stage_layers(m.layers, lay.pp, 'first')}, last {stage_layers(m.layers, lay.pp, 'last')}"
        assumptions.append(f"uneven pipeline split: {m.layers} layers over {lay.pp} stages, at most "
                           f"{-(-m.layers // lay.pp)} per stage ({ends}: the end stages give up the shortfall, "
                           "Llama 3 §3.3.2); the fullest stage sets time and memory")
    if lay.sequence_parallel and req.constraints.sequence_parallel is None and lay.tp > 1:
        assumptions.append("sequence parallelism on with tp > 1 (Korthikanti et al. 2022)")
    tf = token_flops(m, seq)
    per_tok_model = tf.model
    per_tok_hw = tf.hardware(lay.recompute)
    assumptions.append("FLOPs: Megatron/Korthikanti convention (GEMMs only, full s² attention, no causal saving); "
                       "hardware FLOPs add recomputation")
    peak = (req.cluster.gpu.peak(req.precision) or 0.0) * 1e12
    if peak <= 0:
        hardware_of(req.cluster, req.precision)  # raises with the available precisions
    n = req.gpus
    eff = req.efficiency
    step: Optional[StepTime] = None
    tokens_per_step = gbs * seq
    if eff.source in ("tflops", "mfu") and eff.value is None:
        raise EstimateError(f"efficiency source {eff.source!r} needs a value", hint=f"pass --{eff.source} VALUE")
    if eff.source == "tflops":
        assert eff.value is not None
        achieved = eff.value * 1e12  # hardware FLOP/s per GPU
        tps = n * achieved / per_tok_hw
        approx = narayanan_eq4_time_s(tokens, pb.total, n, achieved, lay.recompute == "full") / SECONDS_PER_DAY
        assumptions.append(f"achieved throughput: {eff.value:g} hardware TFLOP/s per GPU (given, recompute counted); "
                           f"time uses the full FLOP count (Narayanan 2021 eq. 3 generalised); eq. 4's "
                           f"{8 if lay.recompute == 'full' else 6}·T·P/(n·X) approximation gives {approx:.1f} days")
    elif eff.source == "mfu":
        assert eff.value is not None
        tps = n * peak * eff.value / per_tok_model
        hfu = eff.value * per_tok_hw / per_tok_model
        if hfu > 1.0:
            raise EstimateError(f"--mfu {eff.value:g} with recompute {lay.recompute} means {hfu:.0%} of the dense peak "
                                "in hardware FLOPs (recomputation included): impossible",
                                hint="lower --mfu, or set --recompute none/selective")
        assumptions.append(f"achieved throughput: MFU {eff.value:.1%} of the dense {req.precision} peak (given)")
    else:
        step = cand.step or step_time(m, lay, seq, gbs, hardware_of(req.cluster, req.precision), req.perf, req.constants)
        tps = tokens_per_step / step.total * eff.calibration_ratio
        gen = req.cluster.gpu.generation
        consts = req.constants or load_default_constants()
        assumptions.append("achieved throughput: predicted by the step-time model " + accuracy_note(consts, m, req))
        po = req.perf
        grads = "bf16 with ZeRO-3/FSDP, fp32 otherwise" if po.grad_reduce_bytes is None else f"{po.grad_reduce_bytes:g} B"
        assumptions.append(
            f"step-time model: {'FlashAttention' if lay.flash_attention else 'materialised attention scores'} "
            f"(--[no-]flash-attention); gradient reduction {'overlapped with' if po.overlap_grad_reduce else 'after'} "
            f"the last backward (--[no-]overlap-grad-reduce); TP communication "
            f"{'overlapped' if po.tp_comm_overlap else 'not overlapped'} (--[no-]tp-comm-overlap); gradients "
            f"reduced in {grads}; attention kernel {po.attention_kernel} (--attention-kernel)"
            + (f"; ZeRO-3 as {po.sharded_impl} (--sharded-impl)" if lay.zero >= 3 else "")
            + (f"; MoE all-to-all {po.a2a_overlap:.0%} overlapped (--a2a-overlap), expert imbalance "
               f"{po.expert_imbalance:g} (--expert-imbalance), node-limited routing "
               f"{po.node_limited_routing or 'off'} (--node-limited-routing)" if m.moe is not None else ""))
        consts = req.constants or load_default_constants()
        used = consts.fitted_generation(gen)
        if used != gen:
            warnings.append(f"no published run on a {gen} GPU calibrates the model: it uses the "
                            f"{used} curves (stand-in); treat the throughput as rough or calibrate it (mpg calibrate)")
        if eff.calibration_ratio != 1.0:
            assumptions.append(f"calibration applied: measured/predicted = {eff.calibration_ratio:.3f} "
                               f"({eff.calibration_file})")
    step_s = tokens_per_step / tps
    steady_s = tokens / tps
    gp = goodput_of(req, steady_s, pb.total, assumptions, warnings, cand.memory.weights + cand.memory.optimizer)
    time_s = gp.wall_s
    gpu_hours = n * time_s / 3600.0
    price = req.price_usd_per_gpu_hour
    if price is None:
        price = req.cluster.price_usd_per_gpu_hour or req.cluster.gpu.price_usd_per_hour
        if price is not None:
            src = req.cluster if req.cluster.price_usd_per_gpu_hour else req.cluster.gpu
            assumptions.append(f"price: ${price:g}/GPU-hour from the {src.name} preset ({src.price_as_of or 'undated'}); "
                               "set --price")
    cost = gpu_hours * price if price is not None else None
    tdp = req.cluster.gpu.tdp_watts
    pue = req.cluster.pue or 1.0
    energy = n * tdp * pue * time_s / 3.6e6 if tdp else None
    if tdp:
        assumptions.append(f"energy: GPUs at TDP {tdp:g} W × PUE {pue:g} over the wall time"
                           + ("" if req.cluster.pue else " (not in the cluster preset)") + "; excludes CPUs and network")
    mem = cand.memory
    mo = req.memory
    if lay.zero >= 3 and mo.sharded_impl == "fsdp":
        states = (f"FSDP: fp32 parameter shard (the master copy), fp32 gradient shard and "
                  f"{OPTIMIZER_BYTES[mo.optimizer] - 4:g} B/param {mo.optimizer} moments, all sharded, plus two live "
                  "bf16 units and one unit's gradient")
    else:
        states = (f"2 B/param 16-bit weights, {grad_bytes(req.precision, mo.grad_reduce_bytes):g} B/param gradients, "
                  f"{OPTIMIZER_BYTES[mo.optimizer]:g} B/param {mo.optimizer} states with fp32 master weights"
                  + (" (DeepSpeed ZeRO-3 accounting)" if lay.zero >= 3 else ""))
    fp8_note = "; FP8: +1 B/param FP8 weight copy, GEMM inputs saved in FP8" if req.precision == "fp8" else ""
    assumptions.append(f"memory: {states}{fp8_note}; {'dropout masks' if m.dropout else 'no dropout masks'}; "
                       f"{mo.loss_impl} cross-entropy ({LOSS_IMPLS[mo.loss_impl]:g} B per logit); "
                       f"{mo.reserved_gib:g} GiB CUDA/NCCL in use; one margin: {mo.headroom_fraction:.0%} of capacity "
                       "kept free for the allocator (--optimizer, --sharded-impl, --loss-impl, --reserved-gib, "
                       "--headroom)")
    if m.position_embedding == "learned" and seq > m.seq_length:
        warnings.append(f"{m.name} has learned position embeddings for {m.seq_length:,} tokens; --seq-length "
                        f"{seq:,} needs more (the parameter count assumes {m.seq_length:,})")
    if req.cluster.gpu.peak(req.precision) is not None and req.precision not in dict(req.cluster.gpu.peak_tflops):
        other = "fp16" if req.precision == "bf16" else "bf16"
        warnings.append(f"{req.cluster.gpu.name} has no {req.precision} peak in its preset: using its {other} peak; "
                        f"set --precision {other}")
    if m.declared_params and abs(pb.total / m.declared_params - 1) > 0.02:
        warnings.append(f"{m.name}: computed {pb.total:,.0f} parameters differs from the declared "
                        f"{m.declared_params:,.0f} by {pb.total / m.declared_params - 1:+.1%}")
    model_tflops = tps / n * per_tok_model
    hw_tflops = tps / n * per_tok_hw
    interval = interval_of(req, m, tps, time_s / SECONDS_PER_DAY, gpu_hours, cost, energy, gp, assumptions)
    return Result(
        request=req, layout=lay, layout_source=layout_source, seq_length=seq, global_batch=gbs, tokens=tokens,
        params_total=pb.total, params_active=pb.active, flops_per_token_model=per_tok_model,
        flops_per_token_hardware=per_tok_hw, step_time_s=step_s, tokens_per_second=tps,
        tflops_per_gpu=hw_tflops / 1e12, model_tflops_per_gpu=model_tflops / 1e12, mfu=model_tflops / peak,
        hfu=hw_tflops / peak, time_s=time_s, gpu_hours=gpu_hours, cost_usd=cost, price_usd_per_gpu_hour=price,
        energy_kwh=energy, memory=mem, step=step, peak_tflops=peak / 1e12, assumptions=assumptions,
        warnings=warnings, steady_time_s=steady_s, goodput=gp, interval=interval,
    )


def goodput_of(req: Request, steady_s: float, total_params: float, assumptions: list[str],
               warnings: list[str], copy_bytes_per_gpu: Optional[float] = None) -> Goodput:
    """The wall time: the goodput model (core.goodput) with each default's source, or the fixed --goodput."""
    if req.goodput is not None:
        assumptions.append(f"goodput: fixed at {req.goodput:.0%} of wall time (--goodput); the failure and "
                           "checkpoint model is off")
        return fixed_goodput(steady_s, req.goodput)
    o, c = req.goodput_options, req.cluster
    if o.failures_per_gpu_hour is not None:
        rate, rate_src = o.failures_per_gpu_hour, "--failures-per-gpu-hour"
    elif c.failures_per_gpu_hour is not None:
        rate, rate_src = c.failures_per_gpu_hour, f"the {c.name} preset"
    else:
        rate, rate_src = FAILURES_PER_GPU_HOUR, DEFAULTS_SOURCES["failures_per_gpu_hour"]
    if o.storage_tb_s is not None:
        bw, bw_src = o.storage_tb_s, "--storage-tb-s"
    elif c.storage_tb_s is not None:
        bw, bw_src = c.storage_tb_s, f"the {c.name} preset"
    else:
        bw, bw_src = STORAGE_TB_S, DEFAULTS_SOURCES["storage_tb_s"]
    restart, restart_src = ((o.restart_s, "--restart-minutes") if o.restart_s is not None
                            else (RESTART_S, DEFAULTS_SOURCES["restart_s"]))
    opt_bytes = OPTIMIZER_BYTES[req.memory.optimizer]
    ck = checkpoint_bytes(total_params, opt_bytes)
    gp = model_goodput(steady_s, req.gpus, ck, rate, bw * 1e12, restart, o.checkpoint_interval_s,
                       o.async_checkpoint, o.maintenance_fraction, copy_bytes_per_gpu)
    tau = gp.checkpoint_interval_s if gp.checkpoint_interval_s is not None else float("nan")
    interval_src = ("--checkpoint-minutes" if o.checkpoint_interval_s is not None
                    else "Young 1974/Daly 2006 optimum √(2·write·MTBF)")
    assumptions.append(
        f"goodput {gp.fraction:.1%} (steady / wall time, Daly 2006 expected-time model): failures "
        f"{rate:.2e}/GPU-hour ({rate_src}; --failures-per-gpu-hour) → job MTBF "
        f"{gp.job_mtbf_hours if gp.job_mtbf_hours is not None else float('inf'):.3g} h; checkpoint "
        f"{ck / 1e12:.3g} TB ({2 + opt_bytes:g} B/param: 16-bit weights + {req.memory.optimizer} states with fp32 "
        f"master) at {bw:g} TB/s ({bw_src}; --storage-tb-s), "
        + (f"asynchronous: {gp.checkpoint_write_s:.3g} s blocking device-to-host copy (--async-checkpoint)"
           if o.async_checkpoint else f"{gp.checkpoint_write_s:.3g} s blocking write (--async-checkpoint to hide it)")
        + f"; interval {tau / 60:.3g} min ({interval_src}); restart {restart / 60:g} min + reload "
        f"({restart_src}; --restart-minutes); maintenance {o.maintenance_fraction:.0%} (--maintenance-fraction); "
        "--goodput F fixes the fraction instead")
    warnings.extend(gp.notes)
    return gp


def range_source(req: Request) -> Optional[tuple[tuple[float, ...], str, str] | RangeModel]:
    """What the request's range comes from: the calibrated projections' residuals (residuals, class, description),
    or the family-calibrated model of the cross-validated errors (core.intervals.range_model); None without data."""
    if req.residuals is not None:
        res = tuple(req.residuals)
        return (res, "calibrated", req.residual_basis or "calibrated projections") if len(res) >= 2 else None
    consts = req.constants or load_default_constants()
    records = records_from(consts.provenance or {})
    return range_model(records, req.cluster.gpu.generation) if records else None


def days_at_confidence(r: Result, confidence: Optional[float]) -> float:
    """Days the run finishes within with probability ``confidence`` (one-sided; the central value when None).

    Model throughput: central × e^{q}, q the ``confidence`` quantile of the log errors (core.intervals);
    given throughput: the upper end of the interruption count's spread at that one-sided level."""
    if confidence is None:
        return r.days
    req = r.request
    if req.efficiency.source in ("tflops", "mfu"):
        gp = r.goodput
        if gp is None or gp.interruptions_expected <= 0:
            return r.days
        per = (gp.lost_failures_s + gp.lost_restarts_s) / gp.interruptions_expected
        iv = goodput_only(2 * confidence - 1, r.tokens_per_second, r.days, r.gpu_hours, None, None,
                          gp.interruptions_expected, per)
        return iv.days[1]
    found = range_source(req)
    if found is None:
        return r.days
    q = found.upper(confidence) if isinstance(found, RangeModel) else upper_log_error(found[0], confidence)
    return r.days * math.exp(q)


def interval_of(req: Request, m: ModelSpec, tps: float, days: float, gpu_hours: float, cost: Optional[float],
                energy: Optional[float], gp: Goodput, assumptions: list[str]) -> Optional[Interval]:
    """The estimate's range at ``req.interval_level`` (core.intervals), and an assumption saying what it reflects."""
    level = req.interval_level
    if req.efficiency.source in ("tflops", "mfu"):
        if gp.source == "fixed":
            assumptions.append(f"no range: throughput (--{req.efficiency.source}) and goodput (--goodput) are both given")
            return None
        lost = gp.lost_failures_s + gp.lost_restarts_s
        per = lost / gp.interruptions_expected if gp.interruptions_expected > 0 else 0.0
        iv = goodput_only(level, tps, days, gpu_hours, cost, energy, gp.interruptions_expected, per)
        assumptions.append(f"range ({level:.0%}): reflects only goodput (the interruption count's Poisson spread): "
                           f"throughput is given (--{req.efficiency.source})")
        return iv
    found = range_source(req)
    if found is None:
        assumptions.append("no range: the constants carry no per-run cross-validated errors (provenance.cv_runs; "
                           "re-run scripts/fit_perf.py)")
        return None
    if isinstance(found, RangeModel):
        lo, hi, _ = found.bounds(level)
        basis = found.basis(level)
        iv = propagate(level, basis, found.cls, found.class_runs, (lo, hi), tps, days, gpu_hours, cost, energy)
        assumptions.append(f"range ({level:.0%}, --interval): {basis} (log predicted/measured tokens/s, each run "
                           f"predicted without its source; core/intervals.py): ×{math.exp(lo):.3g}-{math.exp(hi):.3g} "
                           "on time, GPU-hours, cost and energy; goodput enters at its expected value")
        return iv
    res, cls, basis = found
    iv = propagate(level, basis, cls, len(res), log_error_bounds(res, level), tps, days, gpu_hours, cost, energy)
    assumptions.append(f"range ({level:.0%}, --interval): empirical quantiles of the {basis} (log predicted/measured "
                       "tokens/s), applied to throughput, time, GPU-hours, cost and energy; goodput enters at its "
                       "expected value")
    return iv


def apply_gates(r: Result, max_days: Optional[float] = None, max_gpu_hours: Optional[float] = None,
                max_cost: Optional[float] = None, require_fit: bool = False) -> list[Check]:
    """Evaluate the requested gates and store them on the result (all pass = exit 0)."""
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
    r.checks = checks
    return checks
