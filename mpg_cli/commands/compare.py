"""mpg compare: scenarios side by side, deltas to a baseline, and a CI budget check against a saved run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

from ..args import CompareArgs
from ..core.estimate import Result
from ..errors import InputError, MpgError, PresetError, did_you_mean
from ..humanize import fmt, signed_percent
from ..inputs.scenarios import MAX_SCENARIOS, default_label, scenarios
from ..output.emit import Output, emit_output, format_of
from .shared import compute, gate_lines, result_warnings

METRICS = {"days": ("time", "days"), "gpu_hours": ("gpu_hours",), "cost": ("cost_usd",), "energy": ("energy_kwh",)}
SORT_KEYS = ("label", "model", "cluster", "gpus", "days", "gpu_hours", "cost", "energy", "mfu", "tokens_per_second",
             "memory", "fits")


def _metric(doc: dict[str, Any], name: str) -> Optional[float]:
    x: Any = doc
    for k in METRICS[name]:
        if not isinstance(x, dict):
            return None
        x = x.get(k)
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def load_against(path_text: str) -> dict[str, dict[str, Any]]:
    """Rows of an earlier 'estimate' or 'compare' JSON document, by label."""
    from ..inputs.files import read_text

    path = Path(path_text)
    from ..inputs.files import _show

    try:
        doc = json.loads(read_text(path, "JSON file"))
    except json.JSONDecodeError as exc:
        raise InputError(f"--against {path}: malformed JSON (line {exc.lineno}): {exc.msg}") from None
    except PresetError as exc:
        raise InputError(f"--against {exc.message}", exc.hint) from None
    except RecursionError:
        raise InputError(f"--against {path}: JSON nested too deeply") from None
    except ValueError as exc:  # an integer over Python's 4,300-digit limit
        raise InputError(f"--against {path}: unreadable JSON value: {str(exc)[:100]}") from None
    if not isinstance(doc, dict) or "command" not in doc:
        raise InputError(f"--against {path}: not a JSON document written by mpg (no 'command' key)",
                         hint="save one with 'mpg estimate --format json -o FILE' or 'mpg compare --format json -o FILE'")
    from ..render import SCHEMA_VERSION

    if doc.get("schema_version") != SCHEMA_VERSION:
        raise InputError(f"--against {path}: schema_version {_show(doc.get('schema_version'))}, this mpg reads "
                         f"{SCHEMA_VERSION}", hint="regenerate the baseline with this version of mpg")
    if doc["command"] not in ("compare", "estimate", "estimate-scaling"):
        raise InputError(f"--against {path}: written by 'mpg {_show(doc['command'])}'; compare reads the JSON of "
                         "'mpg compare' or 'mpg estimate'", hint="save one with 'mpg compare --format json -o FILE'")
    def label_of(d: Any) -> Optional[str]:
        i = d.get("inputs") if isinstance(d, dict) else None
        if not isinstance(i, dict) or not all(isinstance(i.get(k), (str, int)) for k in ("model", "cluster", "gpus")):
            return None
        return default_label(str(i["model"]), str(i["cluster"]), None, i["gpus"])

    rows: dict[str, dict[str, Any]] = {}
    if doc["command"] == "compare" and isinstance(doc.get("rows"), list):
        rows = {str(r.get("label")): r for r in doc["rows"] if isinstance(r, dict)}
    elif doc["command"] == "estimate" and label_of(doc):
        rows = {str(label_of(doc)): doc}
    elif doc["command"] == "estimate-scaling" and isinstance(doc.get("estimates"), list):
        rows = {str(label_of(e)): e for e in doc["estimates"] if label_of(e)}
    if rows:
        for lbl, row in rows.items():
            for k in METRICS:
                v = _metric(row, k)
                if k in ("days", "gpu_hours") and (v is None or v <= 0):
                    raise InputError(f"--against {path}: row {lbl!r}: {k} is missing, zero, negative or not a "
                                     "finite number", hint="regenerate the baseline with mpg --format json")
                if v is not None and v < 0:
                    raise InputError(f"--against {path}: row {lbl!r}: {k} is negative",
                                     hint="regenerate the baseline with mpg --format json")
        return rows
    raise InputError(f"--against {path}: a {str(doc['command'])[:40]!r} document has no rows to compare with",
                     hint="use the JSON of 'mpg estimate' or 'mpg compare'")


def run(opts: dict[str, Any], args: CompareArgs) -> int:
    """Estimate every scenario, the deltas to the baseline and the changes against --against; the gates."""
    models, clusters, gpu_types, gpus = list(args.models), list(args.clusters), list(args.gpu_types), list(args.gpus)
    sort, baseline, against, days = args.sort, args.baseline, args.against, args.days
    fail_on_increase, metric = args.fail_on_increase, list(args.metrics)
    allow_new, allow_missing, scenario_file = args.allow_new, args.allow_missing, args.scenario_file
    from .. import render
    from ..parsing import parse_percent

    threshold = parse_percent(fail_on_increase, "--fail-on-increase", strict=True) if fail_on_increase is not None else None
    if threshold is not None and not against:
        raise InputError("--fail-on-increase needs --against FILE", hint="save a baseline with --format json -o FILE")
    for mname in metric:
        if mname not in METRICS:
            raise InputError(f"--metric {mname!r} is not one of {', '.join(METRICS)}", hint=did_you_mean(mname, METRICS))
    checked = metric or ["days", "gpu_hours", "cost"]
    grid = _grid(opts, models, clusters, gpu_types, gpus, scenario_file, days)
    rows = _estimates(grid, days)
    labels = [lbl for lbl, _ in rows]
    base_label = baseline or labels[0]
    if base_label not in labels:
        raise InputError(f"--baseline {base_label!r} is not a scenario label",
                         hint=did_you_mean(base_label, labels) or f"labels: {', '.join(labels)}")
    docs = []
    for lbl, r in rows:
        d = {"label": lbl, **render.estimate_body(r)}
        docs.append(d)
    base_doc = docs[labels.index(base_label)]
    for d in docs:
        d["delta_vs_baseline"] = {k: _ratio(_metric(d, k), _metric(base_doc, k)) for k in METRICS}
    failures = _against(docs, against, threshold, checked, allow_new, allow_missing) if against else []
    if sort:
        docs = _sorted(docs, sort)
    title, headers, body, drop = _human(docs, base_label, bool(against))
    results = [r for _, r in rows]
    out = Output("compare", {"baseline": base_label, "rows": docs},
                 csv_rows=[{k: v for k, v in d.items() if k not in ("assumptions", "warnings")} for d in docs],
                 tables=lambda: [render.kv_table(title, [tuple(row) for row in body], headers, drop)],
                 markdown=lambda: render.titled_markdown(title, headers, body),
                 warnings=result_warnings(results), gates=gate_lines(results) + failures)
    return emit_output(out, format_of(opts), opts.get("output"), bool(opts.get("quiet")))


def _grid(opts: dict[str, Any], models: list[str], clusters: list[str], gpu_types: list[str], gpus: list[str],
          scenario_file: Optional[str], days: Optional[float]) -> list[tuple[str, dict[str, Any]]]:
    """(label, options) per scenario; with --days no scenario may give a GPU count (each is solved for)."""
    from ..parsing import check_positive

    check_positive(days, "--days")
    if days is not None and gpus:
        raise InputError("--days solves for each scenario's GPU count: leave --gpus out")
    grid = scenarios(opts, models, clusters, gpu_types, gpus, scenario_file)
    if days is not None:
        with_gpus = [lbl for lbl, o in grid if o.get("gpus")]
        if with_gpus:
            raise InputError(f"--days solves for the GPU count, but scenario {with_gpus[0]!r} gives gpus",
                             hint="remove 'gpus' from the scenarios, or leave --days out")
        from ..humanize import days_text

        grid = [(lbl[: -len(" × all")] + f" in {days_text(days)}" if lbl.endswith(" × all") else lbl, o)
                for lbl, o in grid]
    if len(grid) > MAX_SCENARIOS:
        raise InputError(f"{len(grid):,} scenarios from the repeated flags; compare takes at most {MAX_SCENARIOS:,}",
                         hint="fewer -m/-c/--gpu/-n values")
    return grid


def _estimates(grid: list[tuple[str, dict[str, Any]]], days: Optional[float]) -> list[tuple[str, Result]]:
    """(label, result) for every scenario (a scenario with a --gpus list gives one row per count); an error in
    a scenario file's entry names the entry."""
    rows: list[tuple[str, Result]] = []
    for label, o in grid:
        where = o.pop("_where", None)
        try:
            results = compute(o, days=days)
        except MpgError as exc:
            if where is None:
                raise
            raise PresetError(f"{where}: {exc.message}", hint=exc.hint) from None
        for r in results:
            lbl = label if len(results) == 1 else f"{label} [{r.request.gpus}]"
            rows.append((lbl, r))
    return rows


def _against(docs: list[dict[str, Any]], against: str, threshold: Optional[float], checked: list[str],
             allow_new: bool, allow_missing: bool) -> list[str]:
    """Each row's change against the --against document (``change_vs_against``, added to the rows), and the
    failed budget checks: a checked metric up by more than ``threshold``, a new row, a missing row."""
    old = load_against(against)
    single_old = len(old) == 1 and len(docs) == 1
    failures: list[str] = []
    matched: set[str] = set()
    for d in docs:
        prev = old.get(d["label"]) or (next(iter(old.values())) if single_old else None)
        if prev is not None:
            matched.add(next(k for k, v in old.items() if v is prev))
        elif threshold is not None and not allow_new:
            failures.append(f"[{d['label']}] is new: not in --against {against} (pass --allow-new to accept it)")
        d["change_vs_against"] = None if prev is None else {k: _ratio(_metric(d, k), _metric(prev, k)) for k in METRICS}
        if prev is not None and threshold is not None:
            for k in checked:
                ch = d["change_vs_against"][k]
                if ch is not None and ch > threshold:
                    failures.append(f"[{d['label']}] {k} {_metric(d, k):,.1f} vs {_metric(prev, k):,.1f} "
                                    f"({signed_percent(ch)} > +{threshold:.1%}; central values)")
    if threshold is not None and not allow_missing:
        for lbl in old:
            if lbl not in matched:
                failures.append(f"[{lbl}] is missing: in --against {against} but not compared now "
                                "(pass --allow-missing to accept it)")
    return failures


def _ratio(new: Optional[float], old: Optional[float]) -> Optional[float]:
    """new/old - 1; from a zero baseline, any rise is an infinite increase (it fails every gate)."""
    if new is None or old is None or old < 0:
        return None
    if old == 0:
        return 0.0 if new == 0 else math.inf
    return new / old - 1.0


def _sort_value(d: dict[str, Any], key: str) -> Any:
    i = d["inputs"]
    table = {"label": d["label"], "model": i["model"], "cluster": i["cluster"], "gpus": i["gpus"],
             "days": d["time"]["days"], "gpu_hours": d["gpu_hours"], "cost": d["cost_usd"], "energy": d["energy_kwh"],
             "mfu": d["throughput"]["mfu"], "tokens_per_second": d["throughput"]["tokens_per_second"],
             "memory": d["memory"]["fraction_of_capacity"], "fits": d["memory"]["fits"]}
    v = table[key]
    return (v is None, v if v is not None else 0)


def _sorted(docs: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    reverse = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in SORT_KEYS:
        raise InputError(f"--sort {sort!r}: unknown column", hint=did_you_mean(key, SORT_KEYS)
                         or f"columns: {', '.join(SORT_KEYS)} (prefix '-' for descending)")
    return sorted(docs, key=lambda d: _sort_value(d, key), reverse=reverse)


def _with_delta(text: str, delta: Optional[float], show: bool) -> str:
    return text if (not show or delta is None) else f"{text} ({signed_percent(delta)})"


def _human(docs: list[dict[str, Any]], base_label: str,
           against: bool) -> tuple[str, list[str], list[list[str]], tuple[str, ...]]:
    """The comparison table: title, headers, rows and the columns a narrow console drops first."""
    levels = {d["intervals"]["level"] for d in docs if d.get("intervals")}
    rng = f"days {levels.pop():.0%} range" if len(levels) == 1 else "days range"
    headers = ["scenario", "GPUs", "layout", "days", rng, "GPU-hours", "cost", "energy", "MFU", "tokens/s", "memory",
               "fits"]
    if against:
        headers.append("vs --against (days / GPU-h / cost)")
    body = []
    for d in docs:
        dv, i = d["delta_vs_baseline"], d["inputs"]
        show = d["label"] != base_label
        lay = f"{i['tp']}·{i['pp']}·{i['dp']}" + (f"·ep{i['ep']}" if i["ep"] > 1 else "") + f" z{i['zero']} {i['recompute']}"
        row = [d["label"] + (" (baseline)" if not show else ""), f"{i['gpus']:,}", lay,
               _with_delta(fmt(d["time"]["days"], "days"), dv["days"], show),
               ("—" if not d.get("intervals") else
                f"{fmt(d['intervals']['days'][0], 'days')} - {fmt(d['intervals']['days'][1], 'days')}"),
               _with_delta(fmt(d["gpu_hours"], "gpu_hours"), dv["gpu_hours"], show),
               _with_delta(fmt(d["cost_usd"], "usd"), dv["cost"], show), fmt(d["energy_kwh"], "kwh"),
               fmt(d["throughput"]["mfu"], "percent"), fmt(d["throughput"]["tokens_per_second"], "tokens_s"),
               fmt(d["memory"]["fraction_of_capacity"], "percent"), "yes" if d["memory"]["fits"] else "NO"]
        if against:
            ch = d.get("change_vs_against")
            row.append("new" if ch is None else " / ".join("—" if ch[k] is None else signed_percent(ch[k])
                                                             for k in ("days", "gpu_hours", "cost")))
        body.append(row)
    return (f"{len(docs)} scenarios (deltas vs {base_label})", headers, body,
            ("energy", "tokens/s", "memory", "layout", "MFU"))
