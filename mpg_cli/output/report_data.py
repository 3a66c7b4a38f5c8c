"""The data behind ``mpg report``: one JSON-ready document that the HTML page is drawn from.

Numbers are raw SI (seconds, bytes, USD, kWh), as in every mpg JSON document; ``--format json`` of
``mpg report`` writes this document, and ``report_html.render`` draws the page from it alone.

What each section computes (all through public functions, nothing cached on disk):
- memory and step time: the estimate's own breakdowns (``Result.memory``, ``Result.step_breakdown_s``);
  the alternatives are the next fastest fitting layouts of the same search (``core.estimate.run_search``);
- scaling: ``core.estimate.estimate`` at GPU counts ×¼ … ×4 around the chosen one (or the ``--gpus`` list),
  with the global batch held at the chosen estimate's (strong scaling, Narayanan et al. 2021 §5.1);
- frontier: every layout the fit search evaluates (``evaluated_layouts``: ``run_search(require_fit=False)``
  per recompute policy, which times the layouts the memory model rejects too), with
  MFU = model FLOPs per step / (step time × GPUs × dense peak) (README: FLOP and MFU conventions);
- accuracy: ``mpg_cli.validation.validate_all`` and ``summary`` over the shipped published runs, overall
  and for the runs of the same GPU generation and dense/MoE class as this estimate.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Optional

from ..core.estimate import EstimateError, Request, Result, estimate, run_search
from ..core.flops import token_flops
from ..core.search import RECOMPUTE_ORDER, Candidate, Constraints
from ..core.specs import Layout
from .assumptions import assumption_texts

MEMORY_PARTS = ("weights", "gradients", "optimizer", "activations", "overhead")
ALTERNATIVES = 3
SCALING_FACTORS = (0.25, 0.5, 1, 2, 4)
MAX_GPUS = 1 << 20
FRONTIER_KEEP = 10 ** 7  # every layout the search evaluates


def layout_short(lay: Layout) -> str:
    """tp2 pp4 dp16 mb1 v1 z1 selective (the validate table's notation)."""
    s = f"tp{lay.tp} pp{lay.pp} dp{lay.dp}"
    if lay.ep > 1:
        s += f" ep{lay.ep}"
    if lay.cp > 1:
        s += f" cp{lay.cp}"
    return s + f" mb{lay.micro_batch} v{lay.virtual_stages} z{lay.zero} {lay.recompute}"


def _finite(x: Optional[float]) -> Optional[float]:
    return x if x is not None and isinstance(x, (int, float)) and math.isfinite(x) else None


def summary_of(r: Result, label: str) -> dict[str, Any]:
    """The summary card's figures; ``intervals`` when the estimate carries ranges (else null)."""
    from ..render import estimate_dict

    d = estimate_dict(r, command="report")
    req = r.request
    return {
        "label": label, "model": req.model.name, "cluster": req.cluster.name, "gpu": req.cluster.gpu.name,
        "gpus": req.gpus, "tokens": r.tokens, "layout": layout_short(r.layout), "layout_source": r.layout_source,
        "days": r.days, "seconds": r.time_s, "gpu_hours": r.gpu_hours, "cost_usd": r.cost_usd,
        "price_usd_per_gpu_hour": r.price_usd_per_gpu_hour, "energy_kwh": r.energy_kwh, "mfu": r.mfu,
        "tokens_per_second": r.tokens_per_second, "step_time_s": r.step_time_s, "fits": r.memory.fits,
        "per_gpu_bytes": r.memory.total, "usable_bytes": r.memory.usable, "capacity_bytes": r.memory.capacity,
        "efficiency_source": req.efficiency.source, "intervals": d.get("intervals"),
    }


def _mfu_of(req: Request, cand: Candidate, seq: int, per_tok_model: float, peak: float) -> Optional[float]:
    """Predicted MFU of a timed candidate (step-time model, scaled by a calibration ratio)."""
    if cand.step is None or cand.step.total <= 0 or peak <= 0:
        return None
    tps = cand.global_batch * seq / cand.step.total * req.efficiency.calibration_ratio
    return tps * per_tok_model / req.gpus / peak


def _mem_entry(label: str, lay_text: str, mem, chosen: bool, mfu: Optional[float], step_s: Optional[float]):
    return {"label": label, "layout": lay_text, "chosen": chosen, "fits": mem.fits, "per_gpu_bytes": mem.total,
            "breakdown": {p: getattr(mem, p) for p in MEMORY_PARTS}, "mfu": mfu, "step_time_s": step_s}


def search_sections(r: Result) -> tuple[dict[str, Any], dict[str, Any]]:
    """(memory, frontier): the chosen layout's memory with the top alternatives, and every evaluated layout."""
    req = r.request
    seq = r.seq_length
    per_tok = token_flops(req.model, seq).model
    peak = (req.cluster.gpu.peak(req.precision) or 0.0) * 1e12
    relaxed = r.layout_source == "given"
    sreq = replace(req, global_batch=r.global_batch)  # the frontier at the estimate's batch, not a new choice
    if relaxed:  # a fully given layout has no alternatives under its own constraints: search them all
        sreq = replace(sreq, constraints=Constraints(flash_attention=req.constraints.flash_attention,
                                                    sequence_parallel=req.constraints.sequence_parallel))
    evaluated = evaluated_layouts(sreq)
    fitting = sorted((c for c in evaluated if c.memory.fits), key=lambda c: (c.seconds_per_sequence, c.memory.total))
    seen: dict[Layout, Candidate] = {c.layout: c for c in evaluated}
    chosen_mfu = None
    chosen_step = r.step_time_s
    if r.layout in seen:
        chosen_mfu = _mfu_of(req, seen[r.layout], seq, per_tok, peak)
    elif req.efficiency.source == "model":
        chosen_mfu = r.mfu
    alts = [c for c in fitting if c.layout != r.layout][:ALTERNATIVES]
    mem_layouts = [_mem_entry("chosen", layout_short(r.layout), r.memory, True, r.mfu, chosen_step)]
    for i, c in enumerate(alts, 1):
        mem_layouts.append(_mem_entry(f"alternative {i}", layout_short(c.layout), c.memory, False,
                                      _mfu_of(req, c, seq, per_tok, peak), c.step.total if c.step else None))
    memory = {"capacity_bytes": r.memory.capacity, "usable_bytes": r.memory.usable, "parts": list(MEMORY_PARTS),
              "layouts": mem_layouts, "alternatives_from": "all layouts" if relaxed else "the same search"}
    points: list[dict[str, Any]] = []
    for c in seen.values():
        mfu = _mfu_of(req, c, seq, per_tok, peak)
        if mfu is None or not math.isfinite(c.memory.total):
            continue
        points.append({"per_gpu_bytes": c.memory.total, "mfu": mfu, "fits": c.memory.fits,
                       "layout": layout_short(c.layout)})
    points.sort(key=lambda p: (not p["fits"], -p["mfu"]))  # thinning keeps the best point of each cell
    n_fit = sum(p["fits"] for p in points)
    kept = _thin_points(points)
    frontier = {
        "layouts_evaluated": len(points), "fitting": n_fit, "not_fitting": len(points) - n_fit,
        "points_shown": len(kept), "points": kept, "pareto": _pareto(points),
        "usable_bytes": r.memory.usable, "capacity_bytes": r.memory.capacity,
        "chosen": {"per_gpu_bytes": r.memory.total, "mfu": chosen_mfu, "layout": layout_short(r.layout)},
        "constraints": "none (the layout was given: all layouts shown)" if relaxed else "the flags given",
        "mfu_source": "step-time model" + (" (calibrated)" if req.efficiency.calibration_ratio != 1.0 else ""),
    }
    return memory, frontier


def evaluated_layouts(req: Request) -> list[Candidate]:
    """Every layout the fit search evaluates, each timed, fitting or not.

    ``run_search(require_fit=False)`` per recompute policy times every layout; the search itself tries
    a heavier policy for a shape and ZeRO stage only when the lighter one does not fit (core/search.py), so
    the same rule picks the evaluated set: per shape and ZeRO stage, the policies up to and including the first
    that fits.
    """
    cons = req.constraints
    policies = [cons.recompute] if cons.recompute else list(RECOMPUTE_ORDER)
    groups: dict[Layout, dict[str, list[Candidate]]] = {}
    for rc in policies:
        res = run_search(replace(req, constraints=replace(cons, recompute=rc)), keep=FRONTIER_KEEP, require_fit=False)
        for c in res.candidates:
            key = replace(c.layout, recompute="none")
            groups.setdefault(key, {}).setdefault(rc, []).append(c)
    out: list[Candidate] = []
    for by_policy in groups.values():
        for rc in policies:
            tried = by_policy.get(rc, [])
            out += tried
            if any(c.memory.fits for c in tried):
                break
    return out


def _thin_points(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most one point per screen cell and fit class (``svg.thin``): the chart looks the same, the file stays small."""
    from .svg import Axis, thin

    if len(points) <= 400:
        return points
    ax = Axis.fit([p["per_gpu_bytes"] for p in points], "", log=True)  # as the chart draws it
    ay = Axis.fit([p["mfu"] for p in points], "")
    out = []
    for fits in (True, False):
        group = [p for p in points if p["fits"] == fits]
        out += [group[i] for i in thin([(p["per_gpu_bytes"], p["mfu"]) for p in group], ax, ay)]
    return out


def _pareto(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fitting layouts not beaten on both counts: no other uses less memory and reaches a higher MFU."""
    best = -1.0
    out = []
    for p in sorted((p for p in points if p["fits"]), key=lambda p: (p["per_gpu_bytes"], -p["mfu"])):
        if p["mfu"] > best:
            out.append({"per_gpu_bytes": p["per_gpu_bytes"], "mfu": p["mfu"], "layout": p["layout"]})
            best = p["mfu"]
    return out


def scaling_section(r: Result, counts: Optional[list[int]] = None) -> dict[str, Any]:
    """Days (wall time, goodput included; and the steady state), goodput, GPU-hours and cost at other GPU counts with
    the chosen global batch (strong scaling)."""
    req = r.request
    n = req.gpus
    gpn = req.cluster.gpus_per_node
    if not counts:
        counts = []
        for f in SCALING_FACTORS:
            k = int(round(n * f))
            if k < 1 or k > MAX_GPUS or k * 1.0 != n * f:
                continue
            if n >= gpn and k % gpn and k != n:
                continue  # whole nodes only, as the planner's --days solve does
            counts.append(k)
    counts = sorted(set(counts) | {n})
    cons = replace(req.constraints, dp=None)
    points, skipped = [], []
    for k in counts:
        if k == n:
            res: Optional[Result] = r
        else:
            try:
                res = estimate(replace(req, gpus=k, global_batch=r.global_batch, constraints=cons))
            except EstimateError:
                res = None
        if res is None:
            skipped.append(k)
            continue
        points.append({"gpus": k, "days": res.days, "steady_state_days": res.steady_days,
                       "goodput": res.goodput.fraction if res.goodput is not None else None,
                       "gpu_hours": res.gpu_hours, "cost_usd": res.cost_usd,
                       "mfu": res.mfu, "fits": res.memory.fits, "layout": layout_short(res.layout)})
    return {"global_batch": r.global_batch, "seq_length": r.seq_length, "chosen_gpus": n, "points": points,
            "skipped_gpus": skipped, "price_usd_per_gpu_hour": r.price_usd_per_gpu_hour}


def accuracy_section(r: Result) -> dict[str, Any]:
    """The step-time model's error on published runs it was not fitted on (leave one source out): all of them,
    and this run's class (same GPU generation, dense or MoE)."""
    from ..validation import cross_validate, summary

    results = cross_validate()
    gen = r.request.cluster.gpu.generation
    moe = r.request.model.moe is not None

    def in_class(x: Any) -> bool:
        return gen in x.classes and (("moe" in x.classes) == moe)

    cls = [x for x in results if in_class(x)]
    kind = "MoE" if moe else "dense"

    def clean(s: dict[str, float]) -> dict[str, Optional[float]]:
        return {k: _finite(v) for k, v in s.items()}

    return {
        "source": "mpg validate, cross-validated (each run predicted with constants fitted without its source): "
                  "published runs in mpg_cli/data/runs.yaml, tokens/s per GPU",
        "all": clean(summary(results)),
        "class": {"name": f"{kind} models on {gen} GPUs", **clean(summary(cls))},
        "runs": [{"id": x.id, "measured_tokens_per_s_per_gpu": x.measured_tokens_s_gpu,
                  "predicted_tokens_per_s_per_gpu": x.predicted_tokens_s_gpu, "in_class": in_class(x)}
                 for x in results if x.predicted_tokens_s_gpu is not None],
        "applies": r.request.efficiency.source == "model",
    }


def calibration_section(path: Optional[str], r: Result) -> Optional[dict[str, Any]]:
    """Measured vs predicted figures stored in a calibration file (``mpg calibrate --save``)."""
    if not path:
        return None
    from ..inputs.files import load_yaml_file
    from pathlib import Path

    doc = load_yaml_file(Path(path))
    if not isinstance(doc, dict):
        return None
    keys = ("tokens_per_second", "step_time_s", "tflops_per_gpu", "model_tflops_per_gpu", "mfu")

    def figs(d: Any) -> dict[str, Optional[float]]:
        d = d if isinstance(d, dict) else {}
        return {k: _finite(d.get(k)) if not isinstance(d.get(k), bool) else None for k in keys}

    return {"file": str(path), "ratio": _finite(doc.get("ratio")), "model": str(doc.get("model", "")),
            "cluster": str(doc.get("cluster", "")), "gpus": doc.get("gpus") if isinstance(doc.get("gpus"), int) else None,
            "measured_from": str(doc.get("measured_from", "")), "measured": figs(doc.get("measured")),
            "predicted": figs(doc.get("predicted")), "applied_ratio": r.request.efficiency.calibration_ratio}


def build(rows: list[tuple[str, Result]], chosen: int = 0, calibration: Optional[str] = None,
          scaling_counts: Optional[list[int]] = None) -> dict[str, Any]:
    """The report document for scenarios ``rows`` (label, result); the ``chosen`` one gets the detail."""
    from .schema import envelope

    label, r = rows[chosen]
    memory, frontier = search_sections(r)
    step = r.step_breakdown_s()
    req = r.request
    title = f"{req.model.name} on {req.gpus:,} × {req.cluster.gpu.name}"
    doc: dict[str, Any] = envelope("report", {
        "title": title, "chosen": label,
        "summary": summary_of(r, label),
        "scenarios": [summary_of(res, lbl) for lbl, res in rows],
        "memory": memory,
        "step_time": None if step is None else {"total_s": r.step_time_s, "parts_s": step},
        "scaling": scaling_section(r, scaling_counts),
        "frontier": frontier,
        "calibration": calibration_section(calibration, r),
        "accuracy": accuracy_section(r),
        "assumptions": assumption_texts(r.assumptions), "warnings": list(r.warnings),
    })
    return doc
