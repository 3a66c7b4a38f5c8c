"""From command-line values to core requests: load presets, check values, pick the efficiency source."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .core.estimate import Efficiency, Request
from .core.perf import PerfOptions
from .core.search import Constraints
from .core.specs import MemoryOptions, ModelSpec
from .args import EstimateArgs
from .errors import InputError, LayoutError
from .parsing import check_positive, parse_gpus, parse_tokens
from .presets import load_cluster, load_gpu, load_model


def gpu_counts(opts: dict[str, Any], default: int) -> list[int]:
    return parse_gpus(opts.get("gpus")) or [default]


def build_requests(opts: dict[str, Any]) -> list[Request]:
    """One Request per GPU count in --gpus (one unless a list was given): the one conversion from a command's
    options (typed once, as ``EstimateArgs``) to the core's request, with every value checked."""
    a = EstimateArgs.from_options(opts)
    model = a.model if isinstance(a.model, ModelSpec) else load_model(a.model, a.presets)
    cluster = load_cluster(a.cluster, a.presets)
    if a.gpu is not None:
        gpu = load_gpu(a.gpu, a.presets)
        intra = gpu.intra_node_gb_s or cluster.intra_node_gb_s
        cluster = replace(cluster, gpu=gpu, intra_node_gb_s=intra)
    counts = parse_gpus(a.gpus) or [cluster.total_gpus]
    tokens, _ = parse_tokens(a.tokens)
    for flag, value, maximum in (("--tflops", a.tflops, None), ("--mfu", a.mfu, 1.0), ("--price", a.price, None),
                                 ("--goodput", a.goodput, 1.0), ("--max-days", a.max_days, None),
                                 ("--max-gpu-hours", a.max_gpu_hours, None), ("--max-cost", a.max_cost, None)):
        check_positive(value, flag, maximum=maximum, allow_zero=flag == "--price")
    goodput_opts = goodput_options(a)
    check_positive(a.reserved_gib, "--reserved-gib", allow_zero=True)
    if a.reserved_gib >= cluster.gpu.memory_gib:
        raise InputError(f"--reserved-gib {a.reserved_gib:g} leaves nothing of the {cluster.gpu.name}'s "
                         f"{cluster.gpu.memory_gib:g} GiB", hint="the CUDA/NCCL reserve is usually 1-3 GiB")
    check_positive(a.headroom, "--headroom", maximum=0.9, allow_zero=True)
    if a.tflops is not None and a.mfu is not None:
        raise InputError("--tflops and --mfu both given", hint="give one: --tflops is hardware TFLOP/s per GPU, "
                         "--mfu the model-FLOPs fraction of peak")
    efficiency = _efficiency(a, cluster, opts)
    cons = Constraints(tp=a.tp, pp=a.pp, dp=a.dp, ep=a.ep, cp=a.cp, micro_batch=a.micro_batch,
                       virtual_stages=a.virtual_stages, zero=a.zero, recompute=a.recompute,
                       sequence_parallel=a.sequence_parallel, flash_attention=a.flash_attention)
    _check_layout(cons, model, counts)
    if model.moe is not None:  # the busiest expert can take at most every routed token: E/k × the mean
        most = model.moe.experts / model.moe.top_k
        if not 1.0 <= a.expert_imbalance <= most:
            raise InputError(f"--expert-imbalance {a.expert_imbalance:g} is outside 1-{most:g} for {model.name} "
                             f"({model.moe.experts} experts, top-{model.moe.top_k})",
                             hint="the busiest expert's tokens over the mean: 1.0 is balanced")
    mem = MemoryOptions(optimizer=a.optimizer, reserved_gib=a.reserved_gib, headroom_fraction=a.headroom,
                        loss_impl=a.loss_impl, sharded_impl=a.sharded_impl)
    perf = PerfOptions(overlap_grad_reduce=a.overlap_grad_reduce, tp_comm_overlap=a.tp_comm_overlap,
                       sharded_impl=a.sharded_impl, attention_kernel=a.attention_kernel, a2a_overlap=a.a2a_overlap,
                       node_limited_routing=a.node_limited_routing, expert_imbalance=a.expert_imbalance)
    if cons.micro_batch and a.global_batch and a.global_batch % cons.micro_batch:
        raise InputError(f"--micro-batch {cons.micro_batch} does not divide --global-batch {a.global_batch}")
    return [
        Request(model=model, cluster=cluster, gpus=n, tokens=tokens, seq_length=a.seq_length,
                global_batch=a.global_batch, precision=a.precision, constraints=cons, efficiency=efficiency,
                price_usd_per_gpu_hour=a.price, goodput=a.goodput, memory=mem, perf=perf,
                goodput_options=goodput_opts, interval_level=a.interval, **calibrated_residuals(efficiency))
        for n in counts
    ]


def goodput_options(a: EstimateArgs) -> Any:
    """The goodput model's flags, checked (core.goodput)."""
    from .core.goodput import GoodputOptions

    for flag, value, maximum, zero in (("--failures-per-gpu-hour", a.failures_per_gpu_hour, 1.0, True),
                                       ("--storage-tb-s", a.storage_tb_s, None, False),
                                       ("--restart-minutes", a.restart_minutes, None, True),
                                       ("--checkpoint-minutes", a.checkpoint_minutes, None, False),
                                       ("--maintenance-fraction", a.maintenance_fraction, 0.9, True),
                                       ("--interval", a.interval, 0.99, False),
                                       ("--confidence", a.confidence, 0.99, False)):
        check_positive(value, flag, maximum=maximum, allow_zero=zero)
    if a.interval < 0.5:
        raise InputError(f"--interval {a.interval:g}: the range's level is a probability between 0.5 and 0.99",
                         hint="e.g. --interval 0.8 (the default) or 0.9")
    if a.confidence is not None and a.confidence < 0.5:
        raise InputError(f"--confidence {a.confidence:g}: give a probability between 0.5 and 0.99",
                         hint="e.g. --confidence 0.9")
    restart, interval = a.restart_minutes, a.checkpoint_minutes
    return GoodputOptions(failures_per_gpu_hour=a.failures_per_gpu_hour, storage_tb_s=a.storage_tb_s,
                          restart_s=None if restart is None else restart * 60.0,
                          checkpoint_interval_s=None if interval is None else interval * 60.0,
                          async_checkpoint=bool(a.async_checkpoint), maintenance_fraction=a.maintenance_fraction)


def calibrated_residuals(eff: Efficiency) -> dict[str, Any]:
    """With a calibration, the range comes from calibrated projections on the public runs (calibrated_ranges)."""
    if eff.source != "model" or not eff.calibration_file:
        return {}
    from .calibrated_ranges import calibrated_log_residuals

    res, basis = calibrated_log_residuals()
    return {"residuals": tuple(res), "residual_basis": basis}


def _efficiency(a: EstimateArgs, cluster: Any, opts: dict[str, Any]) -> Efficiency:
    """Where throughput comes from: --tflops, --mfu, or the step-time model (scaled by --calibration; the
    calibration document is kept in ``opts`` for the mismatch warnings after the estimate)."""
    if a.tflops is not None:
        peak = cluster.gpu.peak(a.precision)
        if peak and a.tflops > peak:
            raise InputError(f"--tflops {a.tflops:g} is above the {cluster.gpu.name} dense peak ({peak:g} TFLOP/s)",
                             hint="--tflops is achieved hardware TFLOP/s per GPU; check the precision and GPU")
        return Efficiency("tflops", a.tflops)
    if a.mfu is not None:
        return Efficiency("mfu", a.mfu)
    calib = a.calibration
    if calib is not None:
        from .calibration import load_calibration_doc

        ratio, path, doc = load_calibration_doc(calib)
        opts["_calibration_doc"] = doc
        return Efficiency("model", None, ratio, path)
    return Efficiency()


def _check_layout(c: Constraints, model, counts: list[int]) -> None:
    """Errors for layouts that can never be valid, naming the flag and the fix."""
    if c.tp and (model.heads % c.tp or model.n_kv % c.tp):
        raise LayoutError(f"--tp {c.tp} does not divide the {model.name} attention heads ({model.heads}) and KV heads ({model.n_kv})",
                         hint=f"tp must divide {model.n_kv}: try one of {', '.join(str(d) for d in _divs(model.n_kv))}")
    if c.pp and c.pp > model.layers:
        raise LayoutError(f"--pp {c.pp} is more pipeline stages than the {model.name} has layers ({model.layers})",
                         hint=f"try one of {', '.join(str(d) for d in _divs(model.layers) if d <= 128)}")
    if c.ep and model.moe is None and c.ep > 1:
        raise LayoutError(f"--ep {c.ep}: {model.name} is not a mixture-of-experts model")
    if c.ep and model.moe is not None and model.moe.experts % c.ep:
        raise LayoutError(f"--ep {c.ep} does not divide the {model.moe.experts} experts of {model.name}")
    if c.virtual_stages and c.pp and (-(-model.layers // c.pp)) % c.virtual_stages:
        raise LayoutError(f"--virtual-stages {c.virtual_stages} does not divide the {-(-model.layers // c.pp)} "
                         "layers per stage")
    for n in counts:
        mp = (c.tp or 1) * (c.pp or 1) * (c.cp or 1)
        if n % mp:
            raise LayoutError(f"tp·pp·cp = {mp} does not divide --gpus {n}",
                             hint="tp × pp × cp × dp must equal the GPU count")
        if c.dp is not None and c.tp and c.pp and mp * c.dp != n:
            raise LayoutError(f"tp·pp·cp·dp = {mp * c.dp} but --gpus is {n}",
                             hint=f"leave --dp out (it is derived) or use --gpus {mp * c.dp}")


def _divs(n: int) -> list[int]:
    from .core.search import divisors

    return divisors(n)


def checked_result(r: Any, opts: dict[str, Any]) -> Any:
    """After an estimate: a calibration must not push MFU or HFU above 1; the result, with a warning added
    when the calibration was measured on another setup."""
    eff = r.request.efficiency
    if eff.calibration_ratio == 1.0 or not eff.calibration_file:
        return r
    if r.mfu > 1.0 or r.hfu > 1.0:
        raise InputError(f"--calibration {eff.calibration_file}: ratio {eff.calibration_ratio:.3g} gives MFU "
                         f"{r.mfu:.0%} and HFU {r.hfu:.0%} here: above the GPU's dense peak",
                         hint="this calibration does not carry over to this model, GPU or layout; calibrate a run like it")
    doc = opts.get("_calibration_doc")
    if isinstance(doc, dict):
        from dataclasses import replace

        from .calibration import mismatch_warnings

        new = [w for w in mismatch_warnings(doc, r.request) if w not in r.warnings]
        r = replace(r, warnings=r.warnings + tuple(dict.fromkeys(new)))
    return r
