"""``mpg report`` as one self-contained HTML page, drawn from the report document (``report_data.build``).

Inline CSS and inline SVG only: no script, no font, no image, no network fetch (a Content-Security-Policy
meta tag forbids them), so the file opens from a file:// URL, can be mailed or attached to a ticket, and
prints (an ``@media print`` block keeps each chart on one page). All user text goes through ``svg.esc``.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from ..humanize import fmt
from . import svg
from .svg import OKABE_ITO, SERIES, Series, esc

GiB = 1024.0 ** 3
PART_NAMES = {"weights": "Weights", "gradients": "Gradients", "optimizer": "Optimizer states",
              "activations": "Activations", "overhead": "CUDA/NCCL reserve"}
PART_COLOURS = (OKABE_ITO["blue"], OKABE_ITO["sky"], OKABE_ITO["orange"], OKABE_ITO["green"], OKABE_ITO["purple"])
STEP_NAMES = {"compute": "Compute (fwd + bwd)", "recompute": "Recompute", "tp_communication": "TP communication",
              "pipeline_bubble": "Pipeline bubble", "pp_communication": "PP communication",
              "dp_communication_exposed": "DP communication (exposed)", "moe_all_to_all": "MoE all-to-all",
              "optimizer": "Optimizer step", "other": "Other"}

CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif;
  color: #1a1a1a; background: #fff; margin: 0 auto; max-width: 1180px; padding: 24px 28px 48px; line-height: 1.45; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 0 0 8px; }
.sub { color: #555; margin: 0 0 20px; }
section { border-top: 1px solid #ddd; padding: 18px 0 8px; break-inside: avoid; page-break-inside: avoid; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; margin: 8px 0 16px; }
.card { border: 1px solid #d5d5d5; border-radius: 8px; padding: 10px 14px; background: #fafafa; }
.card .k { font-size: 12px; color: #555; text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 20px; font-weight: 650; margin-top: 2px; }
.card .r { font-size: 12px; color: #444; }
.card.bad { border-color: #D55E00; background: #fff4ec; } .card.good .v { color: #006e50; } .card.bad .v { color: #a33f00; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
svg.chart { max-width: 100%; height: auto; background: #fff; }
svg .value-label, svg .chosen-label { paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
.note { color: #555; font-size: 13px; margin: 6px 0; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border-bottom: 1px solid #e2e2e2; padding: 4px 10px; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
ul.assumptions { font-size: 13px; padding-left: 20px; } ul.assumptions li { margin: 2px 0; }
.warn { color: #8a3a00; }
footer { color: #666; font-size: 12px; margin-top: 24px; }
@page { size: A4; margin: 12mm; }
@media print { body { max-width: none; padding: 0; } .card { background: #fff; } section { padding-top: 10px; } }
"""


def _f(x: Any) -> Optional[float]:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def _range(intervals: Any, key: str, kind: str) -> str:
    """'80 %: 31.2 days – 39.0 days' when the estimate carries a range for ``key`` (issue 14's ``intervals``)."""
    if not isinstance(intervals, dict):
        return ""
    pair = intervals.get(key)
    if not isinstance(pair, (list, tuple)) or len(pair) != 2 or _f(pair[0]) is None or _f(pair[1]) is None:
        return ""
    level = _f(intervals.get("level"))
    head = f"{level:.0%} range: " if level is not None else "range: "
    return head + f"{fmt(pair[0], kind)} – {fmt(pair[1], kind)}"


def summary_card(s: dict[str, Any]) -> str:
    """The headline figures of one estimate; a range under a figure only where the estimate provides one."""
    iv = s.get("intervals")
    fits = bool(s.get("fits"))
    mem = f"{fmt(s.get('per_gpu_bytes'), 'bytes')} of {fmt(s.get('usable_bytes'), 'bytes')} usable"
    items = [
        ("Time to train", fmt(s.get("days"), "days"), _range(iv, "days", "days"), ""),
        ("GPU-hours", fmt(s.get("gpu_hours"), "gpu_hours"), _range(iv, "gpu_hours", "gpu_hours"), ""),
        ("Cost", fmt(s.get("cost_usd"), "usd") if s.get("cost_usd") is not None else "no price",
         _range(iv, "cost_usd", "usd") or (f"at ${s['price_usd_per_gpu_hour']:g}/GPU-h"
                                            if _f(s.get("price_usd_per_gpu_hour")) else "set --price"), ""),
        ("Energy", fmt(s.get("energy_kwh"), "kwh"), "GPUs at TDP × PUE", ""),
        ("MFU", fmt(s.get("mfu"), "percent"), f"{fmt(s.get('tokens_per_second'), 'tokens_s')}", ""),
        ("Fits in memory", "yes" if fits else "NO", mem, "good" if fits else "bad"),
    ]
    cells = "".join(f'<div class="card {cls}"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div>'
                    f'<div class="r">{esc(r)}</div></div>' for k, v, r, cls in items)
    return f'<div class="cards">{cells}</div>'


def _gib(x: float) -> str:
    return f"{x:,.0f} GiB" if x >= 100 else (f"{x:,.1f} GiB" if x >= 1 else f"{x:.2g} GiB")


def memory_chart(mem: dict[str, Any]) -> str:
    rows = mem["layouts"]
    labels = [f"{m['label']}: {m['layout']}" + ("" if m["fits"] else " (does not fit)") for m in rows]
    values = [[m["breakdown"][p] / GiB for p in mem["parts"]] for m in rows]
    totals = [f"{m['per_gpu_bytes'] / GiB:,.1f} GiB" + (f" · MFU {m['mfu']:.1%}" if _f(m.get("mfu")) else "")
              for m in rows]
    markers = [(f"usable {mem['usable_bytes'] / GiB:,.1f} GiB", mem["usable_bytes"] / GiB, OKABE_ITO["vermillion"], "6 4"),
               (f"capacity {mem['capacity_bytes'] / GiB:,.1f} GiB", mem["capacity_bytes"] / GiB, OKABE_ITO["black"], "")]
    return svg.stacked_hbar_chart("Memory per GPU, by part (most loaded GPU)", labels,
                                  [PART_NAMES[p] for p in mem["parts"]], values, "GiB per GPU",
                                  colours=PART_COLOURS, markers=markers, totals_text=totals, width=1080,
                                  chart_id="memory", fmt=lambda v: f"{v:g}",
                                  desc="Stacked bars of weights, gradients, optimizer states, activations and the "
                                       "CUDA/NCCL reserve against the usable limit and the capacity")


def step_chart(step: dict[str, Any]) -> str:
    parts = {k: v for k, v in step["parts_s"].items() if _f(v) and v > 0}
    total = step["total_s"]
    unit, scale = ("s", 1.0) if total >= 1 else ("ms", 1e3)
    names = [STEP_NAMES.get(k, k) for k in parts]
    vals = [v * scale for v in parts.values()]
    text = [f"{fmt(v, 'seconds')} ({v / total:.1%})" for v in parts.values()]
    return svg.hbar_chart(f"One iteration: {fmt(total, 'seconds')}, by part", names, vals,
                          f"time per iteration ({unit})", value_text=text, width=620, chart_id="step-time",
                          colours=[SERIES[0]], fmt=lambda v: f"{v:g}")


def scaling_charts(sc: dict[str, Any]) -> list[str]:
    pts = sc["points"]
    if len(pts) < 2:
        return []
    xs = [p["gpus"] for p in pts]
    chosen = next((p for p in pts if p["gpus"] == sc["chosen_gpus"]), None)
    tips = [f"{p['gpus']:,} GPUs: {fmt(p['days'], 'days')}, MFU {p['mfu']:.1%}, {p['layout']}" for p in pts]
    days = svg.line_chart("Days to train vs GPUs", [Series("days", xs, [p["days"] for p in pts], SERIES[0], "circle",
                                                           tips=tips)],
                          "GPUs (log scale)", "days (log scale)", xlog=True, ylog=True, x_base2=True, width=520,
                          chart_id="scaling-days", xfmt=lambda v: f"{v:,.0f}", yfmt=_days_tick,
                          highlight=(chosen["gpus"], chosen["days"], "chosen") if chosen else None)
    if all(_f(p.get("cost_usd")) is not None for p in pts):
        ys, ylabel, title, f = [p["cost_usd"] for p in pts], "cost (USD)", "Cost vs GPUs", lambda v: "$" + svg.short(v)
    else:
        ys, ylabel, title, f = [p["gpu_hours"] for p in pts], "GPU-hours", "GPU-hours vs GPUs (no price)", svg.short
    ctips = [f"{p['gpus']:,} GPUs: {fmt(p['cost_usd'], 'usd')}, {fmt(p['gpu_hours'], 'gpu_hours')}" for p in pts]
    cost = svg.line_chart(title, [Series(ylabel.split(" (")[0], xs, ys, SERIES[1], "square", tips=ctips)],
                          "GPUs (log scale)", ylabel, xlog=True, x_base2=True, width=520, chart_id="scaling-cost",
                          xfmt=lambda v: f"{v:,.0f}", yfmt=f,
                          highlight=(chosen["gpus"], ys[pts.index(chosen)], "chosen") if chosen else None)
    return [days, cost]


def _days_tick(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 else f"{v:.2g}"


def frontier_chart(fr: dict[str, Any]) -> str:
    fit = [p for p in fr["points"] if p["fits"]]
    bad = [p for p in fr["points"] if not p["fits"]]
    series = []
    if bad:
        series.append(Series(f"does not fit ({fr['not_fitting']:,})", [p["per_gpu_bytes"] / GiB for p in bad],
                             [p["mfu"] * 100 for p in bad], OKABE_ITO["vermillion"], "cross", radius=3,
                             tips=[f"{p['layout']}: {p['per_gpu_bytes'] / GiB:,.1f} GiB, MFU {p['mfu']:.1%}" for p in bad]))
    if fit:
        series.append(Series(f"fits ({fr['fitting']:,})", [p["per_gpu_bytes"] / GiB for p in fit],
                             [p["mfu"] * 100 for p in fit], OKABE_ITO["blue"], "circle", radius=3,
                             tips=[f"{p['layout']}: {p['per_gpu_bytes'] / GiB:,.1f} GiB, MFU {p['mfu']:.1%}" for p in fit]))
    lines = []
    par = fr.get("pareto") or []
    if len(par) > 1:
        lines.append(Series("best MFU for the memory", [p["per_gpu_bytes"] / GiB for p in par],
                            [p["mfu"] * 100 for p in par], OKABE_ITO["green"], dash=""))
    ch = fr["chosen"]
    hl = (ch["per_gpu_bytes"] / GiB, ch["mfu"] * 100, "chosen") if _f(ch.get("mfu")) is not None else None
    vlines = [(f"usable {fr['usable_bytes'] / GiB:,.1f} GiB", fr["usable_bytes"] / GiB, OKABE_ITO["vermillion"], "6 4"),
              (f"capacity {fr['capacity_bytes'] / GiB:,.1f} GiB", fr["capacity_bytes"] / GiB, OKABE_ITO["black"], "")]
    return svg.scatter_chart("Layout frontier: predicted MFU vs memory per GPU", series,
                             "memory per GPU (GiB, log scale)", "predicted MFU (%)", xlog=True, width=1080, height=420,
                             chart_id="frontier", vlines=vlines,
                             highlight=hl, lines=lines, xfmt=lambda v: f"{v:g}", yfmt=lambda v: f"{v:g}",
                             desc="Each point is one parallel layout the fit search evaluated")


def scenario_charts(scen: list[dict[str, Any]]) -> list[str]:
    labels = [s["label"] for s in scen]
    out = [svg.hbar_chart("Days to train", labels, [s["days"] for s in scen], "days",
                          value_text=[fmt(s["days"], "days") for s in scen], colours=SERIES, width=380,
                          chart_id="scenarios-days", highlight=0),
           svg.hbar_chart("GPU-hours", labels, [s["gpu_hours"] for s in scen], "GPU-hours",
                          value_text=[fmt(s["gpu_hours"], "gpu_hours") for s in scen], colours=SERIES, width=380,
                          chart_id="scenarios-gpu-hours", highlight=0)]
    if all(_f(s.get("cost_usd")) is not None for s in scen):
        out.append(svg.hbar_chart("Cost", labels, [s["cost_usd"] for s in scen], "USD",
                                  value_text=[fmt(s["cost_usd"], "usd") for s in scen], colours=SERIES, width=380,
                                  chart_id="scenarios-cost", highlight=0, fmt=lambda v: "$" + svg.short(v)))
    return out


def calibration_charts(cal: dict[str, Any]) -> list[str]:
    m, p = cal["measured"], cal["predicted"]
    out = []
    for key, title, unit, scale, kind in (("tokens_per_second", "Tokens/s (whole job)", "tokens/s", 1.0, "tokens_s"),
                                          ("step_time_s", "Step time", "seconds", 1.0, "seconds"),
                                          ("mfu", "MFU", "% of dense peak", 100.0, "percent")):
        if _f(m.get(key)) is None or _f(p.get(key)) is None:
            continue
        out.append(svg.hbar_chart(f"{title}: measured vs predicted", ["measured", "predicted"],
                                  [m[key] * scale, p[key] * scale], unit,
                                  value_text=[fmt(m[key], kind), fmt(p[key], kind)],
                                  colours=[OKABE_ITO["orange"], OKABE_ITO["blue"]], width=380,
                                  chart_id=f"calibration-{key.replace('_', '-')}"))
    return out


def accuracy_chart(acc: dict[str, Any]) -> str:
    runs = acc["runs"]
    groups = [([r for r in runs if not r["in_class"]], "other runs", "#9a9a9a", "circle"),
              ([r for r in runs if r["in_class"]], acc["class"]["name"], OKABE_ITO["blue"], "diamond")]
    series = [Series(f"{name} ({len(rs)})", [r["measured_tokens_per_s_per_gpu"] for r in rs],
                     [r["predicted_tokens_per_s_per_gpu"] for r in rs], colour, shape, radius=3.2,
                     tips=[f"{r['id']}: measured {r['measured_tokens_per_s_per_gpu']:,.0f}, predicted "
                           f"{r['predicted_tokens_per_s_per_gpu']:,.0f} tok/s/GPU" for r in rs])
              for rs, name, colour, shape in groups if rs]
    return svg.scatter_chart("Published runs: predicted vs measured", series, "measured tokens/s per GPU (log)",
                             "predicted tokens/s per GPU (log)", xlog=True, ylog=True, width=560, height=400,
                             chart_id="accuracy", diagonal=True)


def _pct(x: Any) -> str:
    return fmt(_f(x), "percent") if _f(x) is not None else "—"


def _acc_row(name: str, s: dict[str, Any]) -> str:
    return (f"<tr><td>{esc(name)}</td><td class='n'>{int(s.get('runs') or 0)}</td><td class='n'>"
            f"{_pct(s.get('median_abs_error'))}</td><td class='n'>{_pct(s.get('p90_abs_error'))}</td>"
            f"<td class='n'>{_pct(s.get('within_20pct'))}</td></tr>")


def _scenario_table(scen: list[dict[str, Any]], chosen: str) -> str:
    head = ("<tr><th>scenario</th><th class='n'>GPUs</th><th>layout</th><th class='n'>days</th>"
            "<th class='n'>GPU-hours</th><th class='n'>cost</th><th class='n'>MFU</th><th>fits</th></tr>")
    body = "".join(
        f"<tr><td>{esc(s['label'])}{' (detailed below)' if s['label'] == chosen else ''}</td>"
        f"<td class='n'>{s['gpus']:,}</td><td>{esc(s['layout'])}</td><td class='n'>{esc(fmt(s['days'], 'days'))}</td>"
        f"<td class='n'>{esc(fmt(s['gpu_hours'], 'gpu_hours'))}</td><td class='n'>{esc(fmt(s['cost_usd'], 'usd'))}</td>"
        f"<td class='n'>{esc(fmt(s['mfu'], 'percent'))}</td><td>{'yes' if s['fits'] else 'NO'}</td></tr>"
        for s in scen)
    return f"<table>{head}{body}</table>"


def render(doc: dict[str, Any]) -> str:
    """The whole page: one section per part of the report document, in reading order."""
    sections = (_header(doc), _scenarios_section(doc), _memory_section(doc["memory"]), _step_section(doc.get("step_time")),
                _scaling_section(doc["scaling"]), _frontier_section(doc["frontier"]),
                _calibration_section(doc.get("calibration")), _accuracy_section(doc["accuracy"]),
                "<section id='assumptions'><h2>Assumptions</h2><ul class='assumptions'>"
                + "".join(f"<li>{esc(a)}</li>" for a in doc.get("assumptions") or []) + "</ul></section>",
                f"<footer>Made by mpg {esc(doc['mpg_version'])} (mpg report). Self-contained: inline SVG and CSS, "
                "no scripts, nothing fetched. The data behind every chart: mpg report --format json.</footer>")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; "
            "img-src data:\">"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>mpg report: {esc(doc['title'])}</title><style>{CSS}</style></head><body>"
            + "\n".join(x for x in sections if x) + "</body></html>\n")


def _header(doc: dict[str, Any]) -> str:
    """The title, the scenario in one line, the summary card and the warnings."""
    s = doc["summary"]
    sub = (f"{s['model']} · {s['cluster']}: {s['gpus']:,} × {s['gpu']} · {fmt(s['tokens'], 'tokens')} tokens · "
           f"layout {s['layout']} ({s['layout_source']})")
    head = (f"<header><h1>Training plan: {esc(doc['title'])}</h1><p class='sub'>{esc(sub)}</p>"
            f"{summary_card(s)}</header>")
    if doc.get("warnings"):
        head += "\n<p class='warn'>" + "<br>".join(f"Warning: {esc(w)}" for w in doc["warnings"]) + "</p>"
    return head


def _scenarios_section(doc: dict[str, Any]) -> str:
    """Several scenarios side by side (nothing for one)."""
    scen = doc.get("scenarios") or []
    if len(scen) <= 1:
        return ""
    return (f"<section id='scenarios'><h2>{len(scen)} scenarios side by side</h2>"
            f"<div class='charts'>{''.join(scenario_charts(scen))}</div>"
            f"{_scenario_table(scen, doc['chosen'])}"
            f"<p class='note'>The sections below detail “{esc(doc['chosen'])}” (the first scenario, "
            f"outlined in the bars).</p></section>")


def _memory_section(mem: dict[str, Any]) -> str:
    return (f"<section id='memory'><h2>Memory per GPU</h2>{memory_chart(mem)}"
            f"<p class='note'>The chosen layout and the next fastest fitting ones ({esc(mem['alternatives_from'])}); "
            f"usable = capacity less the allocator headroom.</p></section>")


def _step_section(step: Optional[dict[str, Any]]) -> str:
    if step:
        return f"<section id='step-time'><h2>Where one iteration's time goes</h2>{step_chart(step)}</section>"
    return ("<section id='step-time'><h2>Where one iteration's time goes</h2><p class='note'>Throughput "
            "was given (--tflops or --mfu): the step-time model's breakdown does not apply.</p></section>")


def _scaling_section(sc: dict[str, Any]) -> str:
    charts = scaling_charts(sc)
    skipped = (f" No valid layout at {', '.join(f'{k:,}' for k in sc['skipped_gpus'])} GPUs with this batch."
               if sc["skipped_gpus"] else "")
    return (f"<section id='scaling'><h2>Scaling at a fixed global batch ({sc['global_batch']:,} sequences)</h2>"
            + (f"<div class='charts'>{''.join(charts)}</div>" if charts else
               "<p class='note'>No other GPU count has a valid layout with this batch.</p>")
            + f"<p class='note'>Each point is a full estimate (layout searched again) at that GPU count.{skipped}"
              "</p></section>")


def _frontier_section(fr: dict[str, Any]) -> str:
    return (f"<section id='frontier'><h2>Layout frontier</h2>{frontier_chart(fr)}"
            f"<p class='note'>{fr['layouts_evaluated']:,} layouts evaluated ({fr['fitting']:,} fit, "
            f"{fr['not_fitting']:,} do not; constraints: {esc(fr['constraints'])}); MFU from the "
            f"{esc(fr['mfu_source'])}"
            + (f"; {fr['points_shown']:,} drawn, one per screen cell" if fr["points_shown"] < fr["layouts_evaluated"]
               else "") + ".</p></section>")


def _calibration_section(cal: Optional[dict[str, Any]]) -> str:
    if not cal:
        return ""
    ratio = f"{cal['ratio']:.3f}" if _f(cal.get("ratio")) is not None else "—"
    return (f"<section id='calibration'><h2>Calibration: measured vs predicted</h2>"
            f"<div class='charts'>{''.join(calibration_charts(cal))}</div>"
            f"<p class='note'>From {esc(cal['file'])} ({esc(cal['model'])} on {esc(cal['cluster'])}"
            f"{', ' + format(cal['gpus'], ',') + ' GPUs' if cal.get('gpus') else ''}; measured from "
            f"{esc(cal['measured_from'])}): ratio measured / predicted = {ratio}, applied to every step "
            "time in this report.</p></section>")


def _accuracy_section(acc: dict[str, Any]) -> str:
    note = "" if acc.get("applies") else (" These figures are the step-time model's; this estimate's throughput was "
                                          "given, so they do not bound it.")
    return (f"<section id='accuracy'><h2>How accurate is the model?</h2><div class='charts'>"
            f"<div><table><tr><th>runs</th><th class='n'>n</th><th class='n'>median |error|</th>"
            f"<th class='n'>90th pct.</th><th class='n'>within ±20 %</th></tr>"
            f"{_acc_row('all published runs', acc['all'])}{_acc_row(acc['class']['name'], acc['class'])}</table>"
            f"<p class='note'>{esc(acc['source'])}.{esc(note)}</p></div>{accuracy_chart(acc)}</div></section>")
