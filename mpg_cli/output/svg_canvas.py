"""The SVG primitives the charts are drawn with: escaping, numbers, the Okabe-Ito palette, ticks, axes, the canvas.

See ``svg.py`` for the conventions (palette, escaping, tick rules) and the chart types.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

# Okabe-Ito: black, orange, sky blue, bluish green, yellow, blue, vermillion, reddish purple
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73", "yellow": "#F0E442",
             "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7"}
SERIES = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
GREY = "#6b6b6b"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def esc(text: object) -> str:
    """User text for XML: control characters removed (tab, newline kept as a space), & < > " ' escaped."""
    s = _CONTROL.sub("", str(text)).replace("\t", " ").replace("\r", " ").replace("\n", " ")
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;").replace("'", "&#39;")


def _n(x: float) -> str:
    """A coordinate: finite, two decimals at most (raises on NaN/inf so they never reach the file)."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"not a finite coordinate: {x!r}")
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def text_width(s: str, size: float) -> float:
    """Approximate rendered width of ``s`` at font ``size`` (0.58 em per character, sans-serif average)."""
    return 0.58 * size * len(s)


def short(x: float) -> str:
    """Compact tick label: 1.5k, 20M, 3.2B, 0.25, 12."""
    if x == 0:
        return "0"
    a = abs(x)
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if a >= scale:
            v = x / scale
            return f"{v:.3g}{unit}"
    if a >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` ticks at 1-2-5 multiples covering [lo, hi] (Heckbert 1990)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("axis limits must be finite")
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, count - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step + 1e-9) * step
    ticks = []
    v = start
    while v <= hi + step * 1e-9 + step:
        ticks.append(round(v, 12))
        if v >= hi - step * 1e-9:
            break
        v += step
    return ticks


def log_ticks(lo: float, hi: float, base2: bool = False) -> list[float]:
    """Ticks for a log axis covering [lo, hi] (both > 0): powers of two (``base2``); else the axis ends on
    1-2-5 values and every 1-2-5 value between is a tick, or, when that is over ten ticks, the axis spans
    whole decades ticked at the powers of ten."""
    if lo <= 0 or hi <= 0 or not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("log axis limits must be positive and finite")
    if hi < lo:
        lo, hi = hi, lo
    if base2:
        a, b = math.floor(math.log2(lo) + 1e-9), math.ceil(math.log2(hi) - 1e-9)
        ticks = [2.0 ** k for k in range(a, b + 1)]
        while len(ticks) > 9:
            ticks = ticks[::2]
        return ticks
    a, b = math.floor(math.log10(lo) + 1e-9), math.ceil(math.log10(hi) - 1e-9)
    if b == a:
        b = a + 1
    ticks = [m * 10.0 ** k for k in range(a, b + 1) for m in (1, 2, 5)]
    lo_t = max(t for t in ticks if t <= lo * (1 + 1e-9))
    hi_t = min(t for t in ticks if t >= hi * (1 - 1e-9))
    inside = [t for t in ticks if lo_t <= t <= hi_t]
    if len(inside) <= 10:
        return inside
    return [10.0 ** k for k in range(a, b + 1)]


@dataclass
class Axis:
    """A value range mapped onto pixels; ``log`` for a logarithmic scale."""

    lo: float
    hi: float
    log: bool = False
    ticks: list[float] = field(default_factory=list)
    label: str = ""
    fmt: Callable[[float], str] = short

    @classmethod
    def fit(cls, values: Sequence[float], label: str, log: bool = False, zero: bool = True, base2: bool = False,
            fmt: Callable[[float], str] = short, count: int = 5) -> "Axis":
        """An axis whose ticks cover ``values`` (from 0 when ``zero`` on a linear axis)."""
        vals = [float(v) for v in values if v is not None and math.isfinite(v)]
        if log:
            vals = [v for v in vals if v > 0] or [1.0]
            ticks = log_ticks(min(vals), max(vals), base2)
            return cls(ticks[0], ticks[-1], True, ticks, label, fmt)
        vals = vals or [0.0, 1.0]
        lo = min(vals + [0.0]) if zero else min(vals)
        hi = max(vals)
        ticks = nice_ticks(lo, hi, count)
        return cls(ticks[0], ticks[-1], False, ticks, label, fmt)

    def frac(self, v: float) -> float:
        """Position of ``v`` as a fraction 0..1 of the axis length."""
        if self.log:
            v = max(v, self.lo * 1e-6)
            return (math.log(v) - math.log(self.lo)) / ((math.log(self.hi) - math.log(self.lo)) or 1.0)
        return (v - self.lo) / ((self.hi - self.lo) or 1.0)


class Canvas:
    """An SVG document being assembled: a title, a plot rectangle and the elements inside it."""

    def __init__(self, width: int, height: int, title: str, desc: str = "", left: float = 64, right: float = 20,
                 top: float = 44, bottom: float = 52, chart_id: str = "chart") -> None:
        self.w, self.h = width, height
        self.left, self.right, self.top, self.bottom = left, width - right, top, height - bottom
        self.id = re.sub(r"[^A-Za-z0-9_-]", "-", chart_id) or "chart"
        self.parts: list[str] = []
        self.title = title
        self.desc = desc

    # ---- primitives
    def text(self, x: float, y: float, s: str, size: float = 12, anchor: str = "start", cls: str = "",
             weight: str = "", rotate: Optional[float] = None, fill: str = "") -> None:
        attrs = [f'x="{_n(x)}"', f'y="{_n(y)}"', f'font-size="{_n(size)}"']
        if anchor != "start":
            attrs.append(f'text-anchor="{anchor}"')
        if cls:
            attrs.append(f'class="{cls}"')
        if weight:
            attrs.append(f'font-weight="{weight}"')
        if fill:
            attrs.append(f'fill="{fill}"')
        if rotate is not None:
            attrs.append(f'transform="rotate({_n(rotate)} {_n(x)} {_n(y)})"')
        self.parts.append(f"<text {' '.join(attrs)}>{esc(s)}</text>")

    def rect(self, x: float, y: float, w: float, h: float, fill: str, cls: str = "", tip: str = "",
             stroke: str = "") -> None:
        extra = f' class="{cls}"' if cls else ""
        extra += f' stroke="{stroke}" stroke-width="1"' if stroke else ""
        body = f"<title>{esc(tip)}</title>" if tip else ""
        self.parts.append(f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(max(w, 0))}" height="{_n(max(h, 0))}" '
                          f'fill="{fill}"{extra}>{body}</rect>' if body else
                          f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(max(w, 0))}" height="{_n(max(h, 0))}" '
                          f'fill="{fill}"{extra}/>')

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = "#000", width: float = 1,
             dash: str = "", cls: str = "") -> None:
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        extra += f' class="{cls}"' if cls else ""
        self.parts.append(f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" stroke="{stroke}" '
                          f'stroke-width="{_n(width)}"{extra}/>')

    def polyline(self, pts: Sequence[tuple[float, float]], stroke: str, width: float = 2, dash: str = "",
                 cls: str = "") -> None:
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        extra += f' class="{cls}"' if cls else ""
        p = " ".join(f"{_n(x)},{_n(y)}" for x, y in pts)
        self.parts.append(f'<polyline points="{p}" fill="none" stroke="{stroke}" stroke-width="{_n(width)}"{extra}/>')

    def marker(self, x: float, y: float, shape: str, fill: str, r: float = 3.5, tip: str = "", cls: str = "",
               stroke: str = "") -> None:
        """A point: 'circle', 'square', 'diamond', 'triangle' or 'cross' (shapes tell series apart without colour)."""
        body = f"<title>{esc(tip)}</title>" if tip else ""
        c = f' class="{cls}"' if cls else ""
        s = f' stroke="{stroke}" stroke-width="1.5"' if stroke else ""
        if shape == "circle":
            el = f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(r)}" fill="{fill}"{s}{c}'
        elif shape == "square":
            el = f'<rect x="{_n(x - r)}" y="{_n(y - r)}" width="{_n(2 * r)}" height="{_n(2 * r)}" fill="{fill}"{s}{c}'
        else:
            if shape == "diamond":
                pts = [(x, y - r * 1.3), (x + r * 1.3, y), (x, y + r * 1.3), (x - r * 1.3, y)]
            elif shape == "triangle":
                pts = [(x, y - r * 1.3), (x + r * 1.2, y + r), (x - r * 1.2, y + r)]
            else:  # cross (an x)
                pts = [(x - r, y - r), (x + r, y + r), (x, y), (x + r, y - r), (x - r, y + r), (x, y)]
            ps = " ".join(f"{_n(a)},{_n(b)}" for a, b in pts)
            if shape == "cross":
                el = f'<polyline points="{ps}" fill="none" stroke="{fill}" stroke-width="1.5"{c}'
            else:
                el = f'<polygon points="{ps}" fill="{fill}"{s}{c}'
        self.parts.append(f"{el}>{body}</{el.split()[0][1:]}>" if body else f"{el}/>")

    # ---- axes
    def x_of(self, ax: Axis, v: float) -> float:
        return self.left + ax.frac(v) * (self.right - self.left)

    def y_of(self, ax: Axis, v: float) -> float:
        return self.bottom - ax.frac(v) * (self.bottom - self.top)

    def x_axis(self, ax: Axis, grid: bool = True) -> None:
        self.line(self.left, self.bottom, self.right, self.bottom, "#333", 1, cls="axis x-axis")
        for t in ax.ticks:
            x = self.x_of(ax, t)
            if grid:
                self.line(x, self.top, x, self.bottom, "#e3e3e3", 1, cls="grid")
            self.line(x, self.bottom, x, self.bottom + 4, "#333", 1, cls="tick")
            self.text(x, self.bottom + 17, ax.fmt(t), 11, "middle", cls="tick-label x-tick")
        self.text((self.left + self.right) / 2, self.h - 10, ax.label, 12, "middle", cls="axis-label x-label")

    def y_axis(self, ax: Axis, grid: bool = True) -> None:
        self.line(self.left, self.top, self.left, self.bottom, "#333", 1, cls="axis y-axis")
        for t in ax.ticks:
            y = self.y_of(ax, t)
            if grid:
                self.line(self.left, y, self.right, y, "#e3e3e3", 1, cls="grid")
            self.line(self.left - 4, y, self.left, y, "#333", 1, cls="tick")
            self.text(self.left - 7, y + 4, ax.fmt(t), 11, "end", cls="tick-label y-tick")
        cy = (self.top + self.bottom) / 2
        self.text(14, cy, ax.label, 12, "middle", cls="axis-label y-label", rotate=-90)

    def legend(self, items: Sequence[tuple[str, str, str]], y: Optional[float] = None) -> None:
        """(label, colour, shape) items in a row under the title; shape 'bar', 'line', 'dash' or a marker."""
        x = self.left
        y = self.top - 14 if y is None else y
        for label, colour, shape in items:
            if x + 28 + text_width(label, 11) > self.w - 4 and x > self.left:
                x, y = self.left, y + 15  # wrap onto a second row
            if shape == "bar":
                self.rect(x, y - 9, 12, 10, colour, cls="legend-key")
            elif shape in ("line", "dash"):
                self.line(x, y - 4, x + 14, y - 4, colour, 2, "4 3" if shape == "dash" else "", cls="legend-key")
            else:
                self.marker(x + 6, y - 4, shape, colour, 4, cls="legend-key")
            self.text(x + 18, y, label, 11, cls="legend")
            x += 28 + text_width(label, 11)

    def svg(self) -> str:
        tid = f"{self.id}-title"
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{self.id}" viewBox="0 0 {self.w} {self.h}" '
                f'width="{self.w}" height="{self.h}" role="img" aria-labelledby="{tid}" font-family="{esc(FONT)}">'
                f'<title id="{tid}">{esc(self.title)}</title>')
        if self.desc:
            head += f"<desc>{esc(self.desc)}</desc>"
        title = f'<text x="{_n(12)}" y="{_n(20)}" font-size="15" font-weight="600" class="chart-title">{esc(self.title)}</text>'
        return head + title + "".join(self.parts) + "</svg>"


def _clip_label(s: str, size: float, max_px: float) -> str:
    if text_width(s, size) <= max_px + 0.5:
        return s
    keep = max(3, int(max_px / (0.58 * size)) - 1)
    return s[:keep] + "…"
