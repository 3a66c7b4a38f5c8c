"""Goodput: the wall time of a full run, from failures, checkpoints, restarts and planned maintenance.

A run of steady-state length ``T`` (seconds of training at the step-time model's throughput) is cut into
segments of ``τ`` seconds of training followed by a blocking checkpoint write of ``δ`` seconds. Job
interruptions arrive as a Poisson process with rate ``λ = 1/M`` (job MTBF ``M = 1 / (rate per GPU-hour ×
GPUs)``, in seconds), also during restarts. A failure loses the work since the last checkpoint and costs a
restart of ``R`` seconds (detection, rescheduling, reload). The expected time to finish one segment is then
exactly (Daly 2006, "A higher order estimate of the optimum checkpoint interval for restart dumps", FGCS 22,
eq. 13 with failures during restart)::

    E[segment] = M · e^{R/M} · (e^{(τ+δ)/M} − 1)

and the run takes ``T/τ`` segments. Expected interruptions per segment: ``(e^{(τ+δ)/M} − 1) · e^{R/M}``.
The interval defaults to the Young/Daly optimum ``τ ≈ √(2·δ·M)`` (Young 1974, "A first order approximation
to the optimum checkpoint interval", CACM 17(9); Daly 2006 eq. 37's first term).

Asynchronous checkpointing (PyTorch DCP async save, Megatron ``--async-save``): only the device-to-host copy
blocks (``δ_b``); the write to storage (``δ_w``) runs behind training, so a failure within ``δ_w`` of a
checkpoint falls back one more interval: on average (first order) ``δ_w`` more lost work per failure, and the
interval cannot be shorter than ``δ_w``.

Planned maintenance and evaluation: a fraction ``f`` of wall time, ``wall = wall_failures / (1 − f)``.

Defaults and their sources are in ``DEFAULTS_SOURCES``; every one is a flag and (where it belongs to the
cluster) a preset key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

# Llama 3 (Dubey et al. 2024, "The Llama 3 Herd of Models", §3.3.4 Table 5): 419 unexpected interruptions
# in a 54-day snapshot of pre-training on 16,384 H100 GPUs.
LLAMA3_INTERRUPTIONS = 419
LLAMA3_DAYS = 54
LLAMA3_GPUS = 16384
FAILURES_PER_GPU_HOUR = LLAMA3_INTERRUPTIONS / (LLAMA3_DAYS * 24 * LLAMA3_GPUS)  # ≈ 1.97e-5
# Llama 3 §3.3.4 (Storage): Tectonic sustains 2 TB/s, 7 TB/s peak.
STORAGE_TB_S = 2.0
# Restart: detection, rescheduling and process/NCCL start before the reload (the reload is added from the
# checkpoint size and storage bandwidth). mpg's assumption: automated recovery takes minutes (Llama 3 §3.3.4
# reports most interruptions handled by automation; MegaScale, Jiang et al. 2024 §4, reports minutes-scale
# detection and restart); 10 minutes. Set --restart-minutes.
RESTART_S = 600.0
# Asynchronous checkpointing's blocking copy: device to host at PCIe Gen4 x16 achievable bandwidth (~25 GB/s of
# the 32 GB/s link), each GPU copying its own weights and optimizer states. mpg's assumption.
HOST_COPY_BYTES_S = 25e9
# Full checkpoint: 16-bit weights (2 B) + the optimizer's states incl. fp32 master weights (adam: 4 + 8 = 12 B,
# Rajbhandari et al. 2020 "ZeRO" §3.1; adam8bit 6 B); gradients and activations are not saved.
WEIGHT_BYTES = 2.0

DEFAULTS_SOURCES = {
    "failures_per_gpu_hour": f"Llama 3 §3.3.4: {LLAMA3_INTERRUPTIONS} unexpected interruptions in {LLAMA3_DAYS} days "
                             f"on {LLAMA3_GPUS:,} H100s = {FAILURES_PER_GPU_HOUR:.2e} per GPU-hour",
    "storage_tb_s": f"Llama 3 §3.3.4: storage sustained {STORAGE_TB_S:g} TB/s (7 TB/s peak)",
    "restart_s": "mpg assumption: automated detection and rescheduling in minutes (Llama 3 §3.3.4, MegaScale 2024)",
}


@dataclass(frozen=True)
class GoodputOptions:
    """The goodput model's inputs (None = the cluster preset's value, else the default above)."""

    fixed_fraction: Optional[float] = None  # --goodput F: a fixed fraction instead of the model
    failures_per_gpu_hour: Optional[float] = None
    storage_tb_s: Optional[float] = None
    restart_s: Optional[float] = None
    checkpoint_interval_s: Optional[float] = None  # None: the Young/Daly optimum
    async_checkpoint: bool = False
    maintenance_fraction: float = 0.0


@dataclass(frozen=True)
class Goodput:
    """Expected wall time and where it goes (all times in seconds of wall time)."""

    fraction: float  # steady / wall
    source: str  # 'model' or 'fixed'
    steady_s: float
    wall_s: float
    job_mtbf_hours: Optional[float] = None
    interruptions_expected: float = 0.0
    interruptions_per_day: float = 0.0
    checkpoint_bytes: Optional[float] = None
    checkpoint_write_s: Optional[float] = None  # the blocking part (δ)
    checkpoint_persist_s: Optional[float] = None  # the write to storage (async: behind training)
    checkpoint_interval_s: Optional[float] = None
    restart_s: Optional[float] = None
    lost_failures_s: float = 0.0  # work redone after failures
    lost_checkpoints_s: float = 0.0  # blocking checkpoint writes
    lost_restarts_s: float = 0.0  # detection, rescheduling and reload, interrupted restarts included
    lost_maintenance_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "fraction": self.fraction, "source": self.source, "job_mtbf_hours": self.job_mtbf_hours,
            "interruptions_expected": self.interruptions_expected, "interruptions_per_day": self.interruptions_per_day,
            "checkpoint_bytes": self.checkpoint_bytes, "checkpoint_write_s": self.checkpoint_write_s,
            "checkpoint_interval_s": self.checkpoint_interval_s, "restart_s": self.restart_s,
            "lost_s": {"failures": self.lost_failures_s, "checkpoints": self.lost_checkpoints_s,
                       "restarts": self.lost_restarts_s, "maintenance": self.lost_maintenance_s},
        }


def checkpoint_bytes(total_params: float, optimizer_bytes_per_param: float = 12.0) -> float:
    """Bytes of one full checkpoint: every parameter's 16-bit weight plus its optimizer states (fp32 master
    weights and moments: 12 B/param for Adam, so 14 B/param in all; ZeRO, Rajbhandari et al. 2020 §3.1).

    The whole model's states, saved once (data-parallel replicas are not written twice)."""
    return total_params * (WEIGHT_BYTES + optimizer_bytes_per_param)


def young_daly_interval(write_s: float, mtbf_s: float) -> float:
    """Young (1974) / Daly (2006) first-order optimum checkpoint interval: τ = √(2·δ·M)."""
    return math.sqrt(2.0 * write_s * mtbf_s)


def expected_segment_s(work_s: float, write_s: float, restart_s: float, mtbf_s: float) -> float:
    """Expected wall time to finish ``work_s`` of training plus a ``write_s`` checkpoint (Daly 2006, exact):
    M·e^{R/M}·(e^{(τ+δ)/M} − 1)."""
    return mtbf_s * math.exp(restart_s / mtbf_s) * math.expm1((work_s + write_s) / mtbf_s)


def model_goodput(steady_s: float, gpus: int, ckpt_bytes: float, failures_per_gpu_hour: float,
                  storage_bytes_s: float, restart_s: float, interval_s: Optional[float] = None,
                  async_checkpoint: bool = False, maintenance_fraction: float = 0.0,
                  copy_bytes_per_gpu: Optional[float] = None) -> Goodput:
    """Expected wall time of a run of ``steady_s`` seconds of training on ``gpus`` GPUs (module docstring).

    ``copy_bytes_per_gpu``: what each GPU snapshots to host memory for an asynchronous checkpoint (its
    weights and optimizer states under the layout; default: an even share, ``ckpt_bytes / gpus``). The wall
    time is linear in ``steady_s`` (``T/τ`` segments, fractional for a run shorter than one interval), so
    budgets invert it exactly.

    A run that cannot be expected to finish (a failure long before any checkpoint completes: the expected time
    overflows) or an infinite steady time gives an infinite wall time and goodput 0."""
    try:
        return _model_goodput(steady_s, gpus, ckpt_bytes, failures_per_gpu_hour, storage_bytes_s, restart_s,
                              interval_s, async_checkpoint, maintenance_fraction, copy_bytes_per_gpu)
    except (OverflowError, ZeroDivisionError, ValueError):
        persist = ckpt_bytes / storage_bytes_s
        share = copy_bytes_per_gpu if copy_bytes_per_gpu is not None else ckpt_bytes / gpus
        blocking = share / HOST_COPY_BYTES_S if async_checkpoint else persist
        rate = failures_per_gpu_hour * gpus
        return Goodput(0.0, "model", steady_s, math.inf, job_mtbf_hours=1.0 / rate if rate > 0 else None,
                       checkpoint_bytes=ckpt_bytes, checkpoint_write_s=blocking, checkpoint_persist_s=persist,
                       checkpoint_interval_s=interval_s, restart_s=restart_s + persist,
                       notes=["the expected wall time is unbounded: failures come faster than checkpoints complete"
                              if math.isfinite(steady_s) else "the steady-state time is not finite"])


def _model_goodput(steady_s: float, gpus: int, ckpt_bytes: float, failures_per_gpu_hour: float,
                   storage_bytes_s: float, restart_s: float, interval_s: Optional[float],
                   async_checkpoint: bool, maintenance_fraction: float,
                   copy_bytes_per_gpu: Optional[float]) -> Goodput:
    if not math.isfinite(steady_s):
        raise OverflowError("infinite steady time")
    persist = ckpt_bytes / storage_bytes_s
    share = copy_bytes_per_gpu if copy_bytes_per_gpu is not None else ckpt_bytes / gpus
    blocking = share / HOST_COPY_BYTES_S if async_checkpoint else persist
    reload = ckpt_bytes / storage_bytes_s
    restart = restart_s + reload
    rate_s = failures_per_gpu_hour * gpus / 3600.0
    notes: list[str] = []
    if rate_s <= 0.0 or steady_s <= 0.0:
        tau = interval_s if interval_s else steady_s
        ckpt = (steady_s / tau) * blocking if tau > 0 else 0.0
        wall_f = steady_s + ckpt
        wall = wall_f / (1.0 - maintenance_fraction)
        return Goodput(steady_s / wall if wall > 0 else 1.0, "model", steady_s, wall, None, 0.0, 0.0, ckpt_bytes,
                       blocking, persist, tau, restart, 0.0, ckpt, 0.0, wall - wall_f, notes)
    mtbf = 1.0 / rate_s
    tau = interval_s if interval_s is not None else young_daly_interval(blocking, mtbf)
    if async_checkpoint and tau < persist:
        notes.append(f"asynchronous checkpoints cannot come faster than the storage write ({persist:.0f} s): "
                     "interval raised to it")
        tau = persist
    segments = steady_s / tau
    seg = expected_segment_s(tau, blocking, restart, mtbf)
    fails_per_seg = math.expm1((tau + blocking) / mtbf) * math.exp(restart / mtbf)
    restarts_per_seg = math.expm1((tau + blocking) / mtbf) * mtbf * math.expm1(restart / mtbf)
    extra_async = fails_per_seg * persist if async_checkpoint else 0.0  # one more interval lost within δ_w
    wall_f = segments * (seg + extra_async)
    lost_ckpt = segments * blocking
    lost_restart = segments * restarts_per_seg
    lost_fail = wall_f - steady_s - lost_ckpt - lost_restart
    wall = wall_f / (1.0 - maintenance_fraction)
    if not math.isfinite(wall):
        raise OverflowError("unbounded wall time")
    n_fail = segments * fails_per_seg
    return Goodput(
        fraction=steady_s / wall, source="model", steady_s=steady_s, wall_s=wall, job_mtbf_hours=mtbf / 3600.0,
        interruptions_expected=n_fail, interruptions_per_day=n_fail / (wall / 86400.0), checkpoint_bytes=ckpt_bytes,
        checkpoint_write_s=blocking, checkpoint_persist_s=persist, checkpoint_interval_s=tau, restart_s=restart,
        lost_failures_s=lost_fail, lost_checkpoints_s=lost_ckpt, lost_restarts_s=lost_restart,
        lost_maintenance_s=wall - wall_f, notes=notes)


def fixed_goodput(steady_s: float, fraction: float) -> Goodput:
    """``--goodput F``: wall = steady / F, no breakdown."""
    return Goodput(fraction=fraction, source="fixed", steady_s=steady_s, wall_s=steady_s / fraction)


def simulate(steady_s: float, interval_s: float, write_s: float, restart_s: float, mtbf_s: float,
             runs: int, seed: int = 0) -> tuple[float, float]:
    """Monte-Carlo check of ``expected_segment_s``: mean wall time and mean interruptions over ``runs`` runs.

    Failures are exponential inter-arrival times (also during restarts); a failure loses the segment in progress.
    Pure Python with ``random.Random(seed)``: for tests, small cases only."""
    import random

    rng = random.Random(seed)
    segments = max(1, round(steady_s / interval_s))
    seg_len = steady_s / segments + write_s
    total = 0.0
    fails = 0
    for _ in range(runs):
        t = 0.0
        for _s in range(segments):
            while True:
                x = rng.expovariate(1.0 / mtbf_s)
                if x >= seg_len:
                    t += seg_len
                    break
                t += x
                fails += 1
                while True:  # restart, itself interruptible
                    y = rng.expovariate(1.0 / mtbf_s)
                    if y >= restart_s:
                        t += restart_s
                        break
                    t += y
                    fails += 1
        total += t
    return total / runs, fails / runs
