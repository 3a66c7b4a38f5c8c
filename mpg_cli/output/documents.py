"""Machine-readable documents: the JSON dictionaries of an estimate, and JSON, CSV and Markdown text.

The JSON schema is a contract (``output/schema.py``): raw SI numbers (seconds, bytes, FLOPs, USD, kWh), no
pre-formatted strings, no NaN or infinity. JSON, CSV and Markdown are written directly, never through Rich.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any, Iterable

from ..core.estimate import Result
from ..sanitize import clean_line, csv_cell
from .assumptions import assumption_texts
from .schema import envelope


# ---------------------------------------------------------------- dictionaries (the JSON contract)

def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def layout_dict(r: Result) -> dict[str, Any]:
    lay = r.layout
    return {
        "tp": lay.tp, "pp": lay.pp, "dp": lay.dp, "ep": lay.ep, "cp": lay.cp, "micro_batch": lay.micro_batch,
        "virtual_stages": lay.virtual_stages, "zero": lay.zero, "recompute": lay.recompute,
        "sequence_parallel": lay.sequence_parallel, "flash_attention": lay.flash_attention,
    }


def inputs_dict(r: Result) -> dict[str, Any]:
    req = r.request
    return {
        "model": req.model.name, "cluster": req.cluster.name, "gpu": req.cluster.gpu.name, "gpus": req.gpus,
        "tokens": r.tokens, "seq_length": r.seq_length, "global_batch": r.global_batch, **layout_dict(r),
        "precision": req.precision, "goodput": req.goodput, "layout_source": r.layout_source,
        "efficiency_source": req.efficiency.source, "efficiency_value": req.efficiency.value,
        "calibration_ratio": req.efficiency.calibration_ratio,
    }


def memory_dict(r: Result) -> dict[str, Any]:
    m = r.memory
    return {
        "per_gpu_bytes": m.total, "capacity_bytes": m.capacity, "usable_bytes": m.usable, "fits": m.fits,
        "fraction_of_capacity": m.fraction_of_capacity, "most_loaded_stage": m.stage,
        "breakdown": {"weights": m.weights, "gradients": m.gradients, "optimizer": m.optimizer,
                      "activations": m.activations, "overhead": m.overhead},
    }


def throughput_dict(r: Result) -> dict[str, Any]:
    return {
        "tflops_per_gpu": r.tflops_per_gpu, "model_tflops_per_gpu": r.model_tflops_per_gpu, "mfu": r.mfu,
        "hfu": r.hfu, "tokens_per_second": r.tokens_per_second,
        "tokens_per_second_per_gpu": r.tokens_per_second / r.request.gpus, "step_time_s": r.step_time_s,
        "peak_tflops_per_gpu": r.peak_tflops, "source": r.request.efficiency.source,
        "mfu_bf16": r.mfu_bf16, "bf16_peak_tflops_per_gpu": r.bf16_peak_tflops,
        "mfu_definition": "model FLOPs / dense peak at the training precision (mfu); mfu_bf16 against the dense "
                          "bf16 peak, so FP8 and bf16 runs compare",
    }


def estimate_dict(r: Result, explain: bool = False, command: str = "estimate") -> dict[str, Any]:
    """The versioned JSON document for one estimate."""
    return envelope(command, estimate_body(r, explain))


def estimate_body(r: Result, explain: bool = False) -> dict[str, Any]:
    """One estimate's JSON document, after the envelope keys."""
    d: dict[str, Any] = {
        "inputs": inputs_dict(r),
        "params": {"total": r.params_total, "active": r.params_active},
        "flops": {"per_token_model": r.flops_per_token_model, "per_token_hardware": r.flops_per_token_hardware,
                  "total_model": r.total_model_flops, "total_hardware": r.total_hardware_flops,
                  "convention": "megatron-korthikanti: GEMMs only, full s^2 attention, hardware adds recompute"},
        "throughput": throughput_dict(r),
        "time": {"seconds": r.time_s, "days": r.days, "steady_state_seconds": r.steady_time_s,
                 "steady_state_days": r.steady_days, "iterations": r.iterations},
        "goodput": r.goodput.as_dict() if r.goodput is not None else None,
        "intervals": r.interval.as_dict() if r.interval is not None else None,
        "gpu_hours": r.gpu_hours, "cost_usd": r.cost_usd, "price_usd_per_gpu_hour": r.price_usd_per_gpu_hour,
        "energy_kwh": r.energy_kwh,
        "memory": memory_dict(r),
        "assumptions": assumption_texts(r.assumptions), "warnings": list(r.warnings),
        "checks": [{"name": c.name, "value": c.value, "limit": c.limit, "passed": c.passed} for c in r.checks],
    }
    if explain:
        d["step_time_breakdown_s"] = r.step_breakdown_s()
    return d


def to_json(doc: Any) -> str:
    """Strict JSON: NaN and infinity become null, never invalid tokens."""
    def clean(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return _finite(x)

    return json.dumps(clean(doc), indent=2, allow_nan=False) + "\n"


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict -> dotted keys (lists are joined with ' | '; a range [lo, hi] becomes KEY.lo and KEY.hi)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, list) and prefix.startswith("intervals.") and len(v) == 2:
            out[key + ".lo"], out[key + ".hi"] = _finite(v[0]), _finite(v[1])
        elif isinstance(v, list):
            out[key] = " | ".join(json.dumps(x) if isinstance(x, dict) else str(x) for x in v)
        else:
            out[key] = _finite(v)
    return out


def to_csv(rows: list[dict[str, Any]]) -> str:
    flat = [flatten(r) for r in rows]
    fields: list[str] = []
    seen: set[str] = set()
    for f in flat:
        for k in f:
            if k not in seen:
                seen.add(k)
                fields.append(k)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([csv_cell(k) for k in fields])  # user text is escaped and formula-guarded (mpg_cli/sanitize.py)
    for f in flat:
        w.writerow([("" if f.get(k) is None else csv_cell(f[k])) for k in fields])
    return buf.getvalue()


def md_table(headers: list[str], rows: Iterable[list[str]]) -> str:
    def esc(s: str) -> str:
        return clean_line(s).replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
