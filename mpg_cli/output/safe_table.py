"""The one table mpg draws for people: numbers never truncated, text folded, rows stacked when even the
numbers do not fit (rendered by Rich on a terminal, by ``output/plain_tables.py`` as plain text)."""

from __future__ import annotations

from typing import Any, Optional

from ..sanitize import clean_line
from .plain_tables import cell_len


def _numeric(cell: str) -> bool:
    return bool(cell) and (cell[0].isdigit() or cell[0] in "$+-—.")


class SafeTable:
    """A Rich renderable table that never truncates a number.

    Numeric columns never wrap and are as wide as their widest cell; text columns fold. When the numbers
    alone need more columns than the console has, the rows are stacked instead (one 'header: value' block
    per row), so '$2,…' or '10,811,7…' cannot appear at any width.
    """

    def __init__(self, title: str, rows: list[tuple[str, ...]], headers: Optional[list[str]],
                 drop: tuple[str, ...] = ()) -> None:
        self.title = clean_line(title)
        self.drop = drop  # headers of low-priority columns, dropped in this order before rows are stacked
        self.headers = None if headers is None else [clean_line(h) for h in headers]
        # user text never carries control codes; Rich renderables (memory bars) pass as they are
        self.rows = [tuple(c if _renderable(c) else clean_line(c) for c in row) for row in rows]
        ncols = len(self.headers) if self.headers else max([2] + [len(r) for r in self.rows])
        self.numeric = [bool(headers) and i > 0 and all(isinstance(r[i], str) and _numeric(r[i])
                                                        for r in self.rows if i < len(r) and r[i])
                        for i in range(ncols)]

    TEXT_MIN = 16  # a text column (label, layout) folds, but never narrower than this

    def col_min(self, i: int) -> int:
        widest = max((cell_len(r[i]) if isinstance(r[i], str) else self.TEXT_MIN for r in self.rows if i < len(r)),
                     default=0)
        words = (self.headers[i].split() if self.headers else [])
        # a no-wrap (numeric) column keeps its header on one line too
        head = cell_len(self.headers[i]) if self.headers and self.numeric[i] else max(map(cell_len, words), default=0)
        return max(head, widest if self.numeric[i] else min(widest, self.TEXT_MIN))

    def min_width(self) -> int:
        # box.SIMPLE_HEAD: one edge, then per column 1 padding each side and one divider
        return 1 + sum(self.col_min(i) + 3 for i in range(len(self.numeric)))

    def table(self, stacked: bool = False) -> Any:
        from rich import box
        from rich.markup import escape
        from rich.table import Table

        t = Table(title=escape(self.title), box=box.SIMPLE_HEAD, show_header=self.headers is not None and not stacked,
                  title_justify="left", title_style="bold")
        if stacked:
            t.add_column("", style="bold", no_wrap=True)
            t.add_column("", overflow="fold")
            for n, row in enumerate(self.rows):
                if n:
                    t.add_row("", "")
                for h, cell in zip(self.headers or [], row):
                    t.add_row(escape(h), cell if _renderable(cell) else escape(cell))
            return t
        for i, h in enumerate(self.headers or [""] * len(self.numeric)):
            num = self.numeric[i]
            t.add_column(escape(h), style="bold" if i == 0 else None, justify="right" if num else "left",
                         no_wrap=num, overflow="fold", min_width=self.col_min(i))
        for row in self.rows:
            t.add_row(*(cell if _renderable(cell) else escape(cell) for cell in row))
        return t

    def without(self, header: str) -> "SafeTable":
        i = (self.headers or []).index(header)
        keep = [j for j in range(len(self.numeric)) if j != i]
        out = SafeTable.__new__(SafeTable)
        out.title, out.drop = self.title, tuple(d for d in self.drop if d != header)
        out.headers = [self.headers[j] for j in keep]  # type: ignore[index]
        out.rows = [tuple(r[j] for j in keep if j < len(r)) for r in self.rows]
        out.numeric = [self.numeric[j] for j in keep]
        return out

    def fitted(self, max_width: int) -> tuple[bool, "SafeTable"]:
        """(stacked, table) for a console ``max_width`` columns wide: low-priority columns dropped in order
        (the title then says which) until the numbers fit, else the rows stacked."""
        t = self
        while t.headers is not None and t.min_width() > max_width and t.drop:
            t = t.without(t.drop[0]) if t.drop[0] in t.headers else SafeTable.without_drop(t)
        if t.headers is not None and t.min_width() > max_width:
            return True, t
        if t is not self:
            t.title = f"{t.title} [narrow terminal: {', '.join(h for h in self.headers or [] if h not in (t.headers or []))} not shown]"
        return False, t

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.text import Text

        stacked, t = self.fitted(options.max_width)
        if stacked:
            yield Text(t.title, style="bold")
            table = t.table(stacked=True)
            table.title = None
            yield table
            return
        yield t.table()

    @staticmethod
    def without_drop(t: "SafeTable") -> "SafeTable":
        out = SafeTable.__new__(SafeTable)
        out.__dict__.update(t.__dict__)
        out.drop = t.drop[1:]
        return out




def _renderable(cell: Any) -> bool:
    """A Rich renderable (a bar) rather than text."""
    return hasattr(cell, "__rich_console__")
