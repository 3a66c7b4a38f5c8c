"""mpg estimate: one scenario (or a scaling table over several GPU counts)."""

from __future__ import annotations

import sys
from typing import Any

from ..core.estimate import EstimateError, Result, apply_gates, estimate
from ..errors import ExitCode, InputError
from ..humanize import fmt, signed_percent
from ..scenario import build_requests


def compute(opts: dict[str, Any]) -> list[Result]:
    """Estimate every requested GPU count and apply the gates."""
    results = []
    for req in build_requests(opts):
        try:
            r = estimate(req)
            apply_gates(r, opts.get("max_days"), opts.get("max_gpu_hours"), opts.get("max_cost"),
                        bool(opts.get("require_fit")))
        except EstimateError as exc:
            raise InputError(exc.message, exc.hint) from None
        results.append(r)
    return results


def gate_lines(results: list[Result]) -> list[str]:
    """One stderr line per failed gate, e.g. 'gpu_hours 61,200 > 50,000 (+22.4%)'."""
    lines = []
    for r in results:
        tag = f"[{r.request.gpus} GPUs] " if len(results) > 1 else ""
        for c in r.checks:
            if c.passed:
                continue
            if c.name == "memory_bytes_per_gpu":
                lines.append(f"{tag}fits: {fmt(c.value, 'bytes')} per GPU > {fmt(c.limit, 'bytes')} usable "
                             f"({signed_percent(c.value / c.limit - 1)})")
            else:
                lines.append(f"{tag}{c.name} {c.value:,.1f} > {c.limit:,.1f} ({signed_percent(c.value / c.limit - 1)})")
    return lines


def finish(results: list[Result], quiet: bool) -> int:
    """Warnings and gate failures to stderr; the exit code."""
    if not quiet:
        seen: set[str] = set()
        for r in results:
            for w in r.warnings:
                if w not in seen:
                    seen.add(w)
                    sys.stderr.write(f"WARNING: {w}\n")
            if not r.memory.fits and not any(c.name == "memory_bytes_per_gpu" for c in r.checks):
                sys.stderr.write(f"WARNING: does not fit: {fmt(r.memory.total, 'bytes')} per GPU > "
                                 f"{fmt(r.memory.usable, 'bytes')} usable; try 'mpg fit' for a layout that does\n")
    failures = gate_lines(results)
    for line in failures:
        sys.stderr.write(f"GATE FAILED: {line}\n")
    return int(ExitCode.GATE_FAILED if failures else ExitCode.OK)


def run(opts: dict[str, Any], explain: bool = False) -> int:
    from .. import render

    results = compute(opts)
    fmt_name = getattr(opts.get("format"), "value", opts.get("format")) or "table"
    output = opts.get("output")
    if len(results) > 1:
        from .scaling import render_scaling

        render_scaling(results, fmt_name, output)
        return finish(results, bool(opts.get("quiet")))
    r = results[0]
    if fmt_name == "json":
        render.emit(render.to_json(render.estimate_dict(r, explain)), output)
    elif fmt_name == "csv":
        render.emit(render.to_csv([render.estimate_dict(r, explain)]), output)
    elif fmt_name == "markdown":
        render.emit(render.estimate_markdown(r, explain), output)
    elif output:
        render.write_atomic(output, render.tables_to_text(render.estimate_tables(r, explain)))
    else:
        render.print_tables(render.estimate_tables(r, explain))
    return finish(results, bool(opts.get("quiet")))
