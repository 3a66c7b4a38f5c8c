"""mpg compare: scenarios side by side, deltas to a baseline, and a CI budget check against a saved run."""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path
from typing import Any, Optional

from ..core.estimate import Result
from ..errors import ExitCode, InputError, MpgError, PresetError, did_you_mean
from ..humanize import fmt, signed_percent
from ..sanitize import clean_line

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


# the same limits as the flags (mpg_cli/options.py and scenario.build_requests), checked here so that the
# message names the file, the scenario and the key instead of a flag the user never typed
INT_RANGE = {"seq_length": (1, 10_000_000), "global_batch": (1, 100_000_000), "micro_batch": (1, 1_000_000),
             "tp": (1, 1_000_000), "pp": (1, 1_000_000), "dp": (1, 10_000_000), "ep": (1, 1_000_000),
             "cp": (1, 1_000_000), "virtual_stages": (1, 1_000_000), "zero": (0, 3)}
FLOAT_RANGE = {"goodput": (0.0, 1.0, False), "price": (0.0, 1e9, True), "tflops": (0.0, 1e9, False),
               "mfu": (0.0, 1.0, False), "reserved_gib": (0.0, 1e9, True), "headroom": (0.0, 0.9, True)}
CHOICES = {"precision": ("bf16", "fp16", "fp8"), "recompute": ("none", "selective", "full"),
           "optimizer": ("adam", "adam8bit")}
MAX_SCENARIOS = 256  # ~15 ms each (an 8B on 2 cores): 256 stay within seconds; more is a job for a script over mpg estimate


def _scenario_opts(entry: Any, where: str, base: dict[str, Any]) -> dict[str, Any]:
    from ..presets import _show

    if not isinstance(entry, dict):
        raise PresetError(f"{where}: expected a mapping of estimate options, got {_show(entry)}")
    out = dict(base)
    for raw_key, value in entry.items():
        key = str(raw_key).replace("-", "_")
        if key not in SCENARIO_KEYS:
            raise PresetError(f"{where}: {raw_key if isinstance(raw_key, str) else _show(raw_key)}: unknown key", hint=did_you_mean(key, SCENARIO_KEYS)
                              or f"allowed keys: {', '.join(SCENARIO_KEYS)}")
        if value is None:
            continue  # explicit null = not given
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
        got = _show(value)
        if key in INT_KEYS:
            lo, hi = INT_RANGE[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise PresetError(f"{where}: {raw_key}: expected a whole number, got {got}")
            if not lo <= value <= hi:
                raise PresetError(f"{where}: {raw_key}: must be between {lo:,} and {hi:,}, got {got}")
        if key in FLOAT_KEYS:
            lo, hi, zero_ok = FLOAT_RANGE[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise PresetError(f"{where}: {raw_key}: expected a number, got {got}")
            try:
                value = float(value)
            except OverflowError:
                raise PresetError(f"{where}: {raw_key}: {got} is implausibly large") from None
            if not math.isfinite(value) or value < lo or (value == lo and not zero_ok) or value > hi:
                bound = f"{'at least' if zero_ok else 'greater than'} {lo:g} and at most {hi:g}"
                raise PresetError(f"{where}: {raw_key}: must be {bound}, got {got}")
        if key in BOOL_KEYS and not isinstance(value, bool):
            raise PresetError(f"{where}: {raw_key}: expected true or false, got {got}")
        if key in STR_KEYS:
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise PresetError(f"{where}: {raw_key}: expected text, got {got}")
            if isinstance(value, int) and abs(value) > 10**18:
                raise PresetError(f"{where}: {raw_key}: {got} is implausibly large")
            value = str(value)
            if key in CHOICES and value not in CHOICES[key]:
                raise PresetError(f"{where}: {raw_key}: {got} is not one of {', '.join(CHOICES[key])}",
                                  hint=did_you_mean(value, CHOICES[key]))
        if key in ("tokens", "gpus"):
            from ..parsing import parse_gpus, parse_tokens

            try:
                parse_tokens(value) if key == "tokens" else parse_gpus(value)
            except InputError as exc:
                raise PresetError(f"{where}: {raw_key}: {exc.message.split(': ', 1)[-1]}",
                                  hint=f"e.g. {key}: {'300B' if key == 'tokens' else '64'}") from None
        out[key] = value
    return out


def scenarios(opts: dict[str, Any], models: list[str], clusters: list[str], gpu_types: list[str],
              gpus: list[str], scenario_file: Optional[str]) -> list[tuple[str, dict[str, Any]]]:
    """(label, estimate options) for each scenario: a file's list, or the cross product of repeated flags."""
    from ..inputs.merge import apply_from

    if scenario_file is not None:
        from ..presets import load_yaml_file

        mixed = [flag for flag, v in (("--model", models), ("--cluster", clusters), ("--gpu", gpu_types),
                                      ("--gpus", gpus)) if v]
        if mixed:
            raise InputError(f"--scenarios and {', '.join(mixed)} both given: the file lists the scenarios",
                             hint="put the model, cluster and GPUs into each scenario of the file, or leave --scenarios out")

        path = Path(scenario_file)
        data = load_yaml_file(path)
        if isinstance(data, dict) and set(data) == {"scenarios"}:
            data = data["scenarios"]
        if not isinstance(data, list) or not data:
            raise PresetError(f"{path}: expected a list of scenarios (or 'scenarios: [...]')",
                              hint="each item: label, model, cluster, gpus, tokens, … (the estimate options)")
        if len(data) > MAX_SCENARIOS:
            raise PresetError(f"{path}: {len(data):,} scenarios; compare takes at most {MAX_SCENARIOS:,}",
                              hint="split the file, or loop over 'mpg estimate --format json' in a script")
        out = []
        for i, entry in enumerate(data):
            where = f"{path}: scenarios[{i}]"
            o = _scenario_opts(entry, where, opts)
            given = {str(k).replace("-", "_") for k in entry} if isinstance(entry, dict) else set()
            o = apply_from(o, extra_explicit=given)
            label = o.pop("label", None) or default_label(_name(o["model"]), o["cluster"], o.get("gpu"),
                                                          o.get("gpus") or "all")
            o["_where"] = f"{where} ({label})"
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
    from ..presets import _show

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


def run(opts: dict[str, Any], models: list[str], clusters: list[str], gpu_types: list[str], gpus: list[str],
        scenario_file: Optional[str], sort: Optional[str], baseline: Optional[str], against: Optional[str],
        fail_on_increase: Optional[str], metric: list[str], allow_new: bool = False,
        allow_missing: bool = False, days: Optional[float] = None) -> int:
    from .. import __version__, render
    from ..parsing import parse_percent
    from .estimate import compute, finish

    threshold = parse_percent(fail_on_increase, "--fail-on-increase", strict=True) if fail_on_increase is not None else None
    if threshold is not None and not against:
        raise InputError("--fail-on-increase needs --against FILE", hint="save a baseline with --format json -o FILE")
    for mname in metric:
        if mname not in METRICS:
            raise InputError(f"--metric {mname!r} is not one of {', '.join(METRICS)}", hint=did_you_mean(mname, METRICS))
    checked = metric or ["days", "gpu_hours", "cost"]
    rows: list[tuple[str, Result]] = []
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
    matched: set[str] = set()
    for d in docs:
        d["delta_vs_baseline"] = {k: _ratio(_metric(d, k), _metric(base_doc, k)) for k in METRICS}
        prev = old.get(d["label"]) or (next(iter(old.values())) if single_old else None)
        if prev is not None:
            matched.add(next(k for k, v in old.items() if v is prev))
        elif against and threshold is not None and not allow_new:
            failures.append(f"[{d['label']}] is new: not in --against {against} (pass --allow-new to accept it)")
        if against:
            d["change_vs_against"] = None if prev is None else {k: _ratio(_metric(d, k), _metric(prev, k)) for k in METRICS}
            if prev is not None and threshold is not None:
                for k in checked:
                    ch = d["change_vs_against"][k]
                    if ch is not None and ch > threshold:
                        failures.append(f"[{d['label']}] {k} {_metric(d, k):,.1f} vs {_metric(prev, k):,.1f} "
                                        f"({signed_percent(ch)} > +{threshold:.1%}; central values)")
    if against and threshold is not None and not allow_missing:
        for lbl in old:
            if lbl not in matched:
                failures.append(f"[{lbl}] is missing: in --against {against} but not compared now "
                                "(pass --allow-missing to accept it)")
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
        sys.stderr.write(f"GATE FAILED: {clean_line(line)}\n")
    return int(ExitCode.GATE_FAILED) if failures else code


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
    render.titled_table(f"{len(docs)} scenarios (deltas vs {base_label})", headers, body, fmt_name, output,
                        drop=("energy", "tokens/s", "memory", "layout", "MFU"))
