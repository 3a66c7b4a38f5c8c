"""From steady-state time to wall time, and the estimate's range.

Wall time: the goodput model (``core.goodput``, Daly 2006 expected time with Young/Daly checkpoints), each
default with its source, or a fixed ``--goodput`` fraction. Range: the family-calibrated model of the
cross-validated step-time errors (``core.intervals.range_model``), a calibration's own residuals, or only the
interruption count's spread when the throughput is given.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional

from .assumptions import Assumption
from .goodput import DEFAULTS_SOURCES, FAILURES_PER_GPU_HOUR, RESTART_S, STORAGE_TB_S, Goodput
from .goodput import checkpoint_bytes, fixed_goodput, model_goodput
from .intervals import Interval, RangeModel, goodput_only, log_error_bounds, propagate, range_model, records_from
from .intervals import upper_log_error
from .memory import OPTIMIZER_BYTES
from .perf import load_default_constants
from .request import Request

if TYPE_CHECKING:
    from .estimate import Result

GOODPUT_FLAGS = ("--failures-per-gpu-hour", "--storage-tb-s", "--async-checkpoint", "--checkpoint-minutes",
                 "--restart-minutes", "--maintenance-fraction", "--goodput")


def _first_set(*options: tuple[Optional[float], str]) -> tuple[float, str]:
    """The first (value, where it came from) that is set: the flag, then the cluster preset, then the default."""
    for value, source in options:
        if value is not None:
            return value, source
    raise ValueError("no default")  # the last option is always a default (a programming error otherwise)


def goodput_of(req: Request, steady_s: float, total_params: float,
               copy_bytes_per_gpu: Optional[float] = None) -> tuple[Goodput, Assumption]:
    """The wall time: the goodput model (core.goodput) with each default's source, or the fixed --goodput."""
    if req.goodput is not None:
        return fixed_goodput(steady_s, req.goodput), Assumption("goodput", req.goodput, "--goodput", ("--goodput",))
    o, c = req.goodput_options, req.cluster
    rate, rate_src = _first_set((o.failures_per_gpu_hour, "--failures-per-gpu-hour"),
                                (c.failures_per_gpu_hour, f"the {c.name} preset"),
                                (FAILURES_PER_GPU_HOUR, DEFAULTS_SOURCES["failures_per_gpu_hour"]))
    bw, bw_src = _first_set((o.storage_tb_s, "--storage-tb-s"), (c.storage_tb_s, f"the {c.name} preset"),
                            (STORAGE_TB_S, DEFAULTS_SOURCES["storage_tb_s"]))
    restart, restart_src = ((o.restart_s, "--restart-minutes") if o.restart_s is not None
                            else (RESTART_S, DEFAULTS_SOURCES["restart_s"]))
    opt_bytes = OPTIMIZER_BYTES[req.memory.optimizer]
    ck = checkpoint_bytes(total_params, opt_bytes)
    gp = model_goodput(steady_s, req.gpus, ck, rate, bw * 1e12, restart, o.checkpoint_interval_s,
                       o.async_checkpoint, o.maintenance_fraction, copy_bytes_per_gpu)
    detail = {
        "failures_per_gpu_hour": rate, "failures_source": rate_src,
        "job_mtbf_hours": gp.job_mtbf_hours if gp.job_mtbf_hours is not None else float("inf"),
        "checkpoint_bytes": ck, "checkpoint_bytes_per_param": 2 + opt_bytes, "optimizer": req.memory.optimizer,
        "storage_tb_s": bw, "storage_source": bw_src, "async_checkpoint": o.async_checkpoint,
        "checkpoint_write_s": gp.checkpoint_write_s,
        "checkpoint_interval_s": gp.checkpoint_interval_s if gp.checkpoint_interval_s is not None else float("nan"),
        "interval_source": ("--checkpoint-minutes" if o.checkpoint_interval_s is not None
                            else "Young 1974/Daly 2006 optimum √(2·write·MTBF)"),
        "restart_s": restart, "restart_source": restart_src, "maintenance_fraction": o.maintenance_fraction}
    return gp, Assumption("goodput", gp.fraction, "Daly 2006 expected-time model", GOODPUT_FLAGS, detail)


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


def interval_of(req: Request, tps: float, days: float, gpu_hours: float, cost: Optional[float],
                energy: Optional[float], gp: Goodput) -> tuple[Optional[Interval], Optional[Assumption]]:
    """The estimate's range at ``req.interval_level`` (core.intervals), and an assumption saying what it reflects."""
    level = req.interval_level
    src = req.efficiency.source
    if src in ("tflops", "mfu"):
        if gp.source == "fixed":
            return None, Assumption("range", None, "given", (f"--{src}", "--goodput"), {"kind": "given", "efficiency": src})
        lost = gp.lost_failures_s + gp.lost_restarts_s
        per = lost / gp.interruptions_expected if gp.interruptions_expected > 0 else 0.0
        iv = goodput_only(level, tps, days, gpu_hours, cost, energy, gp.interruptions_expected, per)
        return iv, Assumption("range", level, "goodput", ("--interval",), {"kind": "goodput_only", "efficiency": src})
    found = range_source(req)
    if found is None:
        return None, Assumption("range", None, "provenance.cv_runs", (), {"kind": "no_data"})
    if isinstance(found, RangeModel):
        lo, hi, _ = found.bounds(level)
        basis = found.basis(level)
        iv = propagate(level, basis, found.cls, found.class_runs, (lo, hi), tps, days, gpu_hours, cost, energy)
        return iv, Assumption("range", level, basis, ("--interval",), {"kind": "model", "log_bounds": (lo, hi)})
    res, cls, basis = found
    iv = propagate(level, basis, cls, len(res), log_error_bounds(res, level), tps, days, gpu_hours, cost, energy)
    return iv, Assumption("range", level, basis, ("--interval",), {"kind": "calibrated"})
