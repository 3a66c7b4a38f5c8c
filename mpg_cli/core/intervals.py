"""Uncertainty ranges: empirical quantiles of the step-time model's cross-validated log errors.

For each published run, ``r = log(predicted / measured)`` tokens/s, predicted with constants fitted without
the run's source (leave one source out; ``scripts/fit_perf.py`` stores the sorted residuals per class in
``perf_constants.json`` → ``provenance.cv_log_residuals``). A positive residual means the model predicted too
high, so the true throughput of a new run lies in ``predicted·e^{−q_hi} … predicted·e^{−q_lo}`` with the
stated probability, where ``q_lo``/``q_hi`` are the empirical ``(1∓level)/2`` quantiles (linear interpolation,
Hyndman & Fan 1996 type 7). Time, GPU-hours, cost and energy are inversely proportional to throughput, so
their range is ``central·e^{q_lo} … central·e^{q_hi}``.

Class: the run's kind (``moe`` / ``dense-fp8`` / ``dense-bf16``) or its GPU generation, whichever is the
smaller (more specific) set with at least ``MIN_RUNS`` runs, else ``all``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

MIN_RUNS = 20  # an 80 % range from 20 runs rests on the 2nd-lowest and 2nd-highest residual
DEFAULT_LEVEL = 0.8


@dataclass(frozen=True)
class Interval:
    """A range at ``level`` for the estimate's throughput and what follows from it."""

    level: float
    basis: str  # what the range reflects, in words
    residual_class: str
    runs: int
    tokens_per_second: tuple[float, float]
    days: tuple[float, float]
    gpu_hours: tuple[float, float]
    cost_usd: Optional[tuple[float, float]]
    energy_kwh: Optional[tuple[float, float]]

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level, "basis": self.basis, "class": self.residual_class, "runs": self.runs,
                "tokens_per_second": list(self.tokens_per_second), "days": list(self.days),
                "gpu_hours": list(self.gpu_hours),
                "cost_usd": list(self.cost_usd) if self.cost_usd else None,
                "energy_kwh": list(self.energy_kwh) if self.energy_kwh else None}


def quantile(sorted_values: Sequence[float], p: float) -> float:
    """Empirical quantile, linear interpolation between order statistics (Hyndman & Fan type 7)."""
    xs = sorted(sorted_values)
    if not xs:
        raise ValueError("no values")
    h = (len(xs) - 1) * p
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


def log_error_bounds(residuals: Sequence[float], level: float) -> tuple[float, float]:
    """(q_lo, q_hi): the (1−level)/2 and (1+level)/2 quantiles of the log errors."""
    return quantile(residuals, (1.0 - level) / 2.0), quantile(residuals, (1.0 + level) / 2.0)


def upper_log_error(residuals: Sequence[float], confidence: float) -> float:
    """The one-sided ``confidence`` quantile: the true time is at most central·e^q with that probability."""
    return quantile(residuals, confidence)


def choose_class(cv_log_residuals: dict[str, Any], kind: str, generation: str, min_runs: int = MIN_RUNS) -> str:
    """The smaller of the kind and generation classes that has ``min_runs`` runs, else 'all'."""
    options = [c for c in (kind, generation) if len(cv_log_residuals.get(c, ())) >= min_runs]
    if not options:
        return "all"
    return min(options, key=lambda c: len(cv_log_residuals[c]))


def run_kind(is_moe: bool, precision: str) -> str:
    """The validation class name of a run: moe, dense-fp8 or dense-bf16."""
    return "moe" if is_moe else ("dense-fp8" if precision == "fp8" else "dense-bf16")


def propagate(level: float, basis: str, cls: str, residuals: Sequence[float], tps: float, days: float,
              gpu_hours: float, cost: Optional[float], energy: Optional[float]) -> Interval:
    """The range for one estimate from log-error residuals (module docstring)."""
    q_lo, q_hi = log_error_bounds(residuals, level)
    lo, hi = math.exp(q_lo), math.exp(q_hi)
    return Interval(level, basis, cls, len(residuals), (tps / hi, tps / lo), (days * lo, days * hi),
                    (gpu_hours * lo, gpu_hours * hi), None if cost is None else (cost * lo, cost * hi),
                    None if energy is None else (energy * lo, energy * hi))


def poisson_quantile(mean: float, p: float) -> int:
    """Smallest k with P(N ≤ k) ≥ p for N ~ Poisson(mean) (normal approximation above mean 500)."""
    if not mean > 0:
        return 0
    if mean > 500:
        from statistics import NormalDist

        return max(0, math.ceil(mean + NormalDist().inv_cdf(p) * math.sqrt(mean) - 0.5))
    term = math.exp(-mean)
    cdf, k = term, 0
    while cdf < p:
        k += 1
        term *= mean / k
        cdf += term
    return k


def goodput_only(level: float, tps: float, days: float, gpu_hours: float, cost: Optional[float],
                 energy: Optional[float], interruptions: float, lost_per_interruption_s: float) -> Interval:
    """With --tflops/--mfu the throughput is given: the range is the spread of the interruption count only
    (Poisson, as the goodput model assumes), each interruption costing its mean loss."""
    if not (interruptions > 0 and math.isfinite(interruptions) and math.isfinite(lost_per_interruption_s)
            and math.isfinite(days) and days > 0):
        return Interval(level, "goodput only (throughput given); no interruptions expected", "-", 0,
                        (tps, tps), (days, days), (gpu_hours, gpu_hours),
                        None if cost is None else (cost, cost), None if energy is None else (energy, energy))
    k_lo = poisson_quantile(interruptions, (1.0 - level) / 2.0)
    k_hi = poisson_quantile(interruptions, (1.0 + level) / 2.0)
    wall = days * 86400.0
    lo = max(1e-9, (wall + (k_lo - interruptions) * lost_per_interruption_s) / wall)
    hi = (wall + (k_hi - interruptions) * lost_per_interruption_s) / wall
    return Interval(level, "goodput only (throughput given): the spread of the interruption count", "-", 0,
                    (tps, tps), (days * lo, days * hi), (gpu_hours * lo, gpu_hours * hi),
                    None if cost is None else (cost * lo, cost * hi), None if energy is None else (energy * lo, energy * hi))
