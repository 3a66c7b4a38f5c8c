"""Terminal pictures: proportional bars in the memory and step-time tables, sparklines under scaling tables."""

from __future__ import annotations

import io
import json
import re

import pytest
from rich.console import Console

from mpg_cli import render
from mpg_cli.core.estimate import estimate
from mpg_cli.output.bars import Bar, Spark, memory_bars
from mpg_cli.scenario import build_requests

SMALL = ["-m", "llama3-8b", "-c", "dgx-h100", "-n", "64", "--tokens", "1T"]


@pytest.fixture(scope="module")
def result():
    """One estimate (llama3-8b on 64 H100s) for the table tests."""
    return estimate(build_requests({"model": "llama3-8b", "cluster": "dgx-h100", "gpus": "64", "tokens": "1T"})[0])


def _render(tables, **console_kw) -> str:
    buf = io.StringIO()
    c = Console(file=buf, width=200, **console_kw)
    for t in tables:
        c.print(t)
    return buf.getvalue()


def test_ascii_bar_cells_are_proportional_and_marked():
    """A stacked ASCII bar: each part's letters in proportion, track dots up to capacity, '|' usable, ']' capacity."""
    b = Bar([(10, "W", "#000"), (30, "A", "#111")], 80, width=32, markers=[(72, "|", "┃"), (80, "]", "▕")], track=80)
    text = "".join(ch for ch, _ in b.cells(False))
    assert text == "W" * 4 + "A" * 12 + "." * 12 + "|" + ".." + "]"
    assert len(text) == 32


def test_small_parts_are_not_lost_in_a_stacked_bar():
    """Largest-remainder rounding: the cells add up to the total's share and the largest leftovers get a cell."""
    b = Bar([(0.4, "W", ""), (0.6, "O", ""), (19.2, "A", ""), (0.8, "R", "")], 32, width=32)
    text = "".join(ch for ch, _ in b.cells(False))
    assert len(text) == 21 and text.count("A") == 19 and text.count("R") == 1 and text.count("O") == 1


def test_memory_table_has_ascii_bars_when_not_a_terminal(result):
    """Piped/--output text: the memory table's total row shows the stacked letters, usable '|' and capacity ']'."""
    text = render.tables_to_text([render.memory_table(result)])
    total = next(line for line in text.splitlines() if "Total per GPU" in line)
    assert re.search(r"[WGOAR]+\.*\|?\.*\]", total), total
    assert "█" not in text and "\x1b[" not in text
    acts = next(line for line in text.splitlines() if "Activations" in line)
    share = result.memory.activations / result.memory.capacity
    assert acts.count("A") - 1 == pytest.approx(share * 32, abs=1)  # 'A' of 'Activations' itself


def test_colour_terminal_gets_blocks_and_colour(result):
    """On a colour terminal the bars are coloured blocks; with no_color (NO_COLOR) they fall back to ASCII."""
    tables = [render.memory_table(result), render.breakdown_table(result)]
    fancy = _render(tables, force_terminal=True, color_system="truecolor")
    assert "█" in fancy and "\x1b[38;2;" in fancy
    plain = _render(tables, force_terminal=True, color_system="truecolor", no_color=True)
    assert "█" not in plain and "CCCC" in plain
    mono = _render(tables, force_terminal=True, color_system=None)  # a terminal without colours (TERM=dumb)
    assert "█" not in mono and "CCCC" in mono


def test_no_color_env_gives_ascii_on_a_terminal(monkeypatch, result):
    """NO_COLOR set: render.console() on a terminal still draws ASCII bars."""
    class TTY(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    stream = TTY()
    c = render.console(file=stream, width=200)
    c.print(render.memory_table(result))
    out = stream.getvalue()
    assert "█" not in out and "]" in out


def test_explain_table_has_a_bar_per_part(invoke):
    """estimate --explain: each step part's bar length follows its share; the Iteration row is the stacked bar."""
    res = invoke("estimate", *SMALL, "--explain")
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    compute = next(line for line in lines if "Compute (forward + backward)" in line)
    share = float(re.search(r"([\d.]+)%", compute).group(1)) / 100
    assert compute.count("C") - 1 == pytest.approx(share * 32, abs=1)  # 'C' of 'Compute' itself
    iteration = next(line for line in lines if line.strip().startswith("Iteration"))
    assert re.search(r"C{10,}", iteration)


def test_json_and_csv_have_no_bars(invoke):
    """JSON and CSV carry numbers only: no block characters, no bar letters."""
    for fmt_name in ("json", "csv"):
        res = invoke("estimate", *SMALL, "--explain", "--format", fmt_name)
        assert res.exit_code == 0
        assert "█" not in res.stdout and not re.search(r"(C{8,}|A{8,})", res.stdout)
    json.loads(invoke("estimate", *SMALL, "--gpus", "32,64", "--format", "json").stdout)


def test_scaling_table_has_sparklines_of_days_and_mfu(invoke):
    """estimate --gpus 32,64,128: a trend table with a days and an MFU sparkline, one character per GPU count."""
    res = invoke("estimate", "-m", "llama3-8b", "-c", "dgx-h100", "--gpus", "32,64,128", "--tokens", "1T")
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    days = next(line for line in lines if line.strip().startswith("days ") and "→" in line)
    spark = days.split()[1]
    assert len(spark) == 3 and spark[0] == "@"  # the longest run is the tallest character
    assert any(line.strip().startswith("MFU ") and "→" in line for line in lines)
    md = invoke("estimate", "-m", "llama3-8b", "-c", "dgx-h100", "--gpus", "32,64", "--format", "markdown")
    assert "Trend" not in md.stdout


def test_spark_heights_start_from_zero():
    """Spark: heights from zero to the largest value (a 2 % dip is not drawn as a cliff); missing values blank."""
    assert Spark([1, 2, 4, 8]).text(False) == "_.=@"
    assert Spark([0.66, 0.65, 0.648]).text(True) == "███"
    assert Spark([1.0, None, 2.0]).text(False)[1] == " "


def test_memory_bars_scale_to_the_total_when_it_exceeds_capacity(result):
    """A layout over capacity: the bar scale grows to the total, so the bar fills the width with ']' inside it."""
    from dataclasses import replace

    big = replace(result.memory, activations=result.memory.capacity * 2)
    total_bar = memory_bars(big)[5]
    text = "".join(ch for ch, _ in total_bar.cells(False))
    assert len(text) == 32 and "]" in text and "." not in text
