"""mpg plan: the largest compute-optimal dense model trainable in D days on a cluster."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..core.assumptions import Assumption
from ..core.planning import TEMPLATES, largest_model_in, model_from_template
from ..humanize import days_text
from ..errors import GateFailed, InputError, did_you_mean
from ..output.emit import Output, emit_output, format_of
from ..parsing import check_positive
from .shared import progress


def run(opts: dict[str, Any], days: float | None, template: str, budget_gpu_hours: float | None = None,
        budget_usd: float | None = None) -> int:
    from .. import render
    from ..inputs.merge import apply_from, with_file_notes
    from ..scenario import build_requests

    opts = apply_from(opts, use_model=False, skip=("tokens", "train_steps"), command="mpg plan")
    _check_inputs(opts, days, template, budget_gpu_hours, budget_usd)
    t = TEMPLATES[template]
    opts = {**opts, "model": model_from_template(t, 4096)}
    req = build_requests(opts)[0]
    note = progress(opts)
    limit = budget_gpu_hours
    if budget_usd is not None:
        c = req.cluster
        price = req.price_usd_per_gpu_hour or c.price_usd_per_gpu_hour or c.gpu.price_usd_per_hour
        if not price:
            raise InputError("--budget-usd needs a price: the presets have none for this GPU", hint="give --price")
        limit = budget_usd / price
    best = largest_model_in(req, days, t, progress=note, max_gpu_hours=limit)
    within = " and ".join(x for x in (
        days_text(days) if days is not None else "",
        f"${budget_usd:,.0f}" if budget_usd is not None else "",
        f"{limit:,.0f} GPU-hours" if limit is not None else "") if x)
    if note:
        note("")
    if best is None:
        raise GateFailed(f"not even the smallest {template}-style model (hidden 1024) trains within {within} "
                         f"on {req.gpus:,} × {req.cluster.gpu.name}")
    m = best.request.model
    chosen = Assumption("model_shape", template, t.source, (),
                        {"hidden_per_layer": t.hidden_per_layer, "ffn_ratio": t.ffn_ratio, "within": within})
    best = with_file_notes([best], opts)[0]
    best = replace(best, assumptions=(chosen,) + best.assumptions)
    body = render.estimate_body(best)
    body["model_shape"] = {"layers": m.layers, "hidden_size": m.hidden_size, "heads": m.heads, "kv_heads": m.n_kv,
                           "ffn_hidden_size": m.ffn_hidden_size, "ffn_type": m.ffn_type, "vocab_size": m.vocab_size,
                           "seq_length": m.seq_length}

    def tables() -> list[Any]:
        shape = render.kv_table(f"Largest compute-optimal {template}-style model within {within}", [
            ("Shape", f"{m.layers} layers, hidden {m.hidden_size:,}, {m.heads} heads ({m.n_kv} KV), FFN "
                      f"{m.ffn_hidden_size:,} {m.ffn_type}, vocab {m.vocab_size:,}, context {m.seq_length:,}")])
        return [shape] + render.estimate_tables(best)

    out = Output("plan", body, csv_rows=[render.estimate_dict(best, command="plan")], tables=tables,
                 markdown=lambda: f"## Largest model within {within}: {m.layers} layers × {m.hidden_size} hidden\n\n"
                 + render.estimate_markdown(best))
    return emit_output(out, format_of(opts), opts.get("output"))


def _check_inputs(opts: dict[str, Any], days: float | None, template: str, budget_gpu_hours: float | None,
                  budget_usd: float | None) -> None:
    """A deadline or one budget, positive; a known template; no --tokens (each candidate trains compute-optimally)."""
    if days is None and budget_gpu_hours is None and budget_usd is None:
        raise InputError("mpg plan needs --days, --budget-gpu-hours or --budget-usd",
                         hint="e.g. mpg plan --days 30 -c dgx-h100 -n 1024, or mpg plan --budget-usd 1e6 -c dgx-h100")
    if budget_gpu_hours is not None and budget_usd is not None:
        raise InputError("give one budget: --budget-gpu-hours or --budget-usd")
    check_positive(days, "--days")
    check_positive(budget_gpu_hours, "--budget-gpu-hours")
    check_positive(budget_usd, "--budget-usd")
    if template not in TEMPLATES:
        raise InputError(f"--template {template!r} is not one of {', '.join(TEMPLATES)}",
                         hint=did_you_mean(template, TEMPLATES))
    if opts.get("tokens"):
        raise InputError("mpg plan trains each candidate compute-optimally (20 tokens per parameter): leave --tokens out")
