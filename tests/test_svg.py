"""The SVG chart module: each chart type rendered from fixed data, checked as parsed XML."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

from mpg_cli.output import svg
from mpg_cli.output.svg import Axis, Series

NS = {"s": "http://www.w3.org/2000/svg"}


def parse(text: str) -> ET.Element:
    """Parse one chart; it must be well-formed SVG with no NaN/infinity anywhere."""
    assert not re.search(r"\b(nan|inf|infinity)\b", text.lower()), text[:300]
    root = ET.fromstring(text)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def texts(root: ET.Element, cls: str = "") -> list[str]:
    return [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")
            if not cls or cls in (t.get("class") or "").split()]


def coords(root: ET.Element, tag: str, attr: str) -> list[float]:
    return [float(e.get(attr)) for e in root.iter(f"{{http://www.w3.org/2000/svg}}{tag}") if e.get(attr) is not None]


def check_frame(root: ET.Element, title: str, xlabel: str, ylabel: str = "") -> None:
    """Title element, visible title, axis labels; every coordinate inside the viewBox."""
    assert root.find("s:title", NS).text == title
    assert title in texts(root, "chart-title")
    assert xlabel in texts(root, "x-label")
    if ylabel:
        assert ylabel in texts(root, "y-label")
    w, h = (float(v) for v in root.get("viewBox").split()[2:])
    for tag, attr, limit in (("rect", "x", w), ("rect", "y", h), ("line", "x1", w), ("line", "y2", h),
                             ("text", "x", w), ("text", "y", h), ("circle", "cx", w), ("circle", "cy", h)):
        for v in coords(root, tag, attr):
            assert -1 <= v <= limit + 1, (tag, attr, v)


def test_hbar_chart_has_one_bar_per_label_with_lengths_in_proportion():
    """hbar_chart: a bar per label, widths proportional to the values, labels and value texts as real text."""
    root = parse(svg.hbar_chart("Days to train", ["a", "b", "c"], [10.0, 20.0, 40.0], "days",
                                value_text=["10 d", "20 d", "40 d"], chart_id="t"))
    check_frame(root, "Days to train", "days")
    bars = [e for e in root.iter("{http://www.w3.org/2000/svg}rect") if e.get("class") == "bar"]
    assert len(bars) == 3
    widths = [float(b.get("width")) for b in bars]
    assert widths[1] == pytest.approx(2 * widths[0], rel=0.01) and widths[2] == pytest.approx(4 * widths[0], rel=0.01)
    assert texts(root, "bar-label") == ["a", "b", "c"]
    assert texts(root, "value-label") == ["10 d", "20 d", "40 d"]
    ticks = [float(t) for t in texts(root, "x-tick")]
    assert ticks[0] == 0 and ticks[-1] >= 40 and ticks == sorted(ticks)


def test_stacked_hbar_chart_stacks_parts_and_marks_limits():
    """stacked_hbar_chart: segments per row sum to the total's length; marker lines and legend entries exist."""
    root = parse(svg.stacked_hbar_chart("Memory per GPU", ["chosen", "alt"], ["weights", "activations"],
                                        [[10.0, 30.0], [20.0, 50.0]], "GiB per GPU",
                                        markers=[("usable 72 GiB", 72.0, "#D55E00", "6 4"),
                                                 ("capacity 80 GiB", 80.0, "#000000", "")], chart_id="m"))
    check_frame(root, "Memory per GPU", "GiB per GPU")
    segs = [e for e in root.iter("{http://www.w3.org/2000/svg}rect") if e.get("class") == "segment"]
    assert len(segs) == 4
    w = [float(s.get("width")) for s in segs]
    assert (w[2] + w[3]) / (w[0] + w[1]) == pytest.approx(70 / 40, rel=0.01)
    assert float(segs[1].get("x")) == pytest.approx(float(segs[0].get("x")) + w[0], abs=0.02)  # stacked, not overlaid
    lines = [e for e in root.iter("{http://www.w3.org/2000/svg}line") if e.get("class") == "marker-line"]
    assert len(lines) == 2 and lines[0].get("stroke-dasharray") == "6 4"
    legend = texts(root, "legend")
    assert {"weights", "activations", "usable 72 GiB", "capacity 80 GiB"} <= set(legend)
    assert float(texts(root, "x-tick")[-1]) >= 80  # the axis reaches the capacity marker


def test_line_chart_log_axes_and_chosen_point():
    """line_chart on log-log axes: power-of-two x ticks, a polyline through every point, the chosen one ringed."""
    xs, ys = [64, 128, 256, 512, 1024], [30.7, 15.4, 7.7, 3.9, 1.96]
    root = parse(svg.line_chart("Days vs GPUs", [Series("days", xs, ys)], "GPUs (log scale)", "days (log scale)",
                                xlog=True, ylog=True, x_base2=True, highlight=(256, 7.7, "chosen"),
                                xfmt=lambda v: f"{v:,.0f}", chart_id="l"))
    check_frame(root, "Days vs GPUs", "GPUs (log scale)", "days (log scale)")
    assert texts(root, "x-tick") == ["64", "128", "256", "512", "1,024"]
    yt = [float(t) for t in texts(root, "y-tick")]
    assert yt[0] <= 1.96 and yt[-1] >= 30.7
    poly = root.find("s:polyline", NS)
    pts = [tuple(map(float, p.split(","))) for p in poly.get("points").split()]
    assert len(pts) == 5
    dx = [b[0] - a[0] for a, b in zip(pts, pts[1:])]
    assert max(dx) - min(dx) < 0.05  # doublings are evenly spaced on a log axis
    assert "chosen" in texts(root, "chosen-label")


def test_scatter_chart_series_markers_limits_and_diagonal():
    """scatter_chart: one marker per point (shapes per series), vertical limit lines, the y = x diagonal."""
    a = Series("fits", [10, 20, 30], [40, 45, 50], shape="circle")
    b = Series("does not fit", [90, 100], [55, 60], colour="#D55E00", shape="cross")
    root = parse(svg.scatter_chart("Frontier", [a, b], "memory (GiB)", "MFU (%)",
                                   vlines=[("usable", 72, "#D55E00", "6 4")], diagonal=True,
                                   highlight=(20, 45, "chosen"), chart_id="f"))
    check_frame(root, "Frontier", "memory (GiB)", "MFU (%)")
    pts = [e for e in root.iter() if e.get("class") == "point"]
    assert len(pts) == 5
    assert sum(1 for e in pts if e.tag.endswith("circle")) == 3 and sum(1 for e in pts if e.tag.endswith("polyline")) == 2
    assert len([e for e in root.iter() if e.get("class") == "diagonal"]) == 1
    assert {"fits", "does not fit", "usable"} <= set(texts(root, "legend"))
    xt = [float(t) for t in texts(root, "x-tick")]
    assert xt[0] <= 10 and xt[-1] >= 100


def test_user_text_is_escaped_and_control_characters_removed():
    """Labels with markup, quotes and control characters come out as text, never as elements."""
    evil = 'x</text><script>alert("1")</script>\x07\x1b[31m & \'q\''
    out = svg.hbar_chart(evil, [evil], [1.0], evil, chart_id='a"b')
    root = parse(out)
    assert "<script" not in out and "\x07" not in out and "\x1b" not in out
    assert not list(root.iter("{http://www.w3.org/2000/svg}script"))
    assert root.find("s:title", NS).text.startswith('x</text><script>alert("1")')
    assert root.get("id") == "a-b"


def test_non_finite_values_raise_instead_of_writing_nan():
    """A NaN or infinite coordinate raises ValueError; it never reaches the file."""
    with pytest.raises(ValueError):
        svg.line_chart("t", [Series("s", [1, 2], [1, float("nan")])], "x", "y", xlog=False)
    with pytest.raises(ValueError):
        svg.nice_ticks(0, math.inf)
    with pytest.raises(ValueError):
        svg.log_ticks(0, 10)


@pytest.mark.parametrize("lo,hi", [(0, 71.7), (0, 0.0015), (3, 3), (-5, 12), (0, 1e7)])
def test_nice_ticks_cover_the_range_with_1_2_5_steps(lo, hi):
    """nice_ticks: ascending, evenly spaced at a 1-2-2.5-5 step, covering [lo, hi], at most about 8 ticks."""
    t = svg.nice_ticks(lo, hi)
    assert t[0] <= lo and t[-1] >= hi and 2 <= len(t) <= 8
    steps = {round(b - a, 12) for a, b in zip(t, t[1:])}
    assert len(steps) == 1
    step = steps.pop()
    mant = step / 10 ** math.floor(math.log10(step))
    assert round(mant, 6) in (1, 2, 2.5, 5)


@pytest.mark.parametrize("lo,hi,base2,want", [
    (8, 1400, False, [5, 10, 20, 50, 100, 200, 500, 1000, 2000]),
    (30, 100000, False, [10, 100, 1000, 10000, 100000]),
    (20, 200000, False, [10, 100, 1000, 10000, 100000, 1000000]),
    (128, 2048, True, [128, 256, 512, 1024, 2048]),
    (1, 2 ** 20, True, [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576][:9]),
])
def test_log_ticks(lo, hi, base2, want):
    """log_ticks: 1-2-5 within few decades, powers of ten beyond, powers of two when asked, always covering."""
    t = svg.log_ticks(lo, hi, base2)
    if base2 and hi == 2 ** 20:
        assert len(t) <= 9 and t[0] <= lo
    else:
        assert t == want
    assert t[0] <= lo * (1 + 1e-9)


def test_axis_maps_values_linearly_and_logarithmically():
    """Axis.frac: 0 at the low end, 1 at the high end; a log axis puts the geometric middle in the middle."""
    lin = Axis.fit([0, 50, 100], "x")
    assert lin.frac(lin.lo) == 0 and lin.frac(lin.hi) == 1
    lg = Axis(10, 1000, log=True)
    assert lg.frac(100) == pytest.approx(0.5)


def test_thin_keeps_one_point_per_cell():
    """thin: many coincident points collapse to one per cell; distinct ones are kept."""
    ax, ay = Axis(0, 100), Axis(0, 1)
    pts = [(50.0, 0.5)] * 100 + [(10.0, 0.1), (90.0, 0.9)]
    keep = svg.thin(pts, ax, ay)
    assert keep == [0, 100, 101]


def test_labels_are_clipped_only_when_longer_than_the_label_column():
    """Bar labels that fit are shown whole; one longer than ~42 % of the width ends in an ellipsis."""
    root = parse(svg.hbar_chart("t", ["measured", "predicted"], [1.0, 2.0], "x", width=380))
    assert [t.text for t in root.iter("{http://www.w3.org/2000/svg}text") if t.get("class") == "bar-label"] == \
        ["measured", "predicted"]
    long = "a very long scenario label that cannot possibly fit in the label column"
    root = parse(svg.hbar_chart("t", [long], [1.0], "x", width=380))
    shown = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text") if t.get("class") == "bar-label"][0]
    assert shown.endswith("…") and long.startswith(shown[:-1])
