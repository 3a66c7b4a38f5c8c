"""mpg calibrate: measured miles per gallon from a short partial training run."""

from __future__ import annotations

import re
from typing import Any

from ..args import CalibrateArgs
from ..errors import InputError, MpgError
from ..humanize import fmt
from ..output.emit import Output, emit_output, format_of
from ..sanitize import clean_line


def run(opts: dict[str, Any], args: CalibrateArgs) -> int:
    """The measured figures (from the log or the flags) against the step-time model; the calibrated projection."""
    log, measured, warmup, log_format = args.log, args.measured(), args.warmup, args.log_format
    save, force = args.save, args.force
    from ..calibration import calibrate, save as save_file, to_document
    from ..parsing import check_positive
    from ..inputs.merge import apply_from, with_file_notes
    from ..scenario import build_requests

    opts = apply_from(opts)
    for flag, key in (("--step-time", "step_time"), ("--tokens-per-second", "tokens_per_second"),
                      ("--tflops", "tflops"), ("--mfu", "mfu")):
        check_positive(measured.get(key), flag, maximum=1.0 if key == "mfu" else None)
    _check_inputs(opts, measured, log, save, force)
    summary = None
    steps_used = None
    shape_warnings: dict[str, int] = {}
    if log:
        opts, measured, summary, shape_warnings = _read_measured_log(opts, log, warmup, log_format)
        steps_used = summary.steps_used
    req = build_requests(opts)[0]
    warnings = _shape_check(shape_warnings, req.model, log) if log else []
    cal = calibrate(req, measured, steps_used)
    cal.projection = with_file_notes([cal.projection], opts)[0]  # a new (frozen) result, with the files' notes
    if summary is not None:
        cal.peak_memory_bytes = summary.peak_memory_bytes
        cal.log_summary = summary
    doc = to_document(cal, req, log)
    from ..calibration import RATIO_PLAUSIBLE, check_ratio

    if save is not None:
        try:
            check_ratio(cal.ratio, f"--save {clean_line(save)}")
        except MpgError as exc:
            raise InputError(f"{exc.message}: not saved, --calibration would refuse it", exc.hint) from None
    if not RATIO_PLAUSIBLE[0] <= cal.ratio <= RATIO_PLAUSIBLE[1]:
        warnings.append(f"measured / predicted = {cal.ratio:.3f}: far from 1; check that --model, --gpus "
                        "and the layout are the measured run's (a different model size gives such ratios)")
    if save is not None:
        save_file(doc, save, force)
    return emit_output(_output(cal, summary, log, save, warnings), format_of(opts), opts.get("output"),
                       bool(opts.get("quiet")))


def _check_inputs(opts: dict[str, Any], measured: dict[str, Any], log: Any, save: Any, force: bool) -> None:
    """One measured run (one GPU count, a log or one figure), and a --save target that may be written, checked
    before any work so that nothing is written on a bad input."""
    from ..parsing import parse_gpus

    if len(parse_gpus(opts.get("gpus"))) > 1:
        raise InputError(f"--gpus {clean_line(opts.get('gpus'))}: calibrate measures one run: give its GPU count",
                         hint="project to other GPU counts afterwards with 'mpg estimate --calibration FILE -n 64,128'")
    given = [k for k, v in measured.items() if v is not None]
    if log and given:
        raise InputError("give a training log or a measured figure, not both")
    if len(given) > 1:
        raise InputError(f"several measurements given ({', '.join('--' + g.replace('_', '-') for g in given)})",
                         hint="give one: the others follow from it")
    if save is not None:  # fail before any work: nothing is written
        from ..safeio import same_file, user_path

        target = user_path(save, "--save")
        if target.exists() and not force:
            raise InputError(f"--save {clean_line(save)}: file exists", hint="pass --force to overwrite it")
        out = opts.get("output")
        if out is not None and str(out).strip() and same_file(save, out):
            raise InputError("--save and --output name the same file", hint="give the report and the calibration "
                             "different files")


def _read_measured_log(opts: dict[str, Any], log: str, warmup: Any, log_format: Any) -> tuple[Any, ...]:
    """(options with the log's layout, batch and sequence length, the measured figures, the log's summary, the
    model-shape values the log printed): the throughput comes from the log."""
    from ..inputs.logs import parse_log
    from ..safeio import read_log

    log_text, log_notes = read_log(log)
    summary = parse_log(log_text, log, warmup=warmup, fmt=log_format, notes=log_notes)
    measured = {"step_time": summary.step_time_s, "tokens_per_second": summary.tokens_per_second,
                "tflops": None, "mfu": summary.mfu}
    if summary.tokens_per_second is None and summary.tokens_per_second_per_gpu is not None:
        measured["tokens_per_second"] = summary.tokens_per_second_per_gpu * _gpus(opts)
    opts = _from_log(opts, summary, log)
    shape_warnings = _shape_mismatch(log_text, opts)
    for key, value in (("global_batch", summary.global_batch), ("seq_length", summary.seq_length)):
        if not value:
            continue
        if not opts.get(key):
            opts = {**opts, key: value}
            if key == "seq_length":
                opts["_seq_from"] = f"the log {log}"
        else:
            _check_config(opts, key, value, log)
    if all(v is None for v in measured.values()):
        raise InputError(f"{log}: the log has no throughput mpg can use (no step time, tokens/s or MFU)",
                         hint="give --step-time or --tokens-per-second instead")
    return opts, measured, summary, shape_warnings


def _output(cal: Any, summary: Any, log: Any, save: Any, warnings: list[str]) -> Output:
    """The document (measured, predicted, ratio, the log's summary, the calibrated projection) and its tables."""
    from .. import render

    est = render.estimate_body(cal.projection)
    mem_pred = cal.projection.memory.total
    body = {"measured": cal.measured.as_dict(), "predicted": cal.predicted.as_dict(), "ratio": cal.ratio,
            "measured_from": cal.measured_from, "log": None if summary is None else {
                "path": log, "format": summary.format, "steps_total": summary.steps_total,
                "steps_used": summary.steps_used, "warmup_skipped": summary.warmup_skipped,
                "notes": list(summary.notes)},
            "peak_memory_bytes": {"measured": cal.peak_memory_bytes, "predicted": mem_pred},
            "saved_to": save, **est}
    m, p = cal.measured, cal.predicted
    rows = [
        ("Tokens/s (whole job)", fmt(m.tokens_per_second, "tokens_s"), fmt(p.tokens_per_second, "tokens_s")),
        ("Step time", fmt(m.step_time_s, "seconds"), fmt(p.step_time_s, "seconds")),
        ("Hardware TFLOP/s per GPU", fmt(m.tflops_per_gpu, "tflops"), fmt(p.tflops_per_gpu, "tflops")),
        ("Model TFLOP/s per GPU", fmt(m.model_tflops_per_gpu, "tflops"), fmt(p.model_tflops_per_gpu, "tflops")),
        ("MFU", fmt(m.mfu, "percent"), fmt(p.mfu, "percent")),
    ]
    if cal.peak_memory_bytes is not None:
        rows.append(("Peak memory per GPU", fmt(cal.peak_memory_bytes, "bytes"), fmt(mem_pred, "bytes")))
    rows.append(("Ratio measured / predicted", f"{cal.ratio:.3f}", ""))
    src = f"{log} ({summary.format}, {summary.steps_used} of {summary.steps_total} steps, {summary.warmup_skipped} " \
          f"warm-up skipped)" if summary else f"--{cal.measured_from.replace(' ', '-')}"
    r = cal.projection
    proj = [("Measured from", src), ("Layout", render.layout_text(r)),
            ("Projected time", fmt(r.days, "days")), ("GPU-hours", fmt(r.gpu_hours, "gpu_hours")),
            ("Cost", fmt(r.cost_usd, "usd")), ("Tokens", fmt(r.tokens, "tokens"))]
    if save:
        proj.append(("Saved", f"{save} (use --calibration {save} with estimate, fit, compare)"))

    def tables() -> list[Any]:
        out = [render.kv_table("Measured vs the step-time model", rows, ["", "measured", "predicted"]),
               render.kv_table("Projected full run (calibrated)", proj)]
        if summary is not None and summary.notes:
            out.append(render.kv_table("Log notes", [("•", n) for n in summary.notes]))
        return out

    return Output("calibrate", body, tables=tables, warnings=warnings,
                  markdown=lambda: render.md_table(["", "measured", "predicted"], [list(x) for x in rows])
                  + "\n" + render.md_table(["", ""], [list(x) for x in proj]))


def _from_log(opts: dict[str, Any], summary: Any, log: str) -> dict[str, Any]:
    """Fill the GPU count and the layout from what the log printed, unless the flags give them; they must agree."""
    from ..parsing import parse_gpus

    out = dict(opts)
    _check_log_values(summary, log)
    if summary.world_size:
        given = parse_gpus(opts.get("gpus"))
        if given:
            _check_config(opts, "gpus", str(summary.world_size), log)
        if given and given[0] != summary.world_size:
            raise InputError(f"{log}: the run used {summary.world_size} GPUs (world size) but --gpus is {given[0]}",
                             hint=f"use --gpus {summary.world_size}, or the log of the run you mean")
        out["gpus"] = str(summary.world_size)
    for key, value in summary.layout:
        flag = "--" + key.replace("_", "-")
        if opts.get(key) is None:
            out[key] = value
        elif opts[key] != value:
            _check_config(opts, key, value, log)
            raise InputError(f"{log}: the run used {flag} {value} but {flag} {opts[key]} was given",
                             hint=f"drop {flag}: the log's value is used")
    return out


def _check_config(opts: dict[str, Any], key: str, value: Any, log: str) -> None:
    """A value the log prints must match what a --from training config says (when the config gave it)."""
    src = (opts.get("_from_keys") or {}).get(key)
    if src and key not in (opts.get("_explicit") or ()) and str(opts.get(key)) != str(value):
        raise InputError(f"{log}: the run used {key.replace('_', ' ')} {value} but the training config says {src}",
                         hint="pass the training config of the run the log is from")


def _gpus(opts: dict[str, Any]) -> int:
    from ..parsing import parse_gpus

    counts = parse_gpus(opts.get("gpus"))
    if not counts:
        raise InputError("the log gives tokens/s per GPU: give the run's GPU count with --gpus")
    return counts[0]


# what the log may say, with the same bounds as the flags (tp/pp/... at least 1, zero 0-3)
_LOG_LIMITS = {"world_size": (1, 10_000_000), "global_batch": (1, 100_000_000), "seq_length": (1, 10_000_000),
               "zero": (0, 3)}


def _check_log_values(summary: Any, log: str) -> None:
    """Values read from the log go through the same validation as flags (the message names the log)."""
    items = [("world_size", summary.world_size), ("global_batch", summary.global_batch),
             ("seq_length", summary.seq_length)] + list(summary.layout)
    for key, value in items:
        if value is None:
            continue
        lo, hi = _LOG_LIMITS.get(key, (1, 1_000_000))
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise InputError(f"{clean_line(log)}: the log gives {key.replace('_', ' ')} {value!r}, which is not "
                             f"between {lo:,} and {hi:,}",
                             hint=f"give --{key.replace('_', '-')} explicitly or check the log" if key != "world_size"
                             else "give --gpus explicitly or check the log")


# Megatron-LM's arguments block ('hidden_size ........ 8192') or NeMo's YAML config ('hidden_size: 4096')
_SHAPE = re.compile(r"^\s*(hidden_size|num_layers|num_attention_heads)\s*(?:\.{2,}|:)\s*(\d{1,9})\s*$", re.M)
_SHAPE_KEYS = {"hidden_size": ("hidden_size", "hidden size"), "num_layers": ("layers", "layers"),
               "num_attention_heads": ("heads", "attention heads")}


def _shape_mismatch(text: str, opts: dict[str, Any]) -> dict[str, int]:
    """The model shape a Megatron-LM log prints in its arguments block (lines are length-capped: linear time)."""
    found: dict[str, int] = {}
    for m in _SHAPE.finditer(text[: 4 << 20]):
        found.setdefault(m.group(1), int(m.group(2)))
    return found


def _shape_check(found: dict[str, int], model: Any, log: str) -> list[str]:
    """Warnings when the log's own model shape contradicts --model (a 70B log calibrated as an 8B)."""
    out = []
    for key, value in found.items():
        attr, words = _SHAPE_KEYS[key]
        mine = getattr(model, attr, None)
        if isinstance(mine, int) and mine != value:
            out.append(f"{log}: the run's {words} is {value:,} but --model {model.name} has {mine:,}: "
                       "the ratio compares different models")
    return out
