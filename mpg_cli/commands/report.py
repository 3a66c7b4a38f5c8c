"""mpg report: one self-contained HTML page (or its data as JSON) for an estimate or a scenarios file.

The estimate inputs are those of ``mpg estimate`` (and ``--scenarios`` as in ``mpg compare``); the page is
drawn by ``mpg_cli.output.report_html`` from the document ``mpg_cli.output.report_data.build`` returns.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

from ..args import ReportArgs
from ..errors import InputError


def _rows(opts: dict[str, Any], scenario_file: Optional[str], days: Optional[float],
          hours: Optional[float]) -> tuple[list[tuple[str, Any]], list[dict[str, Any]]]:
    """(label, result) per scenario, and the options each came from."""
    from ..inputs.scenarios import default_label, scenarios
    from .shared import compute

    if scenario_file:
        entries = scenarios(opts, [], [], [], [], scenario_file)
    else:
        entries = [(default_label(opts["model"], opts["cluster"], opts.get("gpu"), opts.get("gpus") or "all"), opts)]
    rows: list[tuple[str, Any]] = []
    origin: list[dict[str, Any]] = []
    for label, o in entries:
        results = compute(o, days, hours)
        for r in results:
            lbl = label if len(results) == 1 else f"{label} [{r.request.gpus}]"
            rows.append((lbl, r))
            origin.append(o)
    return rows, origin


def run(opts: dict[str, Any], args: ReportArgs) -> int:
    """The report document for the estimate (or the scenarios file), as the HTML page or its JSON."""
    scenario_file, days, budget_gpu_hours, budget_usd = args.scenario_file, args.days, args.budget_gpu_hours, args.budget_usd
    fmt_name, output, quiet = args.format, args.output, args.quiet
    from ..output import report_data
    from ..output.emit import Output, emit_output
    from ..output.schema import without_envelope
    from .shared import gate_lines, planning, result_warnings

    if fmt_name == "html" and not output and sys.stdout.isatty():
        raise InputError("mpg report writes an HTML page: give -o FILE.html",
                         hint="or --format json for the data, or redirect: mpg report ... > plan.html")
    from ..parsing import parse_gpus

    hours = planning(opts, days, budget_gpu_hours, budget_usd)
    counts = None if scenario_file else parse_gpus(opts.get("gpus"))
    if counts and len(counts) > 1:  # a --gpus list is the scaling curve; the first count is detailed
        opts = {**opts, "gpus": str(counts[0])}
    else:
        counts = None
    rows, origin = _rows(opts, scenario_file, days, hours)
    doc = report_data.build(rows, 0, origin[0].get("calibration"), counts)
    results = [r for _, r in rows]
    out = Output("report", without_envelope(doc), warnings=result_warnings(results), gates=gate_lines(results))
    if fmt_name == "html":  # the page is this command's one human format (written as it is, like Markdown)
        from ..output.report_html import render as page

        html = page(doc)
        out.markdown = lambda: html
        if output and not quiet:
            out.confirmation = f"Wrote {output}: {html.count('<svg ')} charts for {doc['title']}; open it in a browser"
    return emit_output(out, "markdown" if fmt_name == "html" else fmt_name, output, quiet)
