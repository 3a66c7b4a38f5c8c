"""DeepSpeed: ThroughputTimer ``CurrSamplesPerSec=`` lines, the ``train_batch_size`` config line, the flops profiler summary.

Part of :mod:`mpg_cli.inputs.logs` (standard library and :mod:`mpg_cli.errors` only; nothing asserts).
"""

from __future__ import annotations

import re
import statistics

from .base import _NUM, _Parsed, _Record, _num, _set_once, _to_bytes
from .hf_trainer import _generic_seq_length

_DS_TIMER = re.compile(r"\bglobal_step=(\d+).*?\bCurrSamplesPerSec=(" + _NUM + ")")
_DS_MAXMEM = re.compile(r"\bMaxMemAllocated=(" + _NUM + r")\s*([KMGT]i?B)")
_DS_GB = re.compile(r"(?<![\w])[\"']?train_batch_size[\"']?\s*(?:\.{2,}|[:=])?\s*(\d+)")
_DS_PROFILE_STEP = re.compile(r"Profile Summary at step (\d+)")
_DS_PROFILE_FLOPS = re.compile(r"^\s*FLOPS per GPU\b[^:]*:\s*(" + _NUM + r")\s*([KMGTP]?)FLOPS\s*$")
_DS_PROFILE_WORLD = re.compile(r"^\s*world size:\s*(\d+)\s*$")
_DS_TFLOPS = re.compile(r"\bTFLOPs:\s*(" + _NUM + ")")
_FLOPS_SCALE = {"": 1e-12, "K": 1e-9, "M": 1e-6, "G": 1e-3, "T": 1.0, "P": 1e3}


def _parse_deepspeed(lines: list[str]) -> _Parsed:
    p = _Parsed(
        cost_field="samples_per_second",
        expected="ThroughputTimer lines 'epoch=E/micro_step=M/global_step=N, RunningAvgSamplesPerSec=.., CurrSamplesPerSec=S, ...'",
    )
    profile_step = None
    other_tflops: list[float] = []
    for line in lines:
        m = _DS_TIMER.search(line)
        if m:
            rec = _Record(step=int(m.group(1)), samples_per_second=_num(m.group(2)))
            mm = _DS_MAXMEM.search(line)
            if mm:
                value = _num(mm.group(1))
                rec.memory_bytes = _to_bytes(value, mm.group(2), binary=True) if value is not None else None
            p.records.append(rec)
            continue
        m = _DS_GB.search(line)
        if m and p.global_batch is None:
            p.global_batch = int(m.group(1))
            continue
        m = _DS_PROFILE_STEP.search(line)
        if m:
            profile_step = int(m.group(1))
            continue
        m = _DS_PROFILE_FLOPS.match(line)
        if m:
            value = _num(m.group(1))
            if value is not None:
                p.tflops_single = value * _FLOPS_SCALE[m.group(2)]
                p.tflops_single_step = profile_step
            continue
        m = _DS_PROFILE_WORLD.match(line)
        if m:
            p.world_size = _set_once(p.world_size, int(m.group(1)))
            continue
        m = _DS_TFLOPS.search(line)
        if m:
            value = _num(m.group(1))
            if value is not None:
                other_tflops.append(value)
    _generic_seq_length(lines, p)
    if p.tflops_single is not None:
        at = f" (step {p.tflops_single_step})" if p.tflops_single_step is not None else ""
        p.notes.append(
            "TFLOP/s per GPU: DeepSpeed flops profiler, 3 x measured forward FLOPs / iteration latency "
            f"of one profiled step{at}: a single sample, not a steady-state median"
        )
    elif other_tflops:
        p.tflops_single = statistics.median(other_tflops)
        p.notes.append(f"TFLOP/s per GPU: median of {len(other_tflops)} 'TFLOPs:' value(s) printed in the log")
    if p.records:
        p.notes.append("samples/s: DeepSpeed's CurrSamplesPerSec (global batch / time of that step)")
        if p.global_batch is None:
            p.notes.append("step time unknown: no train_batch_size in the log (samples per step)")
    if any(r.memory_bytes is not None for r in p.records):
        p.notes.append("peak memory: DeepSpeed's MaxMemAllocated, printed as 'GB' but in GiB (2^30 bytes)")
    return p
