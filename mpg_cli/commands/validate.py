"""mpg validate: predict every published run shipped with mpg, in sample and cross-validated, and compare."""

from __future__ import annotations

from typing import Any, Optional

from ..output.emit import Output, emit_output
from ..humanize import fmt, signed_percent

CV_NOTE = ("cross-validated = leave one source out: each run predicted with the constants fitted without its "
           "benchmark family (scripts/fit_perf.py); in-sample = the shipped constants, fitted on every run")


def constant_warnings(doc: dict[str, Any], document_of: Optional[dict[str, str]] = None) -> list[str]:
    """A constant informed by one source only is a warning: its cross-validated fold falls back to a stand-in.
    So is one informed by several benchmark families of one source document only (``document_of``: family ->
    document): leaving one family out never tests it against another document's runs."""
    informed = doc.get("provenance", {}).get("informed_by", {})
    out = []
    for name, fams in informed.items():
        docs = sorted({(document_of or {}).get(f, f) for f in fams})
        if len(fams) == 1:
            out.append(f"constant {name} is informed by one source only ({fams[0]}): its value rests on that source")
        elif len(docs) == 1:
            out.append(f"constant {name} is informed by {len(fams)} benchmark families of one source document only "
                       f"({docs[0]}): no other document's runs test it")
    return out


def _document_line(stats: dict[str, dict[str, float]]) -> str:
    """The stricter check in one line: a whole source document left out (which may leave a GPU generation
    unfitted)."""
    parts = [f"{k} {fmt(v['median_abs_error'], 'percent')}" for k, v in stats.items() if k != "all"]
    a = stats["all"]
    return (f"leave one source document out (stricter: all of a paper's, README's or vendor's families at once; a GPU "
            f"generation left with no run uses its stand-in): median {fmt(a['median_abs_error'], 'percent')}, "
            f"p90 {fmt(a['p90_abs_error'], 'percent')}; medians " + ", ".join(parts))


def _summary_line(label: str, ins: dict[str, float], cv: dict[str, float]) -> str:
    return (f"{label:<12} {cv['runs']:>4}   CV median {fmt(cv['median_abs_error'], 'percent'):>6}, p90 "
            f"{fmt(cv['p90_abs_error'], 'percent'):>6}   in-sample median {fmt(ins['median_abs_error'], 'percent'):>6}, "
            f"p90 {fmt(ins['p90_abs_error'], 'percent'):>6}")


def run(fmt_name: str, output: Optional[str], group: Optional[str], max_median_error: Optional[float]) -> int:

    from .. import render
    from ..validation import by_class, cross_validate, load_constants_document, published_runs, validate_all

    from ..parsing import check_positive

    check_positive(max_median_error, "--max-median-error", allow_zero=True)
    results, cv_results, doc_results = validate_all(), cross_validate(), cross_validate("document")
    all_cv = list(cv_results)
    if group:
        results, cv_results = _in_group(results, cv_results, group)
        kept = {x.id for x in results}
        doc_results = [r for r in doc_results if r.id in kept]
    from ..coverage import coverage, coverage_lines

    cov = coverage(all_cv, only={r.id for r in cv_results})
    doc_consts = load_constants_document()
    ins_stats, cv_stats, doc_stats = by_class(results), by_class(cv_results), by_class(doc_results)
    warnings = constant_warnings(doc_consts, {r.family: r.document for r in published_runs()})
    misses = [r for r in results if r.memory_fits is False]
    rows = _run_rows(results, cv_results)
    body = {"mfu_definition": "model FLOPs (Megatron/Korthikanti convention, full s^2) / dense peak at the run's "
                              "precision",
            "cross_validation": CV_NOTE,
            "summary": cv_stats["all"], "summary_in_sample": ins_stats["all"],
            "by_class": {"cross_validated": cv_stats, "in_sample": ins_stats,
                         "cross_validated_by_document": doc_stats},
            "constants": {"count": doc_consts.get("count"), "values": doc_consts.get("constants"),
                          "informed_by": doc_consts.get("provenance", {}).get("informed_by", {}),
                          "runs_sha256": doc_consts.get("provenance", {}).get("runs_sha256")},
            "range_coverage": {k: v for k, v in cov.items() if k != "runs"},
            "warnings": warnings, "runs": rows}
    headers = ["run", "GPUs", "measured tok/s/GPU", "predicted", "error", "CV error", "layout used", "memory"]
    table_rows = _table_rows(results, cv_results)
    lines = [_summary_line(k, ins_stats[k], cv_stats[k]) for k in cv_stats]
    foot = ("\n".join(lines) + f"\n{CV_NOTE}\n" + _document_line(doc_stats) + "\n"
            + f"memory: {len(misses)} of {len(results)} published layouts over the usable limit"
            + (f" ({', '.join(r.id for r in misses)})" if misses else "") + "\n"
            + "\n".join(coverage_lines(cov)) + "\n")
    title = "Predicted vs published tokens/s per GPU"
    out = Output("validate", body, warnings=warnings, footer=foot,
                 csv_rows=[{k: (";".join(v) if isinstance(v, list) else v) for k, v in row.items()} for row in rows],
                 tables=lambda: [render.kv_table(title, [tuple(b) for b in table_rows], headers)],
                 markdown=lambda: f"## {title}\n\n" + render.md_table(headers, table_rows) + "\n```\n" + foot + "```\n")
    stat = cv_stats["all"]["median_abs_error"]
    if max_median_error is not None and not stat <= max_median_error:
        out.gates.append(f"cross-validated median_abs_error {stat:.3f} > {max_median_error:.3f}")
    return emit_output(out, fmt_name, output)


def _in_group(results: list[Any], cv_results: list[Any], group: str) -> tuple[list[Any], list[Any]]:
    """The runs (and their cross-validated twins) whose group or family contains ``group``."""
    from ..errors import InputError, did_you_mean

    groups = sorted({r.group for r in results} | {r.family for r in results})
    keep = [i for i, r in enumerate(results) if group in r.group or group in r.family]
    if not keep:
        raise InputError(f"--group {group!r} matches no run group",
                         hint=did_you_mean(group, groups) or f"groups: {', '.join(groups)}")
    return [results[i] for i in keep], [cv_results[i] for i in keep]


def _run_rows(results: list[Any], cv_results: list[Any]) -> list[dict[str, Any]]:
    """One JSON row per run: measured, predicted in sample and cross-validated, layout and memory."""
    return [{
        "id": r.id, "group": r.group, "family": r.family, "classes": list(r.classes), "gpus": r.gpus,
        "measured_tokens_per_s_per_gpu": r.measured_tokens_s_gpu,
        "predicted_tokens_per_s_per_gpu": r.predicted_tokens_s_gpu, "error": r.error,
        "cross_validated_tokens_per_s_per_gpu": c.predicted_tokens_s_gpu, "cross_validated_error": c.error,
        "measured_mfu": r.measured_mfu, "predicted_mfu": r.predicted_mfu, "layout": r.layout,
        "memory_fraction_of_capacity": r.memory_fraction, "memory_fits": r.memory_fits,
        "unmodelled": list(r.unmodelled), "source": r.source,
    } for r, c in zip(results, cv_results)]


def _table_rows(results: list[Any], cv_results: list[Any]) -> list[list[str]]:
    """One table row per run, formatted."""
    return [[r.id, f"{r.gpus:,}", f"{r.measured_tokens_s_gpu:,.1f}",
             "—" if r.predicted_tokens_s_gpu is None else f"{r.predicted_tokens_s_gpu:,.1f}",
             "—" if r.error is None else signed_percent(r.error),
             "—" if c.error is None else signed_percent(c.error), r.layout,
             "—" if r.memory_fraction is None else f"{r.memory_fraction:.0%}" + ("" if r.memory_fits else " (over)")]
            for r, c in zip(results, cv_results)]
