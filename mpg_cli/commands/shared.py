"""What estimate, compare, fit, plan and report share: solving a request, its warnings and failed gates.

Commands do not import each other; what more than one of them needs lives here.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

from dataclasses import replace

from ..core.assumptions import Assumption
from ..core.estimate import Result, estimate, with_gates
from ..humanize import days_text
from ..errors import InputError
from ..humanize import fmt, signed_percent
from ..scenario import build_requests, checked_result


def _solve(req, days: Optional[float], budget_gpu_hours: Optional[float], note=None,
           confidence: Optional[float] = None) -> Result:
    """Plain estimate, or solve for GPUs (--days) or tokens (--budget-*), optionally at a --confidence."""
    sure = "" if confidence is None else f" with {confidence:.0%} probability (--confidence; cross-validated errors)"
    solved = {"confidence": confidence}
    if days is not None:
        from ..core.planning import gpus_for_days

        r = gpus_for_days(req, days, progress=note, confidence=confidence)
        if note:
            note("")
        if r is None:
            raise InputError(f"no GPU count up to 1,048,576 finishes {req.model.name} within {days_text(days)}{sure}")
        how = Assumption("gpus_for_days", r.request.gpus, "solved", ("--days",), {**solved, "days": days})
        return replace(r, assumptions=(how,) + r.assumptions)
    if budget_gpu_hours is not None:
        from ..core.planning import tokens_for_budget

        r = tokens_for_budget(req, budget_gpu_hours, confidence)
        how = Assumption("tokens_for_budget", r.tokens, "solved", ("--budget-gpu-hours", "--budget-usd"),
                         {**solved, "budget_gpu_hours": budget_gpu_hours})
        return replace(r, assumptions=(how,) + r.assumptions)
    return estimate(req)


def compute(opts: dict[str, Any], days: Optional[float] = None, budget_gpu_hours: Optional[float] = None) -> list[Result]:
    """Estimate every requested GPU count (or solve for the unknown) and apply the gates."""
    from ..inputs.merge import apply_from, with_file_notes

    opts = apply_from(opts)
    if opts.get("confidence") is not None and days is None and budget_gpu_hours is None:
        raise InputError("--confidence goes with --days or a budget (it sets the probability of finishing within it)",
                         hint="for a range on a plain estimate use --interval")
    results: list[Any] = []
    reqs = build_requests(opts)
    weak = bool(opts.get("weak_scaling"))
    if weak and len(reqs) < 2:
        raise InputError("--weak-scaling needs a list of GPU counts", hint="e.g. --gpus 64,128,256 --weak-scaling")
    for req in reqs:
        if weak and results:  # weak scaling: the first count's global batch, grown in proportion to the GPUs
            r0 = results[0]
            gbs = max(1, round(r0.global_batch * req.gpus / r0.request.gpus))
            req = replace(req, global_batch=gbs)
        r = checked_result(_solve(req, days, budget_gpu_hours, progress(opts), opts.get("confidence")), opts)
        r = with_gates(r, opts.get("max_days"), opts.get("max_gpu_hours"), opts.get("max_cost"),
                       bool(opts.get("require_fit")))
        if len(reqs) > 1:
            first = {"first_batch": results[0].global_batch, "first_gpus": results[0].request.gpus} if weak and results else {}
            scaling = Assumption("scaling", r.global_batch, "weak" if weak else "strong", ("--weak-scaling",),
                                 {"gpus": r.request.gpus, **first})
            r = replace(r, assumptions=(scaling,) + r.assumptions)
        results.append(r)
    return with_file_notes(results, opts)


def gate_lines(results: list[Result]) -> list[str]:
    """One stderr line per failed gate, e.g. 'gpu_hours 61,200 > 50,000 (+22.4%)'."""
    lines = []
    for r in results:
        tag = f"[{r.request.gpus} GPUs] " if len(results) > 1 else ""
        for c in r.checks:
            if c.passed:
                continue
            if c.name == "memory_bytes_per_gpu":
                lines.append(f"{tag}fits: {fmt(c.value, 'bytes')} per GPU > {fmt(c.limit, 'bytes')} usable "
                             f"({signed_percent(c.value / c.limit - 1)})")
            else:
                lines.append(f"{tag}{c.name} {_num(c.value)} > {_num(c.limit)} ({signed_percent(c.value / c.limit - 1)})")
    return lines


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"


def progress(opts: dict[str, Any]):
    """A progress callback for long searches: notes on stderr when it is a terminal (never with --quiet)."""
    if opts.get("quiet") or not sys.stderr.isatty():
        return None
    return lambda text: sys.stderr.write(f"\r\x1b[2K{text}")


def result_warnings(results: list[Result]) -> list[str]:
    """The results' warnings, and 'does not fit' for a result that does not fit without a memory gate saying so."""
    out: list[str] = []
    for r in results:
        out += r.warnings
        if not r.memory.fits and not any(c.name == "memory_bytes_per_gpu" for c in r.checks):
            out.append(f"does not fit: {fmt(r.memory.total, 'bytes')} per GPU > {fmt(r.memory.usable, 'bytes')} "
                       "usable; try 'mpg fit' for a layout that does")
    return out


def planning(opts: dict[str, Any], days: Optional[float], budget_gpu_hours: Optional[float],
             budget_usd: Optional[float]) -> Optional[float]:
    """Check the planning flags; returns the GPU-hour budget (a USD budget divided by the price)."""
    from ..parsing import check_positive

    for flag, v in (("--days", days), ("--budget-gpu-hours", budget_gpu_hours), ("--budget-usd", budget_usd)):
        check_positive(v, flag)
    if days is not None and opts.get("gpus"):
        raise InputError("--days solves for the GPU count: leave --gpus out",
                         hint="to check a deadline for a given GPU count use --max-days")
    if budget_gpu_hours is not None and budget_usd is not None:
        raise InputError("give one budget: --budget-gpu-hours or --budget-usd")
    if (budget_gpu_hours is not None or budget_usd is not None) and opts.get("tokens"):
        raise InputError("a budget solves for the tokens: leave --tokens out",
                         hint="to check a budget for given tokens use --max-gpu-hours or --max-cost")
    if opts.get("confidence") is not None and days is None and budget_gpu_hours is None and budget_usd is None:
        raise InputError("--confidence goes with --days or a budget (it sets the probability of finishing within it)",
                         hint="for a range on a plain estimate use --interval")
    if days is not None and (budget_gpu_hours is not None or budget_usd is not None):
        raise InputError("--days and a budget both leave something unknown: give one")
    if budget_usd is not None:
        price = opts.get("price")
        if price is None:
            reqs = build_requests(opts)
            c = reqs[0].cluster
            price = c.price_usd_per_gpu_hour or c.gpu.price_usd_per_hour
        if not price:
            raise InputError("--budget-usd needs a price: the presets have none for this GPU", hint="give --price")
        return budget_usd / price
    return budget_gpu_hours
