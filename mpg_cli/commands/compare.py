"""mpg compare: scenarios side by side, deltas to a baseline, and a CI budget check against a saved run."""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path
from typing import Any, Optional

from ..core.estimate import Result
from ..errors import ExitCode, InputError, PresetError, did_you_mean
from ..humanize import fmt, signed_percent

METRICS = {"days": ("time", "days"), "gpu_hours": ("gpu_hours",), "cost": ("cost_usd",), "energy": ("energy_kwh",)}
SORT_KEYS = ("label", "model", "cluster", "gpus", "days", "gpu_hours", "cost", "energy", "mfu", "tokens_per_second",
             "memory", "fits")

# scenario-file keys and how to read them (the estimate options, by their Python names)
INT_KEYS = ("seq_length", "global_batch", "micro_batch", "tp", "pp", "dp", "ep", "cp", "virtual_stages", "zero")
FLOAT_KEYS = ("goodput", "price", "tflops", "mfu", "reserved_gib", "headroom", "failures_per_gpu_hour", "storage_tb_s",
              "restart_minutes", "checkpoint_minutes", "maintenance_fraction", "interval")
STR_KEYS = ("label", "model", "cluster", "gpu", "gpus", "tokens", "precision", "recompute", "optimizer", "calibration")
BOOL_KEYS = ("sequence_parallel", "flash_attention", "async_checkpoint")
SCENARIO_KEYS = INT_KEYS + FLOAT_KEYS + STR_KEYS + BOOL_KEYS + ("from", "from_format")


def default_label(model: str, cluster: str, gpu: Optional[str], gpus: Any) -> str:
    return f"{model} @ {cluster}" + (f"/{gpu}" if gpu else "") + f" × {gpus}"


def _scenario_opts(entry: Any, where: str, base: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise PresetError(f"{where}: expected a mapping of estimate options, got {entry!r}"[:200])
    out = dict(base)
    for raw_key, value in entry.items():
        key = str(raw_key).replace("-", "_")
        if key not in SCENARIO_KEYS:
            raise PresetError(f"{where}: {raw_key}: unknown key", hint=did_you_mean(key, SCENARIO_KEYS)
                              or f"allowed keys: {', '.join(SCENARIO_KEYS)}")
        if key == "from":
            files = value if isinstance(value, list) else [value]
            if not files or not all(isinstance(f, str) and f for f in files):
                raise PresetError(f"{where}: from: expected a file path or a list of them, got {value!r}")
            base_dir = Path(where.split(":")[0]).parent
            out["from_"] = list(base.get("from_") or []) + [f if Path(f).is_absolute() or Path(f).exists()
                                                            else str(base_dir / f) for f in files]
            continue
        if key == "from_format":
            if not isinstance(value, str):
                raise PresetError(f"{where}: from_format: expected text, got {value!r}")
            out["from_format"] = value
            continue
        if key in INT_KEYS and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise PresetError(f"{where}: {raw_key}: expected a whole number, got {value!r}")
        if key in FLOAT_KEYS and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise PresetError(f"{where}: {raw_key}: expected a number, got {value!r}")
        if key in BOOL_KEYS and not isinstance(value, bool):
            raise PresetError(f"{where}: {raw_key}: expected true or false, got {value!r}")
        if key in STR_KEYS and (isinstance(value, bool) or not isinstance(value, (str, int, float))):
            raise PresetError(f"{where}: {raw_key}: expected text, got {value!r}")
        out[key] = str(value) if key in STR_KEYS else (float(value) if key in FLOAT_KEYS else value)
    return out


def scenarios(opts: dict[str, Any], models: list[str], clusters: list[str], gpu_types: list[str],
              gpus: list[str], scenario_file: Optional[str]) -> list[tuple[str, dict[str, Any]]]:
    """(label, estimate options) for each scenario: a file's list, or the cross product of repeated flags."""
    from ..inputs.merge import apply_from

    if scenario_file:
        from ..presets import load_yaml_file

        path = Path(scenario_file)
        data = load_yaml_file(path)
        if isinstance(data, dict) and set(data) == {"scenarios"}:
            data = data["scenarios"]
        if not isinstance(data, list) or not data:
            raise PresetError(f"{path}: expected a list of scenarios (or 'scenarios: [...]')",
                              hint="each item: label, model, cluster, gpus, tokens, … (the estimate options)")
        out = []
        for i, entry in enumerate(data):
            o = _scenario_opts(entry, f"{path}: scenarios[{i}]", opts)
            given = {str(k).replace("-", "_") for k in entry} if isinstance(entry, dict) else set()
            o = apply_from(o, extra_explicit=given)
            label = o.pop("label", None) or default_label(_name(o["model"]), o["cluster"], o.get("gpu"),
                                                          o.get("gpus") or "all")
            out.append((label, o))
        labels = [lbl for lbl, _ in out]
        dupes = {x for x in labels if labels.count(x) > 1}
        if dupes:
            raise PresetError(f"{path}: duplicate labels: {', '.join(sorted(dupes))}", hint="give each scenario a unique label")
        return out
    from ..inputs.merge import apply_from

    out = []
    for m, c, g, n in itertools.product(models or [opts["model"]], clusters or [opts["cluster"]],
                                        gpu_types or [opts.get("gpu")], gpus or [opts.get("gpus")]):
        o = apply_from({**opts, "model": m, "cluster": c, "gpu": g, "gpus": n})
        out.append((default_label(_name(o["model"]), c, g, o.get("gpus") or "all"), o))
    return out


def _name(model: Any) -> str:
    """A model option's label: a preset name or path as given, or a ModelSpec's name (from --from)."""
    return getattr(model, "name", model)


def _metric(doc: dict[str, Any], name: str) -> Optional[float]:
    x: Any = doc
    for k in METRICS[name]:
        if not isinstance(x, dict):
            return None
        x = x.get(k)
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def load_against(path_text: str) -> dict[str, dict[str, Any]]:
    """Rows of an earlier 'estimate' or 'compare' JSON document, by label."""
    from ..presets import read_text

    path = Path(path_text)
    try:
        doc = json.loads(read_text(path, "JSON file"))
    except json.JSONDecodeError as exc:
        raise InputError(f"--against {path}: malformed JSON (line {exc.lineno}): {exc.msg}") from None
    except PresetError as exc:
        raise InputError(f"--against {exc.message}", exc.hint) from None
    if not isinstance(doc, dict) or "command" not in doc:
        raise InputError(f"--against {path}: not a JSON document written by mpg (no 'command' key)",
                         hint="save one with 'mpg estimate --format json -o FILE' or 'mpg compare --format json -o FILE'")
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
            for k in ("days", "gpu_hours"):
                if _metric(row, k) is None:
                    raise InputError(f"--against {path}: row {lbl!r}: {k} is missing or not a finite number",
                                     hint="regenerate the baseline with mpg --format json")
        return rows
    raise InputError(f"--against {path}: a {str(doc['command'])[:40]!r} document has no rows to compare with",
                     hint="use the JSON of 'mpg estimate' or 'mpg compare'")


def run(opts: dict[str, Any], models: list[str], clusters: list[str], gpu_types: list[str], gpus: list[str],
        scenario_file: Optional[str], sort: Optional[str], baseline: Optional[str], against: Optional[str],
        fail_on_increase: Optional[str], metric: list[str]) -> int:
    from .. import __version__, render
    from ..parsing import parse_percent
    from .estimate import compute, finish

    threshold = parse_percent(fail_on_increase, "--fail-on-increase") if fail_on_increase is not None else None
    if threshold is not None and not against:
        raise InputError("--fail-on-increase needs --against FILE", hint="save a baseline with --format json -o FILE")
    for mname in metric:
        if mname not in METRICS:
            raise InputError(f"--metric {mname!r} is not one of {', '.join(METRICS)}", hint=did_you_mean(mname, METRICS))
    checked = metric or ["days", "gpu_hours", "cost"]
    rows: list[tuple[str, Result]] = []
    for label, o in scenarios(opts, models, clusters, gpu_types, gpus, scenario_file):
        results = compute(o)
        for r in results:
            lbl = label if len(results) == 1 else f"{label} [{r.request.gpus}]"
            rows.append((lbl, r))
    labels = [lbl for lbl, _ in rows]
    base_label = baseline or labels[0]
    if base_label not in labels:
        raise InputError(f"--baseline {base_label!r} is not a scenario label",
                         hint=did_you_mean(base_label, labels) or f"labels: {', '.join(labels)}")
    docs = []
    for lbl, r in rows:
        d = {"label": lbl, **{k: v for k, v in render.estimate_dict(r, command="compare").items()
                              if k not in ("schema_version", "mpg_version", "command")}}
        docs.append(d)
    base_doc = docs[labels.index(base_label)]
    old = load_against(against) if against else {}
    single_old = len(old) == 1 and len(docs) == 1
    failures: list[str] = []
    for d in docs:
        d["delta_vs_baseline"] = {k: _ratio(_metric(d, k), _metric(base_doc, k)) for k in METRICS}
        prev = old.get(d["label"]) or (next(iter(old.values())) if single_old else None)
        if against:
            d["change_vs_against"] = None if prev is None else {k: _ratio(_metric(d, k), _metric(prev, k)) for k in METRICS}
            if prev is not None and threshold is not None:
                for k in checked:
                    ch = d["change_vs_against"][k]
                    if ch is not None and ch > threshold:
                        failures.append(f"[{d['label']}] {k} {_metric(d, k):,.1f} vs {_metric(prev, k):,.1f} "
                                        f"({signed_percent(ch)} > +{threshold:.1%}; central values)")
    if sort:
        docs = _sorted(docs, sort)
    fmt_name = getattr(opts.get("format"), "value", opts.get("format")) or "table"
    output = opts.get("output")
    if fmt_name == "json":
        render.emit(render.to_json({"schema_version": render.SCHEMA_VERSION, "mpg_version": __version__,
                                    "command": "compare", "baseline": base_label, "rows": docs}), output)
    elif fmt_name == "csv":
        render.emit(render.to_csv([{k: v for k, v in d.items() if k not in ("assumptions", "warnings")} for d in docs]),
                    output)
    else:
        _human(docs, base_label, bool(against), fmt_name, output)
    code = finish([r for _, r in rows], bool(opts.get("quiet")))
    for line in failures:
        sys.stderr.write(f"GATE FAILED: {line}\n")
    return int(ExitCode.GATE_FAILED) if failures else code


def _ratio(new: Optional[float], old: Optional[float]) -> Optional[float]:
    if new is None or old is None or old == 0:
        return None
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


def _human(docs: list[dict[str, Any]], base_label: str, against: bool, fmt_name: str, output: Optional[str]) -> None:
    from .. import render

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
    render.titled_table(f"{len(docs)} scenarios (deltas vs {base_label})", headers, body, fmt_name, output)
