"""The one emitter: a command returns an ``Output``; ``emit_output`` renders it in the requested format and writes it.

A command computes; it does not write. Its ``Output`` holds the JSON document (the envelope is added here,
by ``schema.envelope``), the CSV rows, the human tables (built lazily, so JSON and CSV never import Rich),
the Markdown text, the warnings and the failed gates. ``emit_output`` writes exactly one of the formats to
stdout or ``--output`` (atomically), then the warnings to stderr (``WARNING: …``, unless ``--quiet``), then
raises ``GateFailed`` for failed gates or a failure the command found (the boundary prints it: exit 1).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..errors import GateFailed, MpgError
from .schema import envelope

FORMATS = ("table", "json", "csv", "markdown")


@dataclass
class Output:
    """What one command produced, in every format it supports (None: that format writes nothing)."""

    command: str  # the JSON envelope's "command"
    body: Optional[dict[str, Any]] = None  # the JSON document after the envelope keys
    csv_rows: Optional[list[dict[str, Any]]] = None  # None: the whole JSON document as one row
    tables: Optional[Callable[[], list[Any]]] = None  # Rich renderables for the table format
    footer: str = ""  # plain text after the tables
    confirmation: str = ""  # one line on stdout after the output went to --output (e.g. 'Wrote plan.html: …')
    markdown: Optional[Callable[[], str]] = None
    warnings: list[str] = field(default_factory=list)
    gates: list[str] = field(default_factory=list)  # failed gates: exit 1 after the output
    failure: Optional[MpgError] = None  # e.g. nothing fits: raised after the output
    csv_document: bool = True  # with csv_rows None: the document as one row (False: write nothing)

    def document(self) -> dict[str, Any]:
        """The JSON document: the envelope, then the body."""
        return envelope(self.command, self.body or {})


def format_of(opts: dict[str, Any]) -> str:
    """The --format value of a command's options (an Enum member or its text; default table)."""
    value = opts.get("format")
    return getattr(value, "value", value) or "table"


def emit_output(out: Output, fmt_name: str, output: Optional[str] = None, quiet: bool = False) -> int:
    """Render ``out`` as ``fmt_name``, write it, report warnings and gates; the exit code (0) or GateFailed."""
    from .. import render

    if fmt_name == "json":
        if out.body is not None:
            render.emit(render.to_json(out.document()), output)
    elif fmt_name == "csv":
        rows = out.csv_rows if out.csv_rows is not None else ([out.document()] if out.csv_document else None)
        if rows is not None:
            render.emit(render.to_csv(rows) if rows else "", output)
    elif fmt_name == "markdown" and out.markdown is not None:
        render.emit(out.markdown(), output)
    elif fmt_name != "markdown" and out.tables is not None:
        tables = out.tables()
        if output is not None:
            render.write_atomic(output, render.tables_to_text(tables) + out.footer)
        else:
            render.print_tables(tables)
            if out.footer:
                sys.stdout.write(out.footer)
    if out.confirmation:
        sys.stdout.write(out.confirmation + "\n")
    if not quiet:
        write_warnings(out.warnings)
    if out.failure is not None:
        raise out.failure
    if out.gates:
        raise GateFailed.of(out.gates)
    return 0


def write_warnings(warnings: list[str]) -> None:
    """Each distinct warning once, as one ``WARNING: …`` line on stderr (user text escaped)."""
    from ..sanitize import clean_line

    seen: set[str] = set()
    for w in warnings:
        if w not in seen:
            seen.add(w)
            sys.stderr.write(f"WARNING: {clean_line(w)}\n")
