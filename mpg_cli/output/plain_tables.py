"""mpg's tables as plain text without importing Rich: the same characters Rich writes on a colourless console.

Piped output and ``--output`` files are mpg's tables with no styling at all, and importing and running Rich for
them was about a fifth of a searched ``mpg estimate`` (issue 11's start-up budget). This module lays them out as
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


def _cell_lines(cell: Any, width: int, justify: str, no_wrap: bool) -> list[str]:
    """A padded cell's lines, each exactly ``width`` cells (Padding around the wrapped text or the bar)."""
    inner = width - 2 * PADDING
    body = wrap(cell, inner, justify, no_wrap) if isinstance(cell, str) else [cell.plain()[:inner]]
    return [" " * PADDING + b.ljust(inner)[:inner] + " " * PADDING for b in body]


# ---------------------------------------------------------------- one table, and a list of them

def _table_lines(title: str, headers: Optional[list[str]], rows: list[tuple[Any, ...]], numeric: list[bool],
                 min_widths: list[int], console_width: int) -> Optional[list[str]]:
    ncols = len(numeric)
    extra = 2 + (ncols - 1)  # SIMPLE_HEAD with its (blank) edges: one cell each side, one between columns
    body = [tuple(row) + ("",) * (ncols - len(row)) for row in rows]
    cols = [([headers[i]] if headers is not None else []) + [r[i] for r in body] for i in range(ncols)]
    widths = column_widths(cols, list(min_widths), list(numeric), console_width - extra)
    if min(widths, default=0) < MIN_COLUMN:
        return None
    table_width = sum(widths) + extra
    out = [line.rstrip() for line in wrap(title, table_width, "left", False)] if title else []
    out.append("")  # the top edge: blank in SIMPLE_HEAD

    def row_lines(cells: Sequence[Any], header: bool) -> list[str]:
        rendered = [_cell_lines(c, w, "right" if num else "left", num) for c, w, num in zip(cells, widths, numeric)]
        height = max(len(r) for r in rendered)
        blank = [" " * w for w in widths]
        for i, r in enumerate(rendered):  # the header row aligns to the bottom, others to the top
            fill = [blank[i]] * (height - len(r))
            rendered[i] = fill + r if header else r + fill
        return [(" " + " ".join(r[n] for r in rendered) + " ").rstrip() for n in range(height)]

    if headers is not None:
        out += row_lines(headers, True)
        out.append(" " + "─" * (sum(widths) + ncols - 1))
    for row in body:
        out += row_lines(row, False)
    out.append("")  # the bottom edge
    return [line[:console_width].rstrip() for line in out]


def render(tables: Sequence[Any], width: int) -> Optional[str]:
    """``tables`` (SafeTable objects) as the plain text Rich would write at ``width`` columns, or None where this
    module's emulation would not be exact (the caller then uses Rich)."""
    from .safe_table import SafeTable

    out: list[str] = []
    for table in tables:
        if not isinstance(table, SafeTable):
            return None
        stacked, t = table.fitted(width)
        if stacked or not _plain_table(t):
            return None
        lines = _table_lines(t.title, t.headers, t.rows, t.numeric, [t.col_min(i) for i in range(len(t.numeric))],
                             width)
        if lines is None:
            return None
        out += lines
    return "\n".join(out) + "\n"


def _plain_table(t: Any) -> bool:
    texts = [t.title, *(t.headers or [])]
    for row in t.rows:
        for cell in row:
            if isinstance(cell, str):
                texts.append(cell)
            elif not hasattr(cell, "plain"):
                return False
    return all(plain(s) and "\n" not in s for s in texts)
