"""Scaling tables: one model over several GPU counts (mpg estimate --gpus 64,128,256)."""

from __future__ import annotations

from typing import Any

from ..core.estimate import Result
from ..humanize import fmt
from .emit import Output


def scaling_rows(results: list[Result]) -> list[dict[str, Any]]:
    """Per GPU count: layout, TFLOP/s per GPU, % of peak, aggregate PFLOP/s, days, goodput, GPU-hours, efficiency.

    ``days`` and GPU-hours are the wall time with the goodput losses (failures, checkpoints, restarts; issue 14),
    ``steady_state_days`` the steady-state figure: more GPUs fail more often, so goodput falls with the count.
    Scaling efficiency is per-GPU throughput relative to the first row (Megatron-LM README convention).
    """
    base = results[0].tokens_per_second / results[0].request.gpus
    rows = []
    for r in results:
        per_gpu = r.tokens_per_second / r.request.gpus
        lay = r.layout
        rows.append({
            "gpus": r.request.gpus, "tp": lay.tp, "pp": lay.pp, "dp": lay.dp, "micro_batch": lay.micro_batch,
            "zero": lay.zero, "recompute": lay.recompute, "global_batch": r.global_batch,
            "tflops_per_gpu": r.tflops_per_gpu, "model_tflops_per_gpu": r.model_tflops_per_gpu, "mfu": r.mfu,
            "aggregate_pflops": r.model_tflops_per_gpu * r.request.gpus / 1000.0, "days": r.days,
            "steady_state_days": r.steady_days, "goodput": r.goodput.fraction if r.goodput is not None else None,
            "gpu_hours": r.gpu_hours, "cost_usd": r.cost_usd, "fits": r.memory.fits,
            "scaling_efficiency": per_gpu / base,
        })
    return rows


def scaling_output(results: list[Result]) -> Output:
    """The scaling table (table, Markdown), its rows (CSV) and the document with every estimate (JSON)."""
    from .. import render

    rows = scaling_rows(results)
    weak = len({r.request.global_batch for r in results}) > 1  # --weak-scaling gives each count its own batch
    body = {"scaling": "weak" if weak else "strong",
            "rows": rows, "estimates": [render.estimate_dict(r) for r in results]}
    headers = ["GPUs", "layout (tp·pp·dp, mb, ZeRO, rc)", "batch (seqs)", "TFLOP/s/GPU (model)", "MFU", "aggregate PFLOP/s",
               "days (wall)", "goodput", "GPU-hours", "scaling eff.", "fits"]
    body_rows = [[f"{x['gpus']:,}", f"{x['tp']}·{x['pp']}·{x['dp']}, mb {x['micro_batch']}, z{x['zero']}, {x['recompute']}",
                  f"{x['global_batch']:,}", f"{x['model_tflops_per_gpu']:,.1f}", fmt(x["mfu"], "percent"),
                  f"{x['aggregate_pflops']:,.1f}", fmt(x["days"], "days"),
                  "—" if x["goodput"] is None else fmt(x["goodput"], "percent"), fmt(x["gpu_hours"], "gpu_hours"),
                  fmt(x["scaling_efficiency"], "percent"), "yes" if x["fits"] else "NO"] for x in rows]
    r0 = results[0]
    same = len({r.global_batch for r in results}) == 1
    if weak:
        kind = "weak scaling: batch grows with the GPUs"
    elif same:
        kind = f"strong scaling, batch {r0.global_batch:,}"
    else:  # a count the batch splits poorly uses a batch within 1/8 of it (core/search.py)
        kind = f"strong scaling, batch {r0.global_batch:,} or, where a count splits it poorly, one within 1/8 (see the warnings)"
    title = f"Scaling {r0.request.model.name} on {r0.request.cluster.name} ({fmt(r0.tokens, 'tokens')} tokens; {kind})"

    def tables() -> list[Any]:
        from .bars import trend_rows

        drop = ("aggregate PFLOP/s", "TFLOP/s/GPU (model)", "layout (tp·pp·dp, mb, ZeRO, rc)", "batch (seqs)")
        return [render.kv_table(title, [tuple(row) for row in body_rows], headers, drop),
                render.kv_table("Trend over the GPU counts", trend_rows(rows))]

    return Output("estimate-scaling", body, csv_rows=rows, tables=tables,
                  markdown=lambda: render.titled_markdown(title, headers, body_rows))
