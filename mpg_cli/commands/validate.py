"""mpg validate: predict every published run shipped with mpg and compare with what was measured."""

from __future__ import annotations

from typing import Any, Optional

from ..humanize import fmt, signed_percent


def run(fmt_name: str, output: Optional[str], group: Optional[str], max_median_error: Optional[float]) -> int:
    from .. import __version__, render
    from ..errors import ExitCode, InputError
    from ..validation import summary, validate_all

    from ..parsing import check_positive

    check_positive(max_median_error, "--max-median-error", allow_zero=True)
    results = validate_all()
    if group:
        groups = sorted({r.group for r in results})
        results = [r for r in results if group in r.group]
        if not results:
            from ..errors import did_you_mean

            raise InputError(f"--group {group!r} matches no run group",
                             hint=did_you_mean(group, groups) or f"groups: {', '.join(groups)}")
    stats = summary(results)
    rows: list[dict[str, Any]] = [{
        "id": r.id, "group": r.group, "gpus": r.gpus, "measured_tokens_per_s_per_gpu": r.measured_tokens_s_gpu,
        "predicted_tokens_per_s_per_gpu": r.predicted_tokens_s_gpu, "error": r.error,
        "measured_mfu": r.measured_mfu, "predicted_mfu": r.predicted_mfu, "layout": r.layout,
        "memory_fraction_of_capacity": r.memory_fraction, "memory_fits": r.memory_fits, "source": r.source,
    } for r in results]
    if fmt_name == "json":
        doc = {"schema_version": render.SCHEMA_VERSION, "mpg_version": __version__, "command": "validate",
               "mfu_definition": "model FLOPs (Megatron/Korthikanti convention, full s^2) / dense bf16 peak",
               "summary": stats, "runs": rows}
        render.emit(render.to_json(doc), output)
    elif fmt_name == "csv":
        render.emit(render.to_csv(rows), output)
    else:
        headers = ["run", "GPUs", "measured tok/s/GPU", "predicted", "error", "MFU meas.", "MFU pred.", "layout used",
                   "memory"]
        body = [[r.id, f"{r.gpus:,}", f"{r.measured_tokens_s_gpu:,.1f}",
                 "—" if r.predicted_tokens_s_gpu is None else f"{r.predicted_tokens_s_gpu:,.1f}",
                 "—" if r.error is None else signed_percent(r.error), fmt(r.measured_mfu, "percent"),
                 fmt(r.predicted_mfu, "percent"), r.layout,
                 "—" if r.memory_fraction is None else f"{r.memory_fraction:.0%}" + ("" if r.memory_fits else " (over)")]
                for r in results]
        foot = (f"{stats['runs']} runs: median |error| {fmt(stats['median_abs_error'], 'percent')}, "
                f"90th percentile {fmt(stats['p90_abs_error'], 'percent')}, "
                f"within ±20%: {fmt(stats['within_20pct'], 'percent')}")
        if fmt_name == "markdown":
            render.emit("## Predicted vs published tokens/s per GPU\n\n" + render.md_table(headers, body)
                        + f"\n{foot}\n", output)
        else:
            table = render.kv_table("Predicted vs published tokens/s per GPU", [tuple(b) for b in body], headers)
            if output:
                render.write_atomic(output, render.tables_to_text([table]) + foot + "\n")
            else:
                render.print_tables([table])
                print(foot)
    if max_median_error is not None and stats["median_abs_error"] > max_median_error:
        import sys

        sys.stderr.write(f"GATE FAILED: median_abs_error {stats['median_abs_error']:.3f} > {max_median_error:.3f}\n")
        return int(ExitCode.GATE_FAILED)
    return int(ExitCode.OK)
