"""Uncertainty ranges from the step-time model's cross-validated log errors, calibrated on whole source families.

For each published run, ``e = log(predicted / measured)`` tokens/s, predicted with constants fitted without
the run's source family (leave one family out; ``scripts/fit_perf.py`` stores one record per run, its family,
its GPU generation and ``e``, in ``perf_constants.json`` → ``provenance.cv_runs``). A positive error means the
model predicted too high. A new estimate is, for the purpose of its range, a run of a source family mpg has never
seen, and errors are correlated within a family (a family's runs share a bias). So the range is built in three
steps (``range_model``):

1. **Class.** The run's GPU generation (the step-time constants are fitted per generation, ``gemm_eta.<gen>``),
   when runs of at least ``MIN_FAMILIES`` families have it, else every run (class ``all``).
2. **Centre and scale: a two-level spread** (one-way random-effects model ``e = μ + b_family + w``, estimated by
   the method of moments: Searle, Casella & McCulloch 1992, *Variance Components*, §3.5; ``two_level``). The
   centre ``μ`` is the mean of the class's family means (each family one vote, however many runs it has); the
   within-family variance ``σ²`` pools the deviations from each family's mean; the between-family variance is
   ``τ² = max(0, Var(family means) − σ²·mean(1/n_f))``. A run of a new family deviates from ``μ`` by its
   family's effect, its own scatter and the error of ``μ`` itself, so the scale is
   ``s = √(τ² + σ² + (τ² + σ²·mean(1/n_f))/K)`` for ``K`` families (the last term is Var(mean of K family means)).
   A class with one family borrows ``τ²`` from all classes (pooled around each class's centre); a class with no
   within-family degrees of freedom borrows ``σ²`` alike.
3. **Width: conformal calibration over families** (split-conformal prediction with a normalised score, Lei, G'Sell,
   Rinaldo, Tibshirani & Wasserman 2018, *JASA* 113:1094, §5.2; one score distribution pooled over groups with
   each group weighted equally, Dunn, Wasserman & Ramdas 2022, *JASA* 118:2491, "pooling CDFs"). Every family
   is left out in turn; the others give its runs' class centre and scale, and each of its runs scores
   ``z = (e − μ)/s``, weighted ``1/n_f`` so that every family counts once. The two-sided range at ``level`` is
   ``μ ± s·q`` with ``q`` the ``|z|`` at rank ``level·(K+1)`` of the ``K`` families' scores: the new family is
   the ``K+1``-th, and with families exchangeable its score falls below the ``k``-th smallest of ``K`` with
   probability ``k/(K+1)`` (the conformal rank; Hyndman & Fan 1996 definition 6). Between ranks ``q`` is
   interpolated, so the range holds with probability about ``level`` rather than at least it (the
   round-up-to-a-rank conformal set over-covers by up to ``1/(K+1)``, 8 points at 12 families); the
   one-sided bound at ``confidence`` uses the signed ``z`` alike. A level that ``K`` families cannot reach
   takes the largest score, and the range says so.

The true throughput of a new run then lies in ``predicted·e^{−hi} … predicted·e^{−lo}``; time, GPU-hours, cost
and energy are inversely proportional to throughput, so their range is ``central·e^{lo} … central·e^{hi}``.
A calibrated estimate (``--calibration``) uses the empirical quantiles of its projection errors instead
(``log_error_bounds``, Hyndman & Fan 1996 type 7), as ``mpg_cli/calibrated_ranges.py`` documents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Mapping, Optional, Sequence

MIN_FAMILIES = 2  # a class's centre needs two families: with one, μ would be that family's own bias
DEFAULT_LEVEL = 0.8
ALL = "all"


@dataclass(frozen=True)
class CvRecord:
    """One published run's cross-validated log error, with the family and class it belongs to."""

    family: str
    group: str  # the range class: the run's GPU generation
    log_error: float


def records_from(provenance: Mapping[str, Any]) -> tuple[CvRecord, ...]:
    """The per-run records stored by ``scripts/fit_perf.py`` (``provenance.cv_runs``); empty when absent."""
    rows = provenance.get("cv_runs") or ()
    return tuple(CvRecord(str(r["family"]), str(r["generation"]), float(r["log_error"])) for r in rows
                 if r.get("log_error") is not None and math.isfinite(float(r["log_error"])))


@dataclass(frozen=True)
class TwoLevel:
    """Centre and predictive scale of a class's log errors (module docstring, step 2)."""

    centre: float
    scale: float
    families: int
    runs: int


def _families(records: Iterable[CvRecord]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for r in records:
        out.setdefault(r.family, []).append(r.log_error)
    return out


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def _moments(fams: Mapping[str, Sequence[float]]) -> tuple[float, float, int, float, int, float]:
    """(μ, within SS, within df, between SS of family means, K, mean 1/n_f)."""
    means = {f: _mean(v) for f, v in fams.items()}
    mu = _mean(list(means.values()))
    ssw = sum((x - means[f]) ** 2 for f, v in fams.items() for x in v)
    dfw = sum(len(v) - 1 for v in fams.values())
    ssb = sum((m - mu) ** 2 for m in means.values())
    return mu, ssw, dfw, ssb, len(fams), _mean([1.0 / len(v) for v in fams.values()])


def two_level(records: Sequence[CvRecord]) -> dict[str, TwoLevel]:
    """Per class (and ``all``): the family-mean centre and the scale of a new family's run (module docstring)."""
    by_group: dict[str, list[CvRecord]] = {}
    for r in records:
        by_group.setdefault(r.group, []).append(r)
    if not records:
        return {}
    per = {g: _moments(_families(rs)) for g, rs in by_group.items()}
    # pooled over classes, each around its own centre: what a class too small to show a component borrows
    ssw_p, dfw_p = sum(p[1] for p in per.values()), sum(p[2] for p in per.values())
    ssb_p, dfb_p = sum(p[3] for p in per.values()), sum(p[4] - 1 for p in per.values())
    inv_p = _mean([1.0 / len(v) for rs in by_group.values() for v in _families(rs).values()])
    s2_pool = ssw_p / dfw_p if dfw_p > 0 else 0.0
    t2_pool = max(0.0, ssb_p / dfb_p - s2_pool * inv_p) if dfb_p > 0 else 0.0
    out: dict[str, TwoLevel] = {}
    items = list(per.items()) + [(ALL, _moments(_families(records)))]
    for g, (mu, ssw, dfw, ssb, k, inv_n) in items:
        s2 = ssw / dfw if dfw > 0 else s2_pool
        t2 = max(0.0, ssb / (k - 1) - s2 * inv_n) if k > 1 else t2_pool
        scale = math.sqrt(t2 + s2 + (t2 + s2 * inv_n) / k)
        n = len(records) if g == ALL else len(by_group[g])
        out[g] = TwoLevel(mu, max(scale, 1e-9), k, n)
    return out


def class_of(stats: Mapping[str, TwoLevel], group: str, min_families: int = MIN_FAMILIES) -> str:
    """The run's own class when ``min_families`` families have runs of it, else ``all``."""
    s = stats.get(group)
    return group if s is not None and s.families >= min_families else ALL


@dataclass(frozen=True)
class RangeModel:
    """A class's centre and scale and the family-calibrated scores (module docstring); ``bounds`` gives a range."""

    cls: str
    centre: float
    scale: float
    class_families: int
    class_runs: int
    families: int  # K: the families whose scores calibrate the width
    scores: tuple[tuple[float, float], ...]  # (signed z, weight 1/n_f), sorted by z

    def _rank(self, values: Sequence[tuple[float, float]], p: float) -> tuple[float, bool]:
        """The value at conformal rank p·(K+1) among the weighted scores (module docstring, step 3).

        Each score sits at rank (weight before it) + w/2 + 1/2, so with one run per family the k-th smallest is
        at rank k, where a new family's score falls below it with probability k/(K+1) (Hyndman & Fan 1996,
        definition 6); between ranks the value is interpolated. (value, False) when p·(K+1) lies beyond the
        scores: the nearest end is returned and the level is not supported."""
        pos, acc = [], 0.0
        for v, w in values:
            pos.append((acc + w / 2 + 0.5, v))
            acc += w
        r = p * (self.families + 1)
        if r < pos[0][0]:
            return pos[0][1], False
        if r > pos[-1][0]:
            return pos[-1][1], False
        for (r0, v0), (r1, v1) in zip(pos, pos[1:]):
            if r0 <= r <= r1:
                return (v0 + (v1 - v0) * (r - r0) / (r1 - r0) if r1 > r0 else v1), True
        return pos[-1][1], True

    def bounds(self, level: float) -> tuple[float, float, bool]:
        """(lo, hi, exact): the log-error range at ``level``; exact is False when level·(K+1) lies beyond the ranks."""
        q, exact = self._rank(sorted((abs(z), w) for z, w in self.scores), level)
        return self.centre - self.scale * q, self.centre + self.scale * q, exact

    def upper(self, confidence: float) -> float:
        """One-sided: the log error stays below this with probability ``confidence`` (signed scores)."""
        z, _ = self._rank(self.scores, confidence)
        return self.centre + self.scale * z

    def basis(self, level: float) -> str:
        """What the range rests on, in words."""
        exact = self.bounds(level)[2]
        return (f"cross-validated step-time errors of the published runs: centre and two-level (family + within) "
                f"spread of the {self.class_runs} '{self.cls}' runs from {self.class_families} source families, "
                f"width calibrated on {self.families} left-out families"
                + ("" if exact else f" (a {level:.0%} level needs more than {self.families} families: the widest "
                                    "score is used, so the range may hold less often)"))


@lru_cache(maxsize=64)
def _scores(records: tuple[CvRecord, ...], min_families: int) -> tuple[tuple[float, float], ...]:
    fams = sorted({r.family for r in records})
    out: list[tuple[float, float]] = []
    for g in fams:
        rest = tuple(r for r in records if r.family != g)
        stats = two_level(rest)
        mine = [r for r in records if r.family == g]
        for r in mine:
            s = stats[class_of(stats, r.group, min_families)]
            out.append(((r.log_error - s.centre) / s.scale, 1.0 / len(mine)))
    return tuple(sorted(out))


@lru_cache(maxsize=256)
def range_model(records: tuple[CvRecord, ...], group: str, exclude_family: Optional[str] = None,
                min_families: int = MIN_FAMILIES) -> Optional[RangeModel]:
    """The range model for a run of ``group`` from ``records`` (without ``exclude_family``'s runs, as the
    coverage check asks); None with fewer than two families, where no family can be left out and predicted."""
    recs = tuple(r for r in records if r.family != exclude_family)
    fams = {r.family for r in recs}
    if len(fams) < 2:
        return None
    stats = two_level(recs)
    cls = class_of(stats, group, min_families)
    s = stats[cls]
    return RangeModel(cls, s.centre, s.scale, s.families, s.runs, len(fams), _scores(recs, min_families))


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


def propagate(level: float, basis: str, cls: str, runs: int, log_bounds: tuple[float, float], tps: float,
              days: float, gpu_hours: float, cost: Optional[float], energy: Optional[float]) -> Interval:
    """The range for one estimate from log-error bounds (q_lo, q_hi) (module docstring)."""
    q_lo, q_hi = log_bounds
    lo, hi = math.exp(q_lo), math.exp(q_hi)
    return Interval(level, basis, cls, runs, (tps / hi, tps / lo), (days * lo, days * hi),
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
