"""One formatter for people: every number a table shows goes through ``fmt``.

Bytes use base 1024 and say GiB; FLOPs and FLOP/s use base 1000 (calculon's rule, style.md).
Machine formats (JSON, CSV) never use this: they carry raw SI numbers.
"""

from __future__ import annotations

import math
from typing import Optional


def _sig(x: float, digits: int = 3) -> str:
    if x == 0:
        return "0"
    mag = int(math.floor(math.log10(abs(x))))
    decimals = max(0, digits - 1 - mag)
    return f"{x:,.{decimals}f}"


def fmt(value: Optional[float], kind: str) -> str:
    """Format ``value`` as ``kind``: days, seconds, gpu_hours, usd, flops, tflops, bytes, percent,
    count, params, tokens, kwh, tokens_s."""
    if value is None:
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    v = float(value)
    if kind == "days":
        return f"{_sig(v)} days"
    if kind == "seconds":
        if v == 0:
            return "0 s"
        if v < 1e-3:
            return f"{v * 1e6:.1f} µs"
        if v < 1:
            return f"{v * 1e3:.1f} ms"
        if v < 120:
            return f"{v:.2f} s"
        return f"{v / 60:.1f} min" if v < 7200 else f"{v / 3600:.1f} h"
    if kind == "gpu_hours":
        return f"{v:,.0f} GPU-h"
    if kind == "usd":
        return f"${v:,.0f}" if v >= 100 else f"${v:,.2f}"
    if kind == "kwh":
        return f"{v / 1000:,.1f} MWh" if v >= 10_000 else f"{v:,.0f} kWh"
    if kind == "flops":
        return f"{v:.3g} FLOP"
    if kind == "tflops":
        return f"{v:,.1f} TFLOP/s"
    if kind == "bytes":
        return f"{v / 1024**3:,.1f} GiB"
    if kind == "percent":
        return f"{v * 100:.1f}%"
    if kind in ("params", "tokens"):
        for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
            if abs(v) >= scale:
                return f"{_sig(v / scale, 4)}{unit}"
        return f"{v:,.0f}"
    if kind == "tokens_s":
        return f"{v:,.0f} tok/s"
    if kind == "count":
        return f"{v:,.0f}"
    return f"{v:g}"


def signed_percent(ratio: float) -> str:
    """+22.4% style change for a ratio-1 value."""
    return f"{ratio * 100:+.1f}%"


def days_text(days: float) -> str:
    """'1 day', '30 days', '1.5 days'."""
    return f"{days:g} day" if days == 1 else f"{days:g} days"
