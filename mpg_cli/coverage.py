"""Do the ranges hold? Coverage of the cross-validated ranges over the published runs, leave one source out.

For each published run, its range is built exactly as ``mpg estimate`` builds one (``core.intervals.range_model``:
the class centre and two-level spread, the width calibrated on left-out families), but from the cross-validated
log errors of the *other* source families only, so no run helps make its own range (its family is left out of the
centre, the scale and the calibration scores alike). The run is covered when its own cross-validated log error
lies inside that range, i.e. when its published throughput falls inside the range mpg would have printed for it.
A well-calibrated 80 % range covers about 80 % of runs; 70-90 % is the target overall and in every class with
at least ``MIN_RUNS`` runs (issue 14).
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Optional, Sequence

from .core.intervals import CvRecord, range_model

MIN_RUNS = 20  # a class with fewer runs is reported but marked small: one run moves its share by over 5 points


def _log_error(r: Any) -> Optional[float]:
    if r.predicted_tokens_s_gpu is None or not r.measured_tokens_s_gpu:
        return None
    return math.log(r.predicted_tokens_s_gpu / r.measured_tokens_s_gpu)


def records_of(cv_results: Sequence[Any]) -> tuple[CvRecord, ...]:
    """The cross-validated results as the records ``scripts/fit_perf.py`` stores (``provenance.cv_runs``)."""
    out = []
    for r in cv_results:
        e = _log_error(r)
        if e is not None:
            out.append(CvRecord(r.family, r.generation, e))
    return tuple(out)


def run_ranges(cv_results: Sequence[Any], level: float = 0.8) -> list[dict[str, Any]]:
    """Per run: its range class, the range from the other families, its log error and whether it is covered."""
    records = records_of(cv_results)
    rows = []
    for r in cv_results:
        err = _log_error(r)
        if err is None:
            continue
        model = range_model(records, r.generation, exclude_family=r.family)
        if model is None:
            continue  # only one other source family: none to calibrate a range on
        lo, hi, _ = model.bounds(level)
        rows.append({"id": r.id, "family": r.family, "classes": list(r.classes), "range_class": model.cls,
                     "log_error": err, "q_lo": lo, "q_hi": hi, "covered": lo <= err <= hi})
    return rows


def coverage(cv_results: Sequence[Any], level: float = 0.8,
             classes: Sequence[str] = ("dense-bf16", "dense-fp8", "moe", "fp8", "fsdp", "ampere", "hopper",
                                       "blackwell"), only: Optional[set] = None) -> dict[str, Any]:
    """Share of runs covered and the median range width (hi/lo throughput ratio), overall and per class (a class
    with fewer than MIN_RUNS runs is marked small).

    ``only``: the run ids to report (mpg validate --group); the ranges still come from every other family."""
    rows = [x for x in run_ranges(cv_results, level) if only is None or x["id"] in only]
    out: dict[str, Any] = {"level": level, "min_runs": MIN_RUNS, "by_class": {}}

    def share(sel: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(sel)
        k = sum(x["covered"] for x in sel)
        width = statistics.median(math.exp(x["q_hi"] - x["q_lo"]) for x in sel) if sel else None
        return {"runs": n, "covered": k, "share": k / n if n else None, "enough_runs": n >= MIN_RUNS,
                "median_width_ratio": width}

    out["all"] = share(rows)
    for c in classes:
        sel = [x for x in rows if c in x["classes"]]
        if sel:
            out["by_class"][c] = share(sel)
    out["runs"] = rows
    return out


def coverage_lines(cov: dict[str, Any]) -> list[str]:
    """Text lines for mpg validate's footer."""
    lvl = cov["level"]
    a = cov["all"]
    if not a["runs"]:
        return [f"range coverage ({lvl:.0%} ranges, leave one source out)  not computable: one source family only"]
    lines = [f"range coverage ({lvl:.0%} ranges, leave one source out)  {a['covered']} of {a['runs']} runs = "
             f"{a['share']:.0%}, median width ×{a['median_width_ratio']:.2f}  (each run's range built as mpg estimate "
             "builds it, from the other source families only)"]
    for c, s in cov["by_class"].items():
        note = "" if s["enough_runs"] else f" (fewer than {cov['min_runs']} runs)"
        lines.append(f"  {c:<12} {s['covered']:>3} of {s['runs']:>3} = {s['share']:.0%}  "
                     f"width ×{s['median_width_ratio']:.2f}{note}")
    return lines


LABELS = {"all": "**all**", "dense-bf16": "dense bf16", "dense-fp8": "dense FP8", "moe": "MoE",
          "fp8": "FP8 (dense and MoE)", "fsdp": "FSDP / ZeRO-3", "ampere": "Ampere (A100)", "hopper": "Hopper (H100)",
          "blackwell": "Blackwell (B200, B300, GB200, GB300)"}


def coverage_table(cov: dict[str, Any]) -> str:
    """The README's coverage table (Markdown): runs, covered share and median width, overall and per class."""
    lines = [f"| class | runs | inside the {cov['level']:.0%} range | share | median width (high / low) |",
             "|---|---|---|---|---|"]
    for name, s in [("all", cov["all"])] + list(cov["by_class"].items()):
        small = "" if s["enough_runs"] else f" (fewer than {cov['min_runs']} runs)"
        lines.append(f"| {LABELS.get(name, name)}{small} | {s['runs']} | {s['covered']} | {100 * s['share']:.0f} % | "
                     f"×{s['median_width_ratio']:.2f} |")
    return "\n".join(lines) + "\n"
