"""mpg fit: does it fit in GPU memory, with which layouts, and which trains fastest?"""

from __future__ import annotations

from typing import Any

from ..core.estimate import Result, evaluate, run_search
from ..core.planning import changes_that_fit, min_gpus
from ..errors import GateFailed, InputError
from ..humanize import fmt
from ..output.emit import Output, emit_output, format_of
from ..scenario import build_requests, checked_result
from .shared import progress


def _other_gpus(extra_dir):
    from ..presets import available, load_gpu

    out = []
    for name in available("gpus", extra_dir):
        try:
            out.append(load_gpu(name, extra_dir))
        except Exception:  # noqa: BLE001 - a broken user preset must not break the hint
            continue
    return out


def run(opts: dict[str, Any], top: int, want_min_gpus: bool) -> int:
    from ..inputs.merge import apply_from, with_file_notes

    opts = apply_from(opts)
    reqs = build_requests(opts)
    if len(reqs) > 1:
        raise InputError("mpg fit takes one --gpus count", hint="use 'mpg estimate --gpus 64,128,…' for a scaling table")
    req = reqs[0]
    if want_min_gpus:
        return emit_output(_min_gpus(req, opts), format_of(opts), opts.get("output"))
    res = run_search(req, keep=max(top, 1))
    results: list[Result] = [evaluate(req, cand, "searched", res) for cand in res.candidates[:top]]
    results = [checked_result(r, opts) for r in with_file_notes(results, opts)]
    changes = [] if results else changes_that_fit(req, _other_gpus(opts.get("presets")))
    head = {"model": req.model.name, "cluster": req.cluster.name, "gpu": req.cluster.gpu.name, "gpus": req.gpus,
            "headroom_fraction": req.memory.headroom_fraction, "reserved_gib": req.memory.reserved_gib}
    body = {"inputs": head,
            "search": {"shapes": res.shapes, "evaluated": res.evaluated, "fitting_shown": len(results)},
            "layouts": [_layout_doc(r) for r in results],
            "changes_that_fit": [{"flag": c.flag, "description": c.description, "gpus": c.gpus,
                                  "per_gpu_bytes": c.candidate.memory.total} for c in changes]}
    out = Output("fit", body, csv_rows=[_layout_doc(r) for r in results],
                 tables=lambda: _tables(req, res, results, changes),
                 markdown=lambda: _markdown(req, res, results, changes))
    if not results:
        best = changes[0] if changes else None
        out.failure = GateFailed(f"{req.model.name} does not fit on {req.gpus:,} × {req.cluster.gpu.name} with any "
                                 "layout searched", None if best is None else f"smallest change that fits: {best.flag} "
                                 f"({best.description}; {fmt(best.candidate.memory.total, 'bytes')} per GPU)")
    return emit_output(out, format_of(opts), opts.get("output"))


def _layout_doc(r: Result) -> dict[str, Any]:
    from .. import render

    d = render.estimate_body(r)
    return {k: d[k] for k in ("inputs", "memory", "throughput", "time", "gpu_hours", "cost_usd", "energy_kwh")}


def _rows(results: list[Result]) -> list[list[str]]:
    rows = []
    for i, r in enumerate(results, 1):
        lay = r.layout
        rows.append([str(i), str(lay.tp), str(lay.pp), str(lay.dp), str(lay.ep), str(lay.cp), f"{r.global_batch:,}",
                     str(lay.micro_batch),
                     str(lay.virtual_stages), str(lay.zero), lay.recompute, fmt(r.memory.total, "bytes"),
                     fmt(r.memory.fraction_of_capacity, "percent"), fmt(r.step_time_s, "seconds"),
                     fmt(r.mfu, "percent"), fmt(r.days, "days")])
    return rows


HEADERS = ["#", "tp", "pp", "dp", "ep", "cp", "batch", "mb", "v", "ZeRO", "recompute", "memory/GPU", "% of cap.", "step",
           "MFU", "days"]


def _title(req: Any, res: Any) -> str:
    return (f"{req.model.name} on {req.gpus:,} × {req.cluster.gpu.name}: {res.evaluated:,} layouts checked, "
            f"fastest fitting first (usable memory = {1 - req.memory.headroom_fraction:.0%} of "
            f"{req.cluster.gpu.memory_gib:g} GiB)")


def _markdown(req: Any, res: Any, results: list[Result], changes: list[Any]) -> str:
    from .. import render

    text = f"## {render.clean_line(_title(req, res))}\n\n" + (render.md_table(HEADERS, _rows(results)) if results
                                                               else "Nothing fits.\n")
    if results:
        text += "\n## Memory of the best layout\n\n" + render.md_table(["", ""], [list(x) for x in
                                                                                   render.memory_rows(results[0])])
    return text + "".join(f"- would fit with `{c.flag}`: {c.description}\n" for c in changes)


def _tables(req: Any, res: Any, results: list[Result], changes: list[Any]) -> list[Any]:
    from .. import render
    from ..output.assumptions import assumption_texts

    title = _title(req, res)
    tables: list[Any] = []
    if results:
        tables.append(render.kv_table(title, [tuple(r) for r in _rows(results)], HEADERS,
                                      drop=("cp", "ep", "v", "% of cap.", "batch", "mb", "step")))
        tables.append(render.memory_table(results[0], "Memory per GPU of the best layout"))
        tables.append(render.kv_table("Assumptions", [("•", a) for a in assumption_texts(results[0].assumptions)]))
    else:
        rows = [(c.flag, c.description, fmt(c.candidate.memory.total, "bytes")) for c in changes]
        tables.append(render.kv_table(f"{title}: nothing fits. Changes that would fit",
                                      rows or [("—", "no single change found", "")], ["change", "what", "memory/GPU"]))
    return tables


def _min_gpus(req: Any, opts: dict[str, Any]) -> Output:
    """The smallest GPU count that holds the model (--min-gpus)."""
    from .. import render

    note = progress(opts)
    found = min_gpus(req, progress=note)
    if note:
        note("")
    if found is None:  # JSON says so in the document; the other formats write nothing
        return Output("fit-min-gpus", {"min_gpus": None, "nodes": None}, csv_document=False,
                      failure=GateFailed(f"no GPU count up to 1,048,576 holds {req.model.name} on {req.cluster.gpu.name}"))
    n, cand = found
    r = evaluate(req.__class__(**{**req.__dict__, "gpus": n}), cand, "searched")
    from ..inputs.merge import with_file_notes

    r = with_file_notes([r], opts)[0]
    nodes = n / req.cluster.gpus_per_node
    where = f"{nodes:g} node{'s' if nodes != 1 else ''}" if n >= req.cluster.gpus_per_node else "below one node"
    rows = [("Fewest GPUs", f"{n:,} × {req.cluster.gpu.name} ({where})"), ("Layout", render.layout_text(r)),
            ("Step time", fmt(r.step_time_s, "seconds")), ("MFU", fmt(r.mfu, "percent")),
            ("Days", fmt(r.days, "days"))] + render.memory_rows(r)
    return Output("fit-min-gpus", {"min_gpus": n, "nodes": nodes, **_layout_doc(r)},
                  csv_rows=[{"min_gpus": n, **_layout_doc(r)}],
                  tables=lambda: [render.kv_table(f"Smallest GPU count that holds {req.model.name}", rows)],
                  markdown=lambda: render.md_table(["", ""], [list(x) for x in rows]))
