"""Plain-text tables without Rich (mpg_cli/output/plain_tables.py): byte for byte what Rich writes, or no answer."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len as rich_cell_len
from rich.console import Console
from typer.testing import CliRunner

from harness import examples
from mpg_cli import render
from mpg_cli.cli import app
from mpg_cli.output import plain_tables
from mpg_cli.output.bars import Bar, Spark
from mpg_cli.output.safe_table import SafeTable

WIDTHS = [20, 31, 44, 57, 72, 80, 96, 120, 160, 233]
COMMANDS = [
    ["estimate"], ["estimate", "--explain"], ["estimate", "--gpus", "64,128,256,512"],
    ["estimate", "-m", "deepseek-v3", "-c", "dgx-h100", "-n", "2048", "--explain"],
    ["fit", "-m", "mixtral-8x7b", "-c", "dgx-h100", "-n", "512"],
    ["compare", "-m", "llama3-8b", "-m", "llama3-70b", "-c", "dgx-a100", "-c", "dgx-h100", "--tokens", "15T"],
    ["plan", "--days", "30", "-c", "dgx-h100", "-n", "512"], ["presets", "list"], ["presets", "show", "llama3-8b"],
]


def rich_text(tables, width: int) -> str:
    """What Rich writes for ``tables`` on a colourless console ``width`` columns wide (trailing spaces removed)."""
    buf = io.StringIO()
    con = Console(file=buf, width=width, no_color=True, color_system=None, highlight=False, soft_wrap=False)
    for t in tables:
        con.print(t)
    return render._strip(buf.getvalue())


@pytest.fixture(scope="module")
def command_tables():
    """The tables each command hands to the text renderer."""
    seen: list[list] = []
    original = render.tables_to_text

    def capture(tables, width=None):
        seen.append(list(tables))
        return original(tables, width)

    render.tables_to_text = capture
    try:
        for args in COMMANDS:
            assert CliRunner().invoke(app, args).exit_code == 0, args
    finally:
        render.tables_to_text = original
    assert len(seen) == len(COMMANDS)
    return seen


def test_every_commands_tables_match_rich_at_every_width(command_tables):
    """Each command's tables render exactly as Rich renders them, at narrow to wide widths (or defer to Rich)."""
    answered = 0
    for tables in command_tables:
        for width in WIDTHS:
            text = plain_tables.render(tables, width)
            if text is not None:
                answered += 1
                assert text == rich_text(tables, width), width
    assert answered >= 0.6 * len(command_tables) * len(WIDTHS)


def test_default_estimate_never_needs_rich_from_40_columns(command_tables):
    """The default estimate's tables are laid out without Rich at every width from 40 columns up."""
    for width in range(40, 300, 7):
        assert plain_tables.render(command_tables[0], width) is not None, width


# mostly letters, digits and spaces; now and then what Rich treats specially (brackets, ':', '\\') or a long word
_PIECES = list("abcdefghXYZ0123456789    ") * 4 + list(".,;-+$%()[]/•—×é") + [":", "\\", "  ", "averyveryverylongword",
                                                                         "[bold]", "[/]"]
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=30).map("".join)
_NUMBER = st.from_regex(r"[0-9$+\-.][0-9,.%]{0,12}( GiB| days)?", fullmatch=True)


@st.composite
def tables(draw):
    ncols = draw(st.integers(2, 5))
    headers = draw(st.one_of(st.none(), st.lists(_TEXT, min_size=ncols, max_size=ncols)))
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        row = []
        for i in range(draw(st.integers(1, ncols + (1 if headers is None else draw(st.sampled_from([0] * 9 + [1])))))):
            kind = draw(st.sampled_from(["text", "number", "bar", "spark"] if i else ["text"]))
            if kind == "bar":
                row.append(Bar([(draw(st.floats(0, 10)), "W", "#000000"), (draw(st.floats(0, 10)), "G", "#111111")],
                               10.0, markers=[(draw(st.floats(0, 12)), "|", "┃")], track=draw(st.floats(0, 12))))
            elif kind == "spark":
                row.append(Spark(draw(st.lists(st.floats(0, 5), min_size=1, max_size=8))))
            else:
                row.append(draw(_NUMBER if kind == "number" else _TEXT))
        rows.append(tuple(row))
    return SafeTable(draw(_TEXT), rows, headers)


@settings(max_examples=examples(150, 2000))
@given(st.lists(tables(), min_size=1, max_size=3), st.integers(8, 180))
def test_generated_tables_match_rich_whenever_answered(ts, width):
    """For generated tables (odd text, brackets, backslashes, bars, sparklines, headers) and widths, the plain
    renderer either defers to Rich or writes exactly what Rich writes."""
    text = plain_tables.render(ts, width)
    if text is not None:
        assert text == rich_text(ts, width)


def test_every_symbol_taken_as_one_cell_is_one_cell_for_rich():
    """Each non-ASCII character the plain renderer counts as one cell is one cell for Rich too."""
    for ch in plain_tables._SINGLE:
        assert rich_cell_len(ch) == 1, hex(ord(ch))


@pytest.mark.parametrize("cell", ["日本語のモデル", "café\u0301", ":thumbs_up: ok", "a\u200bb", "nb\u00a0sp"])
def test_text_it_cannot_lay_out_exactly_goes_to_rich(cell):
    """Wide or combining characters, emoji codes, zero-width and no-break spaces: no plain answer (Rich renders)."""
    table = SafeTable("t", [("label", cell)], None)
    assert plain_tables.render([table], 80) is None
    assert render.tables_to_text([table], 80) == rich_text([table], 80)


def test_stacked_tables_go_to_rich():
    """A table whose numbers do not fit side by side is stacked by Rich (no plain answer)."""
    table = SafeTable("t", [("a", "1,000,000,000", "2,000,000,000")], ["name", "first", "second"])
    assert plain_tables.render([table], 20) is None
    assert render.tables_to_text([table], 20) == rich_text([table], 20)


def test_piped_estimate_does_not_import_rich():
    """'mpg estimate' with its output piped lays the tables out without importing Rich (start-up, issue 11)."""
    code = ("import sys, runpy; sys.argv = ['mpg', 'estimate']\n"
            "try:\n    from mpg_cli.entry import main; main()\nexcept SystemExit: pass\n"
            "sys.stderr.write('\\nRICH=' + str(any(m == 'rich' or m.startswith('rich.') for m in sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "Time to train" in proc.stdout
    assert proc.stderr.strip().endswith("RICH=False"), proc.stderr[-300:]


def rich_terminal(tables, width: int, colours: str = "truecolor") -> str:
    """What Rich writes for ``tables`` to a colour terminal ``width`` columns wide (truecolor, 256 or standard)."""
    buf = io.StringIO()
    con = Console(file=buf, width=width, force_terminal=True, color_system=colours, highlight=False,
                  soft_wrap=False, legacy_windows=False)
    for t in tables:
        con.print(t)
    return buf.getvalue()


@pytest.mark.parametrize("colours", plain_tables.COLOUR_SYSTEMS)
def test_every_commands_tables_match_rich_on_a_colour_terminal(command_tables, colours):
    """On a colour terminal each command's tables (bold titles and labels, coloured bars) are Rich's bytes."""
    answered = 0
    for tables in command_tables:
        for width in WIDTHS:
            text = plain_tables.render_ansi(tables, width, colours)
            if text is not None:
                answered += 1
                assert text == rich_terminal(tables, width, colours), width
    assert answered >= 0.5 * len(command_tables) * len(WIDTHS)
    coloured_block = re.compile(r"\x1b\[(38;2;[0-9;]+|38;5;[0-9]+|3[0-7]|9[0-7])m█\x1b\[0m")
    assert coloured_block.search(plain_tables.render_ansi(command_tables[0], 120, colours))  # the memory bars


@settings(max_examples=examples(100, 1500))
@given(st.lists(tables(), min_size=1, max_size=3), st.integers(8, 180), st.sampled_from(plain_tables.COLOUR_SYSTEMS))
def test_generated_tables_match_rich_on_a_terminal_whenever_answered(ts, width, colours):
    """For generated tables and widths, the terminal rendering either defers to Rich or is exactly Rich's."""
    text = plain_tables.render_ansi(ts, width, colours)
    if text is not None:
        assert text == rich_terminal(ts, width, colours)


def test_colour_codes_are_richs_own_downgrades():
    """Each bar colour's 256- and 16-colour code is the one Rich computes, and every bar colour has one."""
    from rich.color import ColorSystem
    from rich.style import Style

    from mpg_cli.output.bars import MEMORY_PARTS, SPARK_COLOUR, STEP_PARTS

    used = {c for _, _, c in MEMORY_PARTS} | {c for _, c in STEP_PARTS.values()} | {SPARK_COLOUR}
    assert used <= set(plain_tables.COLOUR_CODES)
    for colour, (eight_bit, standard) in plain_tables.COLOUR_CODES.items():
        assert Style(color=colour)._make_ansi_codes(ColorSystem.EIGHT_BIT) == eight_bit
        assert Style(color=colour)._make_ansi_codes(ColorSystem.STANDARD) == standard


class _Terminal(io.StringIO):
    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("env", [
    {"COLORTERM": "truecolor", "TERM": "xterm-256color"}, {"COLORTERM": "24bit"}, {"COLORTERM": " TrueColor "},
    {"TERM": "xterm-256color"}, {"TERM": "xterm-kitty"}, {"TERM": "xterm"}, {"TERM": "screen-16color"}, {},
    {"TERM": "linux"}, {"COLORTERM": "yes", "TERM": "rxvt-unicode-256color"},
    {"COLORTERM": "truecolor", "TERM": "dumb"}, {"TERM": "unknown"}, {"COLORTERM": "truecolor", "NO_COLOR": "1"},
    {"COLORTERM": "truecolor", "FORCE_COLOR": "1"}, {"COLORTERM": "truecolor", "TTY_COMPATIBLE": "0"},
])
def test_terminal_colours_are_what_rich_detects(env):
    """mpg writes a terminal's tables itself only with the colour system Rich's own detection picks, and defers to
    Rich wherever another setting (NO_COLOR, FORCE_COLOR, a dumb terminal, ...) could change Rich's output."""
    from mpg_cli.render import terminal_colours

    con = Console(file=_Terminal(), highlight=False, soft_wrap=False, _environ=env)
    ours = terminal_colours(env)
    names = {"truecolor": "truecolor", "256": "256", "standard": "standard"}
    if ours is not None:
        assert con.is_terminal and not con.no_color and not con.legacy_windows
        assert con.color_system == names[ours], env
    others = set(env) - {"COLORTERM", "TERM"}
    assert (ours is None) == (bool(others) or env.get("TERM") in ("dumb", "unknown"))


def _on_terminal(env_extra: dict) -> tuple[bytes, str]:
    """Run 'mpg estimate' with stdout on a pseudo-terminal; (what the terminal received, whether Rich was imported)."""
    pty = pytest.importorskip("pty")
    import os

    code = ("import sys; sys.argv = ['mpg', 'estimate']\n"
            "try:\n    from mpg_cli.entry import main; main()\nexcept SystemExit: pass\n"
            "sys.stderr.write('RICH=' + str(any(m == 'rich' or m.startswith('rich.') for m in sys.modules)))")
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLORTERM", "TTY_COMPATIBLE",
                                                           "TTY_INTERACTIVE")}
    env.update({"COLUMNS": "100", "TERM": "xterm-256color", **env_extra})
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    chunks = []
    try:
        while True:
            chunk = os.read(master, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:  # EIO: the child closed the terminal
        pass
    err = proc.communicate(timeout=60)[1].decode()
    os.close(master)
    return b"".join(chunks), err


@pytest.mark.parametrize("colours", [{"COLORTERM": "truecolor"}, {}])
def test_a_colour_terminal_gets_richs_bytes_without_rich(colours):
    """On a real (pseudo-)terminal 'mpg estimate' writes without importing Rich exactly what Rich writes there
    (Rich itself draws when TTY_INTERACTIVE is set, which changes nothing in its output)."""
    own, own_err = _on_terminal(colours)
    rich, rich_err = _on_terminal({**colours, "TTY_INTERACTIVE": "1"})
    assert own_err.endswith("RICH=False") and rich_err.endswith("RICH=True"), (own_err[-200:], rich_err[-200:])
    assert b"Time to train" in own and b"\x1b[1m" in own
    assert own == rich


def test_a_row_longer_than_the_headers_goes_to_rich():
    """A row with more cells than headers (Rich adds a column for it) gets no plain answer; Rich draws it whole."""
    table = SafeTable("t", [("a", "1", "extra cell")], ["name", "n"])
    assert plain_tables.render([table], 40) is None
    assert "extra cell" in render.tables_to_text([table], 40)


def test_no_tables_no_text():
    """No tables: nothing written, as Rich writes nothing."""
    assert plain_tables.render([], 80) == rich_text([], 80) == ""
