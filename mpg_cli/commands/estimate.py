"""mpg estimate: one scenario (or a scaling table over several GPU counts)."""

from __future__ import annotations

from typing import Any, Optional

from ..output.emit import Output, emit_output, format_of
from .shared import compute, gate_lines, planning, result_warnings


def run(opts: dict[str, Any], explain: bool = False, days: Optional[float] = None,
        budget_gpu_hours: Optional[float] = None, budget_usd: Optional[float] = None) -> int:
    from .. import render
    from ..inputs.merge import apply_from

    opts = apply_from(opts)
    hours = planning(opts, days, budget_gpu_hours, budget_usd)
    results = compute(opts, days, hours)
    if len(results) > 1:
        from ..output.scaling import scaling_output

        out = scaling_output(results)
    else:
        r = results[0]
        out = Output("estimate", render.estimate_body(r, explain),
                     tables=lambda: render.estimate_tables(r, explain),
                     markdown=lambda: render.estimate_markdown(r, explain))
    out.warnings, out.gates = result_warnings(results), gate_lines(results)
    return emit_output(out, format_of(opts), opts.get("output"), bool(opts.get("quiet")))
