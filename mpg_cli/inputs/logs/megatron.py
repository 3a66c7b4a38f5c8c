"""Megatron-LM (and Megatron-DeepSpeed) ``iteration N/M | ...`` lines.

Part of :mod:`mpg_cli.inputs.logs` (standard library and :mod:`mpg_cli.errors` only; nothing asserts).
"""

from __future__ import annotations

import re

from mpg_cli.inputs.megatron_args import log_argument, log_layout
from .base import _NUM, _Parsed, _Record, _int, _num, _set_once, _to_bytes

_MEG_ITER = re.compile(r"\biteration\s+(\d+)\s*/\s*(\d+)\s*\|(.*)$")
_PIPE_FIELD = re.compile(r"([^|:]+?):\s*([^|]*?)\s*(?=\||$)")
_MEG_MEM = re.compile(r"memory \(([KMGT]i?B)\)\s*\|.*?\bmax allocated:\s*(" + _NUM + ")", re.I)
_MEG_WORLD = re.compile(r"using world size:\s*(\d+)")


def _parse_megatron(lines: list[str]) -> _Parsed:
    p = _Parsed(expected="'iteration N/ M | ... | elapsed time per iteration (ms): T | ...'")
    tflops_fields: set[str] = set()
    mem_peaks: list[float] = []
    args: dict[str, str] = {}
    for line in lines:
        m = _MEG_ITER.search(line)
        if m:
            p.records.append(_iteration(m, tflops_fields))
            continue
        m = _MEG_MEM.search(line)
        if m:
            value = _num(m.group(2))
            if value is not None:
                b = _to_bytes(value, m.group(1), binary=True)
                if b is not None:
                    mem_peaks.append(b)
            continue
        arg = log_argument(line)  # the printed argument block: '  tensor_model_parallel_size ...... 8'
        if arg:
            args.setdefault(*arg)
            continue
        m = _MEG_WORLD.search(line)
        if m:
            p.world_size = _set_once(p.world_size, int(m.group(1)))
    _finish(p, args, mem_peaks, tflops_fields)
    return p


def _iteration(m: re.Match[str], tflops_fields: set[str]) -> _Record:
    """One 'iteration N/M | key: value | ...' line as a record (the TFLOP/s field's name goes to ``tflops_fields``)."""
    fields = {k.strip().lower(): v for k, v in _PIPE_FIELD.findall(m.group(3))}
    rec = _Record(step=int(m.group(1)))
    ms = _num(fields.get("elapsed time per iteration (ms)"))
    rec.step_time_s = ms / 1000.0 if ms is not None else None
    for key in ("throughput per gpu (tflop/s/gpu)", "tflops"):
        value = _num(fields.get(key))
        if value is not None:
            rec.tflops_per_gpu = value
            tflops_fields.add(key)
            break
    rec.global_batch = _int(fields.get("global batch size"))
    rec.samples_per_second = _num(fields.get("samples per second"))
    rec.tokens_per_second_per_gpu = _num(fields.get("tokens per gpu per second (tgs)"))
    rec.seq_length = _int(fields.get("actual seqlen"))
    return rec


def _finish(p: _Parsed, args: dict[str, str], mem_peaks: list[float], tflops_fields: set[str]) -> None:
    """The printed arguments (sequence length, batch, world size, layout), the peak memory and what the
    TFLOP/s field counts."""
    # the arguments Megatron printed, read by the same module that reads Megatron launch scripts (--from)
    for key, attr in (("seq_length", "seq_length"), ("global_batch_size", "global_batch")):
        if args.get(key, "").isdigit():
            setattr(p, attr, int(args[key]))
    if p.world_size is None and args.get("world_size", "").isdigit():
        p.world_size = int(args["world_size"])
    p.layout.update(log_layout(args))
    if mem_peaks:
        p.peak_memory_bytes = max(mem_peaks)
        p.notes.append(
            "peak memory: Megatron's 'max allocated' (its 'MB' are MiB), the highest over the "
            f"{len(mem_peaks)} rank report(s); it is cumulative since start, so warm-up is included"
        )
    if "throughput per gpu (tflop/s/gpu)" in tflops_fields:
        p.notes.append(
            "TFLOP/s per GPU: Megatron-LM's 'throughput per GPU', its analytic model-FLOP count "
            "(forward + backward, activation recomputation not counted)"
        )
    elif "tflops" in tflops_fields:
        p.notes.append(
            "TFLOP/s per GPU: Megatron-DeepSpeed's 'TFLOPs' field, which counts activation "
            "recomputation when it is on (hardware FLOPs)"
        )
