"""Do the ranges hold? Coverage of the cross-validated ranges over the published runs, leave one source out.

For each published run, its range is built exactly as ``mpg estimate`` builds one (``core.intervals``: the
run's kind or GPU generation class, whichever is smaller with enough runs, else all), but from the
cross-validated log errors of the *other* source families only, so no run helps make its own range. The run
is covered when its own cross-validated log error lies between the range's quantiles, i.e. when its published
throughput falls inside the range mpg would have printed. A well-calibrated 80 % range covers about 80 % of runs.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

from .core.intervals import MIN_RUNS, choose_class, log_error_bounds

KINDS = ("moe", "dense-fp8", "dense-bf16")


def _log_error(r: Any) -> Optional[float]:
    if r.predicted_tokens_s_gpu is None or not r.measured_tokens_s_gpu:
        return None
    return math.log(r.predicted_tokens_s_gpu / r.measured_tokens_s_gpu)


def run_ranges(cv_results: Sequence[Any], level: float = 0.8) -> list[dict[str, Any]]:
    """Per run: its class, the other families' quantiles, its log error and whether the range covers it."""
    rows = []
    for r in cv_results:
        err = _log_error(r)
        if err is None:
            continue
        others: dict[str, list[float]] = {}
        for o in cv_results:
            e = _log_error(o)
            if o.family == r.family or e is None:
                continue
            others.setdefault("all", []).append(e)
            for c in o.classes:
                others.setdefault(c, []).append(e)
        kind = next((c for c in r.classes if c in KINDS), "all")
        gen = next((c for c in r.classes if c not in KINDS and c not in ("fp8", "fsdp")), "all")
        if len(others.get("all", ())) < 2:
            continue  # only one source family: no other family to build a range from
        cls = choose_class(others, kind, gen, MIN_RUNS)
        lo, hi = log_error_bounds(others[cls], level)
        rows.append({"id": r.id, "family": r.family, "classes": list(r.classes), "range_class": cls,
                     "log_error": err, "q_lo": lo, "q_hi": hi, "covered": lo <= err <= hi})
    return rows


def coverage(cv_results: Sequence[Any], level: float = 0.8,
             classes: Sequence[str] = ("dense-bf16", "dense-fp8", "moe", "fp8", "fsdp", "ampere", "hopper",
                                       "blackwell"), only: Optional[set] = None) -> dict[str, Any]:
    """Share of runs covered, overall and per class (a class with fewer than MIN_RUNS runs is marked small).

    ``only``: the run ids to report (mpg validate --group); the ranges still come from every other family."""
    rows = [x for x in run_ranges(cv_results, level) if only is None or x["id"] in only]
    out: dict[str, Any] = {"level": level, "min_runs": MIN_RUNS, "by_class": {}}

    def share(sel: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(sel)
        k = sum(x["covered"] for x in sel)
        return {"runs": n, "covered": k, "share": k / n if n else None, "enough_runs": n >= MIN_RUNS}

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
             f"{a['share']:.0%}  (each run's range from the other source families' cross-validated errors)"]
    for c, s in cov["by_class"].items():
        note = "" if s["enough_runs"] else f" (fewer than {cov['min_runs']} runs)"
        lines.append(f"  {c:<12} {s['covered']:>3} of {s['runs']:>3} = {s['share']:.0%}{note}")
    return lines
