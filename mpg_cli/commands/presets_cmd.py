"""mpg presets: list the presets and show one, with where it came from."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from ..errors import InputError, PresetError, did_you_mean
from ..output.emit import Output, emit_output
from ..presets import KINDS, all_refs, available, load_cluster, load_gpu, load_model


def _kinds(kind: Optional[str]) -> tuple[str, ...]:
    if kind is None:
        return KINDS
    k = kind if kind in KINDS else f"{kind}s"
    if k not in KINDS:
        raise InputError(f"unknown preset kind {kind!r}", hint=did_you_mean(kind, KINDS) or f"kinds: {', '.join(KINDS)}")
    return (k,)


def _description(path) -> str:
    """The description line, read without parsing YAML (listing stays fast)."""
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("description:"):
                    return line.split(":", 1)[1].strip().strip('"').strip("'")
    except (OSError, UnicodeDecodeError):
        return "(unreadable)"
    return ""


def list_presets(kind: Optional[str], extra: Optional[str], fmt_name: str, output: Optional[str]) -> int:
    from .. import render

    rows: list[dict[str, Any]] = []
    for k in _kinds(kind):
        refs = all_refs(k, extra)
        winner = {r.name: r for r in refs}
        for r in sorted(refs, key=lambda x: (x.name, x.origin != "built-in")):
            active = winner[r.name] is r
            rows.append({"kind": k, "name": r.name, "origin": r.origin, "path": str(r.path), "active": active,
                         "description": _description(r.path)})
    headers = ["kind", "name", "from", "description"]
    body = [[r["kind"], r["name"], r["origin"] + ("" if r["active"] else " (overridden)"), r["description"]]
            for r in rows]
    title = f"{len(rows)} presets (user directories override built-ins)"
    return emit_output(Output("presets-list", {"presets": rows}, csv_rows=rows,
                              tables=lambda: [render.kv_table(title, [tuple(b) for b in body], headers)],
                              markdown=lambda: render.md_table(headers, body)), fmt_name, output)


def _spec_dict(spec: Any) -> dict[str, Any]:
    d = dataclasses.asdict(spec)
    if "peak_tflops" in d:
        d["peak_tflops"] = dict(d["peak_tflops"])
    if "gpu" in d and isinstance(d["gpu"], dict) and "peak_tflops" in d["gpu"]:
        d["gpu"]["peak_tflops"] = dict(d["gpu"]["peak_tflops"])
    return d


def show_preset(name: str, kind: Optional[str], extra: Optional[str], fmt_name: str, output: Optional[str]) -> int:
    from .. import render
    from ..core.params import param_breakdown

    matches = [k for k in _kinds(kind) if name in available(k, extra)]
    if not matches and ("/" in name or name.endswith((".yaml", ".yml", ".json"))):
        matches = list(_kinds(kind or "models"))[:1]
    if not matches:
        names = [n for k in _kinds(kind) for n in available(k, extra)]
        raise PresetError(f"no preset named {name!r}", hint=did_you_mean(name, names) or "run 'mpg presets list'")
    if len(matches) > 1:
        raise InputError(f"{name!r} is a preset of several kinds ({', '.join(matches)})",
                         hint=f"add --kind {matches[0][:-1]}")
    k = matches[0]
    loader = {"models": load_model, "gpus": load_gpu, "clusters": load_cluster}[k]
    spec: Any = loader(name, extra)
    d = _spec_dict(spec)
    if k == "models":
        pb = param_breakdown(spec)
        d["computed_params"] = {"total": pb.total, "active": pb.active}
    flat = render.flatten(d)
    rows = [(key, "" if v is None else str(v)) for key, v in flat.items() if v not in (None, "")]
    title = f"{k[:-1]} {spec.name} — from {spec.origin}"
    return emit_output(Output("presets-show", {"kind": k, "preset": d}, csv_rows=[d],
                              tables=lambda: [render.kv_table(title, rows)],
                              markdown=lambda: render.md_table(["key", "value"], [list(r) for r in rows])),
                       fmt_name, output)
