"""Proportional bars and sparklines for the terminal tables (Rich renderables).

A bar decides how to draw itself when Rich renders it: coloured blocks (Okabe-Ito colours, as the HTML
report) on a colour terminal; plain ASCII when ``NO_COLOR`` is set, when the output is not a terminal
(a pipe, a file, ``--output``), when the terminal has no colours (TERM=dumb) or when the encoding cannot
show block characters. In ASCII each part is a
letter (W weights, G gradients, O optimizer, A activations, R reserve; C compute, T TP communication, …),
so the stacked total reads without colour. JSON and CSV never contain bars: they are written directly.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

BAR_WIDTH = 32
EIGHTHS = " ▏▎▍▌▋▊▉█"
SPARK_UNICODE = "▁▂▃▄▅▆▇█"
SPARK_ASCII = "_.-=+*#@"
SPARK_COLOUR = "#0072B2"

MEMORY_PARTS = (("weights", "W", "#0072B2"), ("gradients", "G", "#56B4E9"), ("optimizer", "O", "#E69F00"),
                ("activations", "A", "#009E73"), ("overhead", "R", "#CC79A7"))
STEP_PARTS = {"compute": ("C", "#0072B2"), "recompute": ("R", "#56B4E9"), "tp_communication": ("T", "#E69F00"),
              "pipeline_bubble": ("B", "#F0E442"), "pp_communication": ("P", "#CC79A7"),
              "dp_communication_exposed": ("D", "#009E73"), "moe_all_to_all": ("M", "#D55E00"),
              "optimizer": ("O", "#999999"), "other": ("X", "#999999")}


def fancy(console: Any, options: Any = None) -> bool:
    """Blocks and colour only on a colour terminal that can encode them (else ASCII)."""
    if getattr(options, "ascii_only", False):
        return False
    return (bool(console.is_terminal) and not console.no_color and console.color_system is not None
            and not getattr(console, "legacy_windows", False))


class Bar:
    """A horizontal bar: stacked ``segments`` (value, letter, colour) on a scale, optional ``markers``
    (value, ascii char, unicode char) and a dotted track up to ``track`` (e.g. the GPU's capacity)."""

    def __init__(self, segments: Sequence[tuple[float, str, str]], scale: float, width: int = BAR_WIDTH,
                 markers: Sequence[tuple[float, str, str]] = (), track: Optional[float] = None) -> None:
        self.segments = [(max(0.0, v) if math.isfinite(v) else 0.0, a, c) for v, a, c in segments]
        self.scale = scale if scale and math.isfinite(scale) and scale > 0 else 1.0
        self.width = width
        self.markers = list(markers)
        self.track = track

    def __str__(self) -> str:  # never counted as a number by the table layout
        return ""

    def cells(self, unicode: bool) -> list[tuple[str, Optional[str]]]:
        """(character, colour or None) per cell."""
        w = self.width
        out: list[tuple[str, Optional[str]]] = []
        if len(self.segments) == 1 and unicode:  # one part: eighth-of-a-cell resolution
            v, _, colour = self.segments[0]
            eighths = min(w * 8, round(v / self.scale * w * 8))
            out = [("█", colour)] * (eighths // 8)
            if eighths % 8:
                out.append((EIGHTHS[eighths % 8], colour))
        else:  # whole cells shared out by largest remainder, so small parts are not lost to rounding
            exact = [v / self.scale * w for v, _, _ in self.segments]
            n = min(w, round(sum(exact)))
            alloc = [int(e) for e in exact]
            for i in sorted(range(len(exact)), key=lambda i: exact[i] - alloc[i], reverse=True):
                if sum(alloc) >= n:
                    break
                alloc[i] += 1
            for (_v, letter, colour), k in zip(self.segments, alloc):
                out += [("█" if unicode else letter, colour)] * k
            out = out[:w]
        if self.track is not None:
            t = min(w, round(self.track / self.scale * w))
            out += [("·" if unicode else ".", None)] * max(0, t - len(out))
        for v, a, u in self.markers:
            pos = min(w - 1, max(0, round(v / self.scale * w) - 1))
            while len(out) <= pos:
                out.append((" ", None))
            out[pos] = (u if unicode else a, None)
        return out[:w]

    def styled(self, fancy: bool) -> list[tuple[str, Optional[str]]]:
        """(text, style) as ``__rich_console__`` yields them, for ``output/plain_tables.py`` (colourless: the ASCII
        letters as one segment)."""
        if not fancy:
            return [("".join(ch for ch, _ in self.cells(False)), None)]
        return [(ch, colour or ("bold" if ch in "|┃" else None)) for ch, colour in self.cells(True)]

    def __rich_console__(self, console: Any, options: Any):
        from rich.segment import Segment
        from rich.style import Style

        uni = fancy(console, options)
        for ch, colour in self.cells(uni):
            yield Segment(ch, Style(color=colour) if (uni and colour) else (Style(bold=True) if ch in "|┃" else None))

    def __rich_measure__(self, console: Any, options: Any):
        from rich.measure import Measurement

        return Measurement(self.width, self.width)


class Spark:
    """A sparkline: one character per value, heights from 0 to the largest value (no exaggerated dips)."""

    def __init__(self, values: Sequence[Optional[float]]) -> None:
        self.values = [v if v is not None and math.isfinite(v) else None for v in values]

    def __str__(self) -> str:
        return ""

    @property
    def width(self) -> int:
        return len(self.values)

    def styled(self, fancy: bool) -> list[tuple[str, Optional[str]]]:
        """(text, style) as ``__rich_console__`` yields them, for ``output/plain_tables.py``."""
        return [(self.text(fancy), SPARK_COLOUR if fancy else None)]

    def text(self, unicode: bool) -> str:
        ramp = SPARK_UNICODE if unicode else SPARK_ASCII
        top = max((v for v in self.values if v is not None), default=0.0)
        if top <= 0:
            return ramp[0] * len(self.values)
        return "".join(" " if v is None else ramp[min(len(ramp) - 1, max(0, math.ceil(v / top * len(ramp)) - 1))]
                       for v in self.values)

    def __rich_console__(self, console: Any, options: Any):
        from rich.segment import Segment
        from rich.style import Style

        uni = fancy(console, options)
        yield Segment(self.text(uni), Style(color=SPARK_COLOUR) if uni else None)

    def __rich_measure__(self, console: Any, options: Any):
        from rich.measure import Measurement

        return Measurement(len(self.values), len(self.values))


def memory_bars(m: Any) -> list[Any]:
    """One bar per row of ``render.memory_rows``: each part, then the stacked total against capacity with
    the usable limit marked '|' and the capacity ']' (the scale is the capacity, or the total when larger)."""
    scale = max(m.total, m.capacity)
    out: list[Any] = [Bar([(getattr(m, name), letter, colour)], scale) for name, letter, colour in MEMORY_PARTS]
    out.append(Bar([(getattr(m, name), letter, colour) for name, letter, colour in MEMORY_PARTS], scale,
                   markers=[(m.usable, "|", "┃"), (m.capacity, "]", "▕")], track=m.capacity))
    out.append("")
    return out


def step_bars(parts: dict[str, float], total: float) -> list[Any]:
    """One bar per row of ``render.breakdown_rows``: each part's share of the iteration, then the stacked iteration."""
    out: list[Any] = []
    for k, v in parts.items():
        letter, colour = STEP_PARTS.get(k, ("X", "#999999"))
        out.append(Bar([(v, letter if len(parts) > 1 else "#", colour)], total))
    out.append(Bar([(v, *STEP_PARTS.get(k, ("X", "#999999"))) for k, v in parts.items()], total))
    return out


def trend_rows(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Sparklines of days and MFU over a scaling table's rows (GPU count ascending as listed)."""
    from ..humanize import fmt

    days = [r.get("days") for r in rows]
    mfu = [r.get("mfu") for r in rows]
    return [("days", Spark(days), f"{fmt(days[0], 'days')} → {fmt(days[-1], 'days')}"),
            ("MFU", Spark(mfu), f"{fmt(mfu[0], 'percent')} → {fmt(mfu[-1], 'percent')}")]
