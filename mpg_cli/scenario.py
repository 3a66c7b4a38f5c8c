"""From command-line values to core requests: load presets, check values, pick the efficiency source."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .core.estimate import Efficiency, Request
from .core.perf import PerfOptions
from .core.search import Constraints
from .core.specs import MemoryOptions, ModelSpec
from .errors import InputError, LayoutError
from .parsing import check_positive, parse_gpus, parse_tokens
from .presets import load_cluster, load_gpu, load_model


def _val(x: Any) -> Any:
    """Enum members to their value."""
    return getattr(x, "value", x)


def gpu_counts(opts: dict[str, Any], default: int) -> list[int]:
    return parse_gpus(opts.get("gpus")) or [default]


def build_requests(opts: dict[str, Any]) -> list[Request]:
    """One Request per GPU count in --gpus (one unless a list was given)."""
    extra = opts.get("presets")
    model = opts["model"] if isinstance(opts["model"], ModelSpec) else load_model(opts["model"], extra)
    cluster = load_cluster(opts["cluster"], extra)
    if opts.get("gpu") is not None:
        gpu = load_gpu(opts["gpu"], extra)
        intra = gpu.intra_node_gb_s or cluster.intra_node_gb_s
        cluster = replace(cluster, gpu=gpu, intra_node_gb_s=intra)
    counts = gpu_counts(opts, cluster.total_gpus)
    tokens, _ = parse_tokens(opts.get("tokens"))
    for flag, key, maximum in (("--tflops", "tflops", None), ("--mfu", "mfu", 1.0), ("--price", "price", None),
                               ("--goodput", "goodput", 1.0), ("--max-days", "max_days", None),
                               ("--max-gpu-hours", "max_gpu_hours", None), ("--max-cost", "max_cost", None)):
        check_positive(opts.get(key), flag, maximum=maximum, allow_zero=key == "price")
    goodput_opts = goodput_options(opts)
    check_positive(opts.get("reserved_gib", 0.0), "--reserved-gib", allow_zero=True)
    if opts.get("reserved_gib", 0.0) >= cluster.gpu.memory_gib:
        raise InputError(f"--reserved-gib {opts['reserved_gib']:g} leaves nothing of the {cluster.gpu.name}'s "
                         f"{cluster.gpu.memory_gib:g} GiB", hint="the CUDA/NCCL reserve is usually 1-3 GiB")
    check_positive(opts.get("headroom", 0.0), "--headroom", maximum=0.9, allow_zero=True)
    if opts.get("tflops") is not None and opts.get("mfu") is not None:
        raise InputError("--tflops and --mfu both given", hint="give one: --tflops is hardware TFLOP/s per GPU, "
                         "--mfu the model-FLOPs fraction of peak")
    efficiency = _efficiency(opts, cluster)
    cons = Constraints(
        tp=opts.get("tp"), pp=opts.get("pp"), dp=opts.get("dp"), ep=opts.get("ep"), cp=opts.get("cp"),
        micro_batch=opts.get("micro_batch"), virtual_stages=opts.get("virtual_stages"), zero=opts.get("zero"),
        recompute=_val(opts.get("recompute")), sequence_parallel=opts.get("sequence_parallel"),
        flash_attention=opts.get("flash_attention", True),
    )
    _check_layout(cons, model, counts)
    d_mem, d_perf = MemoryOptions(), PerfOptions()
    impl = _val(opts.get("sharded_impl", d_mem.sharded_impl))
    mem = MemoryOptions(optimizer=_val(opts.get("optimizer", d_mem.optimizer)),
                        reserved_gib=opts.get("reserved_gib", d_mem.reserved_gib),
                        headroom_fraction=opts.get("headroom", d_mem.headroom_fraction),
                        loss_impl=_val(opts.get("loss_impl", d_mem.loss_impl)), sharded_impl=impl)
    perf = PerfOptions(overlap_grad_reduce=opts.get("overlap_grad_reduce", d_perf.overlap_grad_reduce),
                       tp_comm_overlap=opts.get("tp_comm_overlap", d_perf.tp_comm_overlap), sharded_impl=impl,
                       attention_kernel=_val(opts.get("attention_kernel", d_perf.attention_kernel)),
                       a2a_overlap=opts.get("a2a_overlap", d_perf.a2a_overlap),
                       node_limited_routing=opts.get("node_limited_routing"),
                       expert_imbalance=opts.get("expert_imbalance", d_perf.expert_imbalance))
    seq = opts.get("seq_length")
    gbs = opts.get("global_batch")
    if cons.micro_batch and gbs and gbs % cons.micro_batch:
        raise InputError(f"--micro-batch {cons.micro_batch} does not divide --global-batch {gbs}")
    return [
        Request(model=model, cluster=cluster, gpus=n, tokens=tokens, seq_length=seq, global_batch=gbs,
                precision=_val(opts.get("precision", "bf16")), constraints=cons, efficiency=efficiency,
                price_usd_per_gpu_hour=opts.get("price"), goodput=opts.get("goodput"), memory=mem,
                perf=perf, goodput_options=goodput_opts, interval_level=opts.get("interval", 0.8),
                **calibrated_residuals(efficiency))
        for n in counts
    ]


def goodput_options(opts: dict[str, Any]):
    """The goodput model's flags, checked (core.goodput)."""
    from .core.goodput import GoodputOptions

    for flag, key, maximum, zero in (("--failures-per-gpu-hour", "failures_per_gpu_hour", 1.0, True),
                                     ("--storage-tb-s", "storage_tb_s", None, False),
                                     ("--restart-minutes", "restart_minutes", None, True),
                                     ("--checkpoint-minutes", "checkpoint_minutes", None, False),
                                     ("--maintenance-fraction", "maintenance_fraction", 0.9, True),
                                     ("--interval", "interval", 0.99, False),
                                     ("--confidence", "confidence", 0.99, False)):
        check_positive(opts.get(key), flag, maximum=maximum, allow_zero=zero)
    if opts.get("interval") is not None and opts["interval"] < 0.5:
        raise InputError(f"--interval {opts['interval']:g}: the range's level is a probability between 0.5 and 0.99",
                         hint="e.g. --interval 0.8 (the default) or 0.9")
    if opts.get("confidence") is not None and opts["confidence"] < 0.5:
        raise InputError(f"--confidence {opts['confidence']:g}: give a probability between 0.5 and 0.99",
                         hint="e.g. --confidence 0.9")
    restart = opts.get("restart_minutes")
    interval = opts.get("checkpoint_minutes")
    return GoodputOptions(failures_per_gpu_hour=opts.get("failures_per_gpu_hour"),
                          storage_tb_s=opts.get("storage_tb_s"),
                          restart_s=None if restart is None else restart * 60.0,
                          checkpoint_interval_s=None if interval is None else interval * 60.0,
                          async_checkpoint=bool(opts.get("async_checkpoint", False)),
                          maintenance_fraction=opts.get("maintenance_fraction") or 0.0)


def calibrated_residuals(eff: Efficiency) -> dict[str, Any]:
    """With a calibration, the range comes from calibrated projections on the public runs (calibrated_ranges)."""
    if eff.source != "model" or not eff.calibration_file:
        return {}
    from .calibrated_ranges import calibrated_log_residuals

    res, basis = calibrated_log_residuals()
    return {"residuals": tuple(res), "residual_basis": basis}


def _efficiency(opts: dict[str, Any], cluster) -> Efficiency:
    if opts.get("tflops") is not None:
        peak = cluster.gpu.peak(_val(opts.get("precision", "bf16")))
        if peak and opts["tflops"] > peak:
            raise InputError(f"--tflops {opts['tflops']:g} is above the {cluster.gpu.name} dense peak ({peak:g} TFLOP/s)",
                             hint="--tflops is achieved hardware TFLOP/s per GPU; check the precision and GPU")
        return Efficiency("tflops", opts["tflops"])
    if opts.get("mfu") is not None:
        return Efficiency("mfu", opts["mfu"])
    calib = opts.get("calibration")
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


def check_result(r: Any, opts: dict[str, Any]) -> None:
    """After an estimate: a calibration must not push MFU or HFU above 1; warn when it was measured elsewhere."""
    eff = r.request.efficiency
    if eff.calibration_ratio == 1.0 or not eff.calibration_file:
        return
    if r.mfu > 1.0 or r.hfu > 1.0:
        raise InputError(f"--calibration {eff.calibration_file}: ratio {eff.calibration_ratio:.3g} gives MFU "
                         f"{r.mfu:.0%} and HFU {r.hfu:.0%} here: above the GPU's dense peak",
                         hint="this calibration does not carry over to this model, GPU or layout; calibrate a run like it")
    doc = opts.get("_calibration_doc")
    if isinstance(doc, dict):
        from .calibration import mismatch_warnings

        for w in mismatch_warnings(doc, r.request):
            if w not in r.warnings:
                r.warnings.append(w)
