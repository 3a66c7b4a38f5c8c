"""Small SVG charts, written as text: axes, ticks (linear and log), labels, bars, stacked bars, lines, scatter.

Every chart is one ``<svg>`` element with a ``<title>``, a visible title, axis labels with units and real
``<text>`` elements (searchable, selectable, readable by screen readers). Colours are the Okabe-Ito
palette (Okabe & Ito 2008, "Color Universal Design"; Wong 2011, Nature Methods 8:441), safe for the
common colour-vision deficiencies; series are also told apart by position, marker shape or dash, never
by colour alone. All user text is XML-escaped with control characters removed (``esc``); a coordinate that
is not a finite number raises instead of writing ``nan`` into the file.

Tick choice: linear axes use the 1-2-5 "nice numbers" rule (Heckbert 1990, "Nice numbers for graph
labels", Graphics Gems); log axes put ticks at powers of ten, or at 1-2-5 within each decade, or at
powers of two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from .svg_canvas import (  # noqa: F401 - the primitives are re-exported: svg is the module callers import
    FONT,
    GREY,
    OKABE_ITO,
    SERIES,
    Axis,
    Canvas,
    _clip_label,
    esc,
    log_ticks,
    nice_ticks,
    short,
    text_width,
)


# ---------------------------------------------------------------- chart types

def hbar_chart(title: str, labels: Sequence[str], values: Sequence[float], xlabel: str, value_text: Sequence[str] = (),
               colours: Sequence[str] = (), width: int = 560, chart_id: str = "hbar", desc: str = "",
               fmt: Callable[[float], str] = short, highlight: Optional[int] = None) -> str:
    """Horizontal bars, one per label, from zero; ``value_text`` printed at each bar's end."""
    if len(labels) != len(values):
        raise ValueError("labels and values differ in length")
    label_px = min(width * 0.42, max([text_width(str(s), 12) for s in labels] + [40]) + 16)
    row = 26
    height = int(44 + 14 + row * max(1, len(labels)) + 48)
    c = Canvas(width, height, title, desc, left=label_px, right=90, top=50, chart_id=chart_id)
    ax = Axis.fit(values, xlabel, fmt=fmt)
    c.x_axis(ax)
    for i, (lab, v) in enumerate(zip(labels, values)):
        y = c.top + i * row + 4
        colour = colours[i % len(colours)] if colours else SERIES[0]
        tip = f"{lab}: {value_text[i] if value_text else fmt(v)}"
        c.rect(c.left, y, c.x_of(ax, v) - c.left, row - 8, colour, cls="bar", tip=tip,
               stroke="#000" if highlight == i else "")
        c.text(c.left - 6, y + row / 2, _clip_label(str(lab), 12, label_px - 12), 12, "end", cls="bar-label",
               weight="600" if highlight == i else "")
        c.text(c.x_of(ax, v) + 5, y + row / 2, value_text[i] if value_text else fmt(v), 11, cls="value-label")
    return c.svg()


def stacked_hbar_chart(title: str, labels: Sequence[str], parts: Sequence[str], values: Sequence[Sequence[float]],
                       xlabel: str, colours: Sequence[str] = SERIES, markers: Sequence[tuple[str, float, str, str]] = (),
                       totals_text: Sequence[str] = (), width: int = 640, chart_id: str = "stacked",
                       desc: str = "", fmt: Callable[[float], str] = short) -> str:
    """One horizontal bar per label, stacked by part; ``markers`` are vertical lines (name, value, colour, dash)."""
    if any(len(v) != len(parts) for v in values) or len(values) != len(labels):
        raise ValueError("values must be one row per label and one column per part")
    label_px = min(width * 0.35, max([text_width(str(s), 12) for s in labels] + [40]) + 16)
    row = 30
    height = int(70 + row * max(1, len(labels)) + 50)
    c = Canvas(width, height, title, desc, left=label_px, right=80, top=66, chart_id=chart_id)
    totals = [sum(v) for v in values]
    ax = Axis.fit(totals + [m[1] for m in markers], xlabel, fmt=fmt)
    c.x_axis(ax)
    c.legend([(p, colours[i % len(colours)], "bar") for i, p in enumerate(parts)], y=c.top - 28)
    for i, (lab, vals) in enumerate(zip(labels, values)):
        y = c.top + i * row + 5
        x = c.left
        for j, v in enumerate(vals):
            w = c.x_of(ax, v) - c.x_of(ax, 0)
            c.rect(x, y, w, row - 10, colours[j % len(colours)], cls="segment", tip=f"{lab} · {parts[j]}: {fmt(v)}")
            x += w
        c.text(c.left - 6, y + row / 2, _clip_label(str(lab), 12, label_px - 12), 12, "end", cls="bar-label")
        c.text(x + 5, y + row / 2, totals_text[i] if totals_text else fmt(totals[i]), 11, cls="value-label")
    legend = []
    for name, v, colour, dash in markers:
        x = c.x_of(ax, v)
        c.line(x, c.top - 4, x, c.bottom, colour, 2, dash, cls="marker-line")
        legend.append((name, colour, "dash" if dash else "line"))
    if legend:
        c.legend(legend, y=c.top - 8)
    return c.svg()


@dataclass
class Series:
    """A named series of points for ``line_chart`` / ``scatter_chart``."""

    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    colour: str = SERIES[0]
    shape: str = "circle"
    dash: str = ""
    tips: Sequence[str] = ()
    radius: float = 3.5


def _xy_canvas(title: str, series: Sequence[Series], xlabel: str, ylabel: str, xlog: bool, ylog: bool, width: int,
               height: int, chart_id: str, desc: str, xfmt: Callable[[float], str], yfmt: Callable[[float], str],
               x_base2: bool, y_zero: bool, extra_x: Sequence[float] = (), extra_y: Sequence[float] = ()):
    xs = [x for s in series for x in s.xs] + list(extra_x)
    ys = [y for s in series for y in s.ys] + list(extra_y)
    ax = Axis.fit(xs, xlabel, log=xlog, base2=x_base2, fmt=xfmt, zero=not xlog and y_zero)
    ay = Axis.fit(ys, ylabel, log=ylog, fmt=yfmt, zero=y_zero)
    left = max(58.0, max(text_width(ay.fmt(t), 11) for t in ay.ticks) + 30)
    c = Canvas(width, height, title, desc, left=left, top=56, chart_id=chart_id)
    c.x_axis(ax)
    c.y_axis(ay)
    return c, ax, ay


def line_chart(title: str, series: Sequence[Series], xlabel: str, ylabel: str, xlog: bool = False, ylog: bool = False,
               width: int = 460, height: int = 300, chart_id: str = "line", desc: str = "",
               xfmt: Callable[[float], str] = short, yfmt: Callable[[float], str] = short, x_base2: bool = False,
               highlight: Optional[tuple[float, float, str]] = None) -> str:
    """Lines with markers; ``highlight`` (x, y, label) rings one point (the chosen one)."""
    c, ax, ay = _xy_canvas(title, series, xlabel, ylabel, xlog, ylog, width, height, chart_id, desc, xfmt, yfmt,
                           x_base2, not ylog)
    for s in series:
        pts = [(c.x_of(ax, x), c.y_of(ay, y)) for x, y in zip(s.xs, s.ys)]
        if len(pts) > 1:
            c.polyline(pts, s.colour, 2, s.dash, cls="series-line")
        for k, (px, py) in enumerate(pts):
            c.marker(px, py, s.shape, s.colour, s.radius, tip=s.tips[k] if k < len(s.tips) else "", cls="point")
    if highlight is not None:
        hx, hy, lab = highlight
        px, py = c.x_of(ax, hx), c.y_of(ay, hy)
        c.marker(px, py, "circle", "none", 8, cls="chosen", stroke="#000")
        c.text(px + 10, py - 10, lab, 11, cls="chosen-label", weight="600")
    c.legend([(s.name, s.colour, s.shape) for s in series])
    return c.svg()


def scatter_chart(title: str, series: Sequence[Series], xlabel: str, ylabel: str, xlog: bool = False,
                  ylog: bool = False, width: int = 640, height: int = 380, chart_id: str = "scatter", desc: str = "",
                  xfmt: Callable[[float], str] = short, yfmt: Callable[[float], str] = short,
                  vlines: Sequence[tuple[str, float, str, str]] = (), diagonal: bool = False,
                  highlight: Optional[tuple[float, float, str]] = None, lines: Sequence[Series] = ()) -> str:
    """Points per series; ``lines`` are drawn as polylines; ``vlines`` (name, x, colour, dash) mark limits;
    ``diagonal`` draws y = x."""
    c, ax, ay = _xy_canvas(title, list(series) + list(lines), xlabel, ylabel, xlog, ylog, width, height, chart_id,
                           desc, xfmt, yfmt, False, not ylog, extra_x=[v[1] for v in vlines])
    if diagonal:
        lo = max(ax.lo, ay.lo)
        hi = min(ax.hi, ay.hi)
        if hi > lo:
            c.line(c.x_of(ax, lo), c.y_of(ay, lo), c.x_of(ax, hi), c.y_of(ay, hi), GREY, 1, "4 3", cls="diagonal")
    for s in series:
        for k, (x, y) in enumerate(zip(s.xs, s.ys)):
            c.marker(c.x_of(ax, x), c.y_of(ay, y), s.shape, s.colour, s.radius,
                     tip=s.tips[k] if k < len(s.tips) else "", cls="point")
    for s in lines:
        pts = [(c.x_of(ax, x), c.y_of(ay, y)) for x, y in zip(s.xs, s.ys)]
        if len(pts) > 1:
            c.polyline(pts, s.colour, 2, s.dash, cls="series-line")
    legend = [(s.name, s.colour, s.shape) for s in series] + [(s.name, s.colour, "dash" if s.dash else "line")
                                                                for s in lines]
    for name, x, colour, dash in vlines:
        px = c.x_of(ax, x)
        c.line(px, c.top, px, c.bottom, colour, 2, dash, cls="marker-line")
        legend.append((name, colour, "dash" if dash else "line"))
    if highlight is not None:
        hx, hy, lab = highlight
        px, py = c.x_of(ax, hx), c.y_of(ay, hy)
        c.marker(px, py, "circle", "none", 9, cls="chosen", stroke="#000")
        c.text(px + 11, py - 9, lab, 11, cls="chosen-label", weight="600")
    c.legend(legend)
    return c.svg()


def thin(points: Sequence[tuple[float, float]], ax: Axis, ay: Axis, cells: int = 120) -> list[int]:
    """Indices of the points to draw so that at most one falls in each cell of a ``cells``-wide grid
    (the picture is unchanged at screen resolution; thousands of layouts stay a small file)."""
    seen: set[tuple[int, int]] = set()
    keep = []
    for i, (x, y) in enumerate(points):
        key = (int(ax.frac(x) * cells), int(ay.frac(y) * cells * 0.6))
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return keep
