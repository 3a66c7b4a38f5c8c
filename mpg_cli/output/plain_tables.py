"""mpg's tables without importing Rich: the same bytes Rich writes, on a colourless console or a colour terminal.

Importing and running Rich was about a fifth of a searched ``mpg estimate`` (issue 11's start-up budget). ``render``
writes the plain text of pipes and ``--output`` files, ``render_ansi`` what Rich writes to a colour terminal (bold
titles, labels and headers; bars in true, 256 or 16 colours; ``render.terminal_colours`` says when Rich would use
exactly that). This module lays the tables out as
Rich does (written against Rich 15; the tests compare with the installed Rich): ``rich/table.py``
(``_calculate_column_widths``, ``_measure_column``, ``_collapse_widths``), ``rich/_ratio.py`` (``ratio_reduce``),
``rich/_wrap.py`` (``divide_line``), ``rich/text.py`` (``wrap``, ``rstrip_end``, ``truncate``) and
``rich/padding.py``, for the one table shape mpg draws (``output/safe_table.py``: ``box.SIMPLE_HEAD``, cell
padding (0, 1), numbers right-aligned and unwrapped, text folded, a left-aligned title) and its bars.

It answers only where that emulation is exact: every character is one that occupies one cell for Rich and that
Rich's markup and emoji passes leave as it is (no backslash, nothing like ``:name:``), every column is at least
three cells wide, and no table is stacked. Anything else returns None and the caller renders with Rich.
``tests/test_plain_tables.py`` compares both renderers byte for byte over every command's tables at many widths
and over generated tables.
"""

from __future__ import annotations

import re
from typing import Any, Optional, Sequence

# one cell wide for Rich (rich/cells.py: its single-cell ranges, and symbols its width table gives 1 that mpg
# prints); no whitespace but the space, no combining marks, no control characters
_SINGLE = frozenset(
    [chr(c) for c in range(0x20, 0x7F)]
    + [chr(c) for c in range(0xA1, 0xAD)] + [chr(c) for c in range(0xAE, 0x300)]
    + [chr(c) for c in range(0x370, 0x483)]
    + list("•·–—‐‑‒―‘’“”′″…→←↑↓↔≤≥≈≠±√∑∏∞µ°×÷§¶†‡‰€£¥▏▎▍▌▋▊▉█▁▂▃▄▅▆▇┃▕─")
)
_WORD = re.compile(r"\s*\S+\s*")  # rich/_wrap.py: a word with its surrounding whitespace
_EMOJI = re.compile(r":\S*?:")  # what Rich's emoji pass could replace (rich/_emoji_replace.py)
_TRAILING_SPACE = re.compile(r"\s+$")

PADDING = 1  # cells each side of a cell (Table's default padding (0, 1))
MIN_COLUMN = 3  # narrower columns render as Rich does only in odd corner cases: those go to Rich


def plain(text: str) -> bool:
    """True when Rich would print ``text`` as it is, one cell per character."""
    return (_SINGLE.issuperset(text) and "\\" not in text  # a backslash can change how Rich reads the markup
            and not (":" in text and _EMOJI.search(text)))


def cell_len(text: str) -> int:
    """Cells ``text`` takes on a terminal (its length when ``plain``; else Rich measures it)."""
    if _SINGLE.issuperset(text):
        return len(text)
    from rich.cells import cell_len as rich_cell_len

    return rich_cell_len(text)


# ---------------------------------------------------------------- measurement (rich/measure.py)

def _normalize(lo: int, hi: int) -> tuple[int, int]:
    lo = min(max(0, lo), hi)
    return max(0, lo), max(0, max(lo, hi))


def _get(lo: int, hi: int, max_width: int) -> tuple[int, int]:
    """Measurement.get for a renderable measuring (lo, hi), at ``max_width``."""
    if max_width < 1:
        return 0, 0
    lo, hi = _normalize(lo, hi)
    lo, hi = min(lo, max_width), min(hi, max_width)
    if hi < 1:
        return 0, 0
    return _normalize(lo, hi)


def _measure_cell(cell: Any, max_width: int) -> tuple[int, int]:
    """A padded cell (rich/padding.py Padding.__rich_measure__, through Measurement.get)."""
    if max_width < 1:
        return 0, 0
    if max_width - 2 * PADDING < 1:
        lo, hi = max_width, max_width
    else:
        if isinstance(cell, str):
            lines = cell.splitlines()
            longest = max((len(line) for line in lines), default=0)
            words = cell.split()
            inner = (max((len(w) for w in words), default=longest), longest)
        else:
            inner = (cell.width, cell.width)
        ilo, ihi = _get(*inner, max_width)
        lo, hi = min(ilo + 2 * PADDING, max_width), min(ihi + 2 * PADDING, max_width)
    return _get(lo, hi, max_width)


def _measure_column(cells: Sequence[Any], min_width: Optional[int], max_width: int) -> tuple[int, int]:
    """Table._measure_column for a flexible column."""
    if max_width < 1:
        return 0, 0
    ms = [_measure_cell(c, max_width) for c in cells]
    lo = max((m[0] for m in ms), default=1)
    hi = max((m[1] for m in ms), default=max_width)
    lo, hi = min(lo, max_width), min(hi, max_width)
    if min_width is not None:
        w = max(0, min_width + 2 * PADDING)
        lo, hi = max(lo, w), max(hi, w)
    return lo, hi


def _ratio_reduce(total: int, ratios: list[int], maximums: list[int], values: list[int]) -> list[int]:
    ratios = [r if m else 0 for r, m in zip(ratios, maximums)]
    total_ratio = sum(ratios)
    if not total_ratio:
        return values[:]
    remaining, out = total, []
    for ratio, maximum, value in zip(ratios, maximums, values):
        if ratio and total_ratio > 0:
            distributed = min(maximum, round(ratio * remaining / total_ratio))
            out.append(value - distributed)
            remaining -= distributed
            total_ratio -= ratio
        else:
            out.append(value)
    return out


def _collapse(widths: list[int], wrapable: list[bool], max_width: int) -> list[int]:
    total = sum(widths)
    excess = total - max_width
    if any(wrapable):
        while total and excess > 0:
            widest = max(w for w, ok in zip(widths, wrapable) if ok)
            second = max(w if ok and w != widest else 0 for w, ok in zip(widths, wrapable))
            difference = widest - second
            ratios = [1 if (w == widest and ok) else 0 for w, ok in zip(widths, wrapable)]
            if not any(ratios) or not difference:
                break
            widths = _ratio_reduce(excess, ratios, [min(excess, difference)] * len(widths), widths)
            total = sum(widths)
            excess = total - max_width
    return widths


def column_widths(columns: list[list[Any]], min_widths: list[Optional[int]], no_wrap: list[bool],
                  max_width: int) -> list[int]:
    """Table._calculate_column_widths (no expand, no fixed widths): each column's cells, header included."""
    widths = [_measure_column(c, mw, max_width)[1] or 1 for c, mw in zip(columns, min_widths)]
    if sum(widths) > max_width:
        widths = _collapse(widths, [not nw for nw in no_wrap], max_width)
        if sum(widths) > max_width:
            widths = _ratio_reduce(sum(widths) - max_width, [1] * len(widths), widths, widths)
        widths = [_measure_column(c, mw, w)[1] or 0 for c, w, mw in zip(columns, widths, min_widths)]
    return widths


# ---------------------------------------------------------------- wrapping (rich/_wrap.py, rich/text.py)

def _breaks(text: str, width: int) -> list[int]:
    """divide_line with fold=True, for one-cell characters."""
    out: list[int] = []
    offset = 0
    for match in _WORD.finditer(text):
        start, word = match.start(), match.group(0)
        length = len(word.rstrip())
        if width - offset >= length:
            offset += len(word)
        elif length > width:
            chunks = [word[i:i + width] for i in range(0, len(word), width)]
            for n, chunk in enumerate(chunks):
                if start:
                    out.append(start)
                if n == len(chunks) - 1:
                    offset = len(chunk)
                else:
                    start += len(chunk)
        elif offset and start:
            out.append(start)
            offset = len(word)
    return out


def _rstrip_end(line: str, size: int) -> str:
    if len(line) > size:
        m = _TRAILING_SPACE.search(line)
        if m is not None:
            line = line[:len(line) - min(len(m.group(0)), len(line) - size)]
    return line


def wrap(text: str, width: int, justify: str, no_wrap: bool) -> list[str]:
    """Text.wrap with overflow 'fold', justify 'left' or 'right', each line exactly ``width`` cells or less."""
    lines: list[str] = []
    for line in text.split("\n"):
        if no_wrap:
            pieces = [line]
        else:
            cuts = [0, *_breaks(line, width), len(line)]
            pieces = [_rstrip_end(line[a:b], width) for a, b in zip(cuts, cuts[1:])] if len(cuts) > 2 else [line]
        if justify == "right":
            pieces = [p.rstrip()[:width] for p in pieces]
            pieces = [" " * (width - len(p)) + p for p in pieces]
        else:
            pieces = [p[:width].ljust(width) for p in pieces]
        lines += [p[:width] for p in pieces]
    return lines


Segment = tuple[str, Optional[str]]  # (text, style): None, "bold" or a "#rrggbb" colour
Line = list[Segment]


def _cell_lines(cell: Any, width: int, justify: str, no_wrap: bool, style: Optional[str], fancy: bool) -> list[Line]:
    """A padded cell's lines, each exactly ``width`` cells (Padding around the wrapped text or the bar); every
    segment carries the cell's style (the column's, or the header's), a bar's cells their own colours."""
    inner = width - 2 * PADDING
    pad: Segment = (" " * PADDING, style)
    if isinstance(cell, str):
        return [[pad, (b, style), pad] for b in wrap(cell, inner, justify, no_wrap)]
    segs = _crop(cell.styled(fancy), inner)
    used = sum(len(t) for t, _ in segs)
    return [[pad, *segs, *([(" " * (inner - used), style)] if used < inner else []), pad]]


def _crop(segs: list[Segment], width: int) -> list[Segment]:
    out: list[Segment] = []
    for text, style in segs:
        if width <= 0:
            break
        out.append((text[:width], style))
        width -= len(out[-1][0])
    return out


# ---------------------------------------------------------------- one table, and a list of them

def _table_lines(t: Any, console_width: int, fancy: bool) -> Optional[list[Line]]:
    """The table's lines as Rich renders them (``fancy``: on a colour terminal, with styles and block bars)."""
    ncols = len(t.numeric)
    extra = 2 + (ncols - 1)  # SIMPLE_HEAD with its (blank) edges: one cell each side, one between columns
    body = [tuple(row) + ("",) * (ncols - len(row)) for row in t.rows]
    cols = [([t.headers[i]] if t.headers is not None else []) + [r[i] for r in body] for i in range(ncols)]
    widths = column_widths(cols, [t.col_min(i) for i in range(ncols)], list(t.numeric), console_width - extra)
    if min(widths, default=0) < MIN_COLUMN:
        return None
    table_width = sum(widths) + extra
    out: list[Line] = [[(line, "bold")] for line in wrap(t.title, table_width, "left", False)] if t.title else []
    out.append([(" " * table_width, None)])  # the top edge: blank in SIMPLE_HEAD

    def row_lines(cells: Sequence[Any], header: bool) -> list[Line]:
        styles = ["bold" if (header or i == 0) else None for i in range(ncols)]  # table.header; the first column
        rendered = [_cell_lines(c, w, "right" if num else "left", num, st, fancy)
                    for c, w, num, st in zip(cells, widths, t.numeric, styles)]
        height = max(len(r) for r in rendered)
        for i, r in enumerate(rendered):  # the header row aligns to the bottom, others to the top
            fill: list[Line] = [[(" " * widths[i], styles[i])]] * (height - len(r))
            rendered[i] = fill + r if header else r + fill
        lines = []
        for n in range(height):
            line: Line = [(" ", None)]
            for i, r in enumerate(rendered):
                line += r[n] + [(" ", None)] if i < ncols - 1 else r[n]
            lines.append(line + [(" ", None)])
        return lines

    if t.headers is not None:
        out += row_lines(t.headers, True)
        out.append([(" " + "─" * (sum(widths) + ncols - 1) + " ", None)])
    for row in body:
        out += row_lines(row, False)
    out.append([(" " * table_width, None)])  # the bottom edge
    return out


def _lines(tables: Sequence[Any], width: int, fancy: bool) -> Optional[list[Line]]:
    from .safe_table import SafeTable

    out: list[Line] = []
    for table in tables:
        if not isinstance(table, SafeTable):
            return None
        stacked, t = table.fitted(width)
        if stacked or not _plain_table(t) or any(len(row) > len(t.numeric) for row in t.rows):
            return None  # (a row longer than the columns: Rich would add a column)
        lines = _table_lines(t, width, fancy)
        if lines is None:
            return None
        out += lines
    return out


def render(tables: Sequence[Any], width: int) -> Optional[str]:
    """``tables`` (SafeTable objects) as the plain text Rich would write at ``width`` columns, without trailing
    spaces, or None where this module's emulation would not be exact (the caller then uses Rich)."""
    lines = _lines(tables, width, fancy=False)
    if lines is None:
        return None
    if not lines:
        return ""
    return "\n".join("".join(text for text, _ in line)[:width].rstrip() for line in lines) + "\n"


# The colour codes Rich writes for mpg's bar colours on a 256- and a 16-colour terminal (Rich's own downgrade of
# each colour; tests/test_plain_tables.py checks every entry against Rich). True colour is the colour itself.
COLOUR_CODES = {
    "#0072B2": ("38;5;25", "36"), "#56B4E9": ("38;5;74", "96"), "#E69F00": ("38;5;178", "33"),
    "#009E73": ("38;5;36", "36"), "#CC79A7": ("38;5;175", "37"), "#F0E442": ("38;5;221", "93"),
    "#D55E00": ("38;5;166", "33"), "#999999": ("38;5;246", "37"),
}
COLOUR_SYSTEMS = ("truecolor", "256", "standard")


def render_ansi(tables: Sequence[Any], width: int, colours: str = "truecolor") -> Optional[str]:
    """``tables`` as Rich writes them to a colour terminal ``width`` columns wide (bold titles, first columns and
    headers, coloured block bars; lines padded as Rich pads them) with ``colours`` (truecolor, 256 or standard),
    or None (the caller then uses Rich)."""
    lines = _lines(tables, width, fancy=True)
    if lines is None or any(sum(len(text) for text, _ in line) > width for line in lines):
        return None  # Rich would crop the line at the console's edge, segment by segment: not emulated
    try:
        return "".join("".join(_sgr(seg, colours) for seg in line) + "\n" for line in lines)
    except KeyError:  # a colour without a known code on this colour system
        return None


def _sgr(seg: Segment, colours: str) -> str:
    """One segment as Rich writes it (``Style.render``): codes, the text, a reset."""
    text, style = seg
    if style is None or not text:
        return text
    if style == "bold":
        code = "1"
    elif colours == "truecolor":
        code = "38;2;" + ";".join(str(int(style[i:i + 2], 16)) for i in (1, 3, 5))
    else:
        code = COLOUR_CODES[style][COLOUR_SYSTEMS.index(colours) - 1]
    return f"\x1b[{code}m{text}\x1b[0m"


def _plain_table(t: Any) -> bool:
    texts = [t.title, *(t.headers or [])]
    for row in t.rows:
        for cell in row:
            if isinstance(cell, str):
                texts.append(cell)
            elif not hasattr(cell, "styled"):
                return False
    return all(plain(s) for s in texts)  # (no newline: it is not a one-cell character)
