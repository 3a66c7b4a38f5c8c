"""torchtitan: ``step: N  loss: ...  memory: ...GiB(..%)  tps: ...  tflops: ...  mfu: ..%`` (older: ``wps:``, ANSI colours).

Part of :mod:`mpg_cli.inputs.logs` (standard library and :mod:`mpg_cli.errors` only; nothing asserts).
"""

from __future__ import annotations

import datetime as _dt
import math
import re

from .base import _NUM, _Parsed, _Record, _num, _set_once, _timestamp, _to_bytes

_TT_STEP = re.compile(r"\bstep:\s*(\d+)\s+loss:")
_TT_TPS = re.compile(r"\b(tps|wps):\s*(" + _NUM + ")")
_TT_TFLOPS = re.compile(r"\btflops:\s*(" + _NUM + ")")
_TT_MFU = re.compile(r"\bmfu:\s*(" + _NUM + r")\s*%")
_TT_MEM = re.compile(r"\bmemory:\s*(" + _NUM + r")\s*([KMGT]i?B)")
_TT_RANK = re.compile(r"^\s*\[rank(\d+)\]:")
_TT_LOCAL_BATCH = re.compile(r"\blocal batch size (\d+)")
_TT_GLOBAL_BATCH = re.compile(r"\bglobal batch size (\d+)")
_TT_SEQ = re.compile(r"\bsequence length (\d+)|[\"']seq_len[\"']\s*:\s*(\d+)")
_TT_MESH = re.compile(r"Building \d+-D device mesh with \[([^\]]*)\],\s*\[([\d,\s]+)\]")


def _parse_torchtitan(lines: list[str]) -> _Parsed:
    p = _Parsed(cost_field="tokens_per_second_per_gpu", expected="'step: N  loss: L  memory: ..GiB(..%)  tps: T  tflops: F  mfu: M%'")
    step_lines = [(i, _TT_RANK.match(line)) for i, line in enumerate(lines) if _TT_STEP.search(line)]
    ranks = {int(m.group(1)) for _, m in step_lines if m}
    keep_rank = min(ranks) if ranks else None
    if len(ranks) > 1:
        p.notes.append(f"step lines from ranks {sorted(ranks)}; used rank {keep_rank} only")
    local_batch = None
    mesh_dp = None
    prev: tuple[int, _dt.datetime] | None = None
    used_timestamps = False
    seen_tflops = False
    counter = None
    for line in lines:
        if _TT_STEP.search(line):
            rank = _TT_RANK.match(line)
            if keep_rank is not None and (rank is None or int(rank.group(1)) != keep_rank):
                continue
            step_m = _TT_STEP.search(line)
            if step_m is None:  # cannot happen (matched just above); narrows the type
                continue
            step = int(step_m.group(1))
            rec, name = _step_record(line, step)
            counter = counter or name
            seen_tflops = seen_tflops or rec.tflops_per_gpu is not None
            when = _timestamp(line)
            if when is not None and prev is not None and step > prev[0]:
                seconds = (when - prev[1]).total_seconds()
                if seconds > 0:
                    rec.step_time_s = seconds / (step - prev[0])
                    used_timestamps = True
            prev = (step, when) if when is not None else None
            p.records.append(rec)
            continue
        m = _TT_LOCAL_BATCH.search(line)
        if m:
            local_batch = _set_once(local_batch, int(m.group(1)))
        m = _TT_GLOBAL_BATCH.search(line)
        if m:
            p.global_batch = _set_once(p.global_batch, int(m.group(1)))
        m = _TT_SEQ.search(line)
        if m:
            p.seq_length = _set_once(p.seq_length, int(m.group(1) or m.group(2)))
        m = _TT_MESH.search(line)
        if m and p.world_size is None:
            mesh_dp = _mesh(p, m, mesh_dp)
    _finish(p, local_batch, mesh_dp, counter, used_timestamps, seen_tflops)
    return p


def _step_record(line: str, step: int) -> tuple[_Record, str | None]:
    """A step line's tokens/s, TFLOP/s, MFU and memory; with the name of the tokens/s field ('tps' or 'wps')."""
    rec = _Record(step=step)
    counter = None
    m = _TT_TPS.search(line)
    if m:
        rec.tokens_per_second_per_gpu = _num(m.group(2))
        counter = m.group(1)
    m = _TT_TFLOPS.search(line)
    if m:
        rec.tflops_per_gpu = _num(m.group(1))
    m = _TT_MFU.search(line)
    if m:
        pct = _num(m.group(1))
        rec.mfu = pct / 100.0 if pct is not None else None
    m = _TT_MEM.search(line)
    if m:
        value = _num(m.group(1))
        rec.memory_bytes = _to_bytes(value, m.group(2)) if value is not None else None
    return rec, counter


def _mesh(p: _Parsed, m: re.Match[str], mesh_dp: int | None) -> int | None:
    """The device mesh: the world size, and the data-parallel size when the dimensions are named."""
    names = [n.strip().strip("'\"") for n in m.group(1).split(",") if n.strip()]
    dims = [int(d) for d in m.group(2).replace(",", " ").split()]
    if dims:
        p.world_size = math.prod(dims)
        if len(names) == len(dims):
            return math.prod(d for n, d in zip(names, dims) if n.startswith("dp"))
    return mesh_dp


def _finish(p: _Parsed, local_batch: int | None, mesh_dp: int | None, counter: str | None, used_timestamps: bool,
            seen_tflops: bool) -> None:
    """The global batch from the local batch and the mesh, and a note for each derived or converted field."""
    if p.global_batch is None and local_batch is not None and mesh_dp is not None:
        p.global_batch = local_batch * mesh_dp
        p.notes.append("global batch = local batch size x data-parallel mesh size")
    if counter == "wps":
        p.notes.append("per-GPU tokens/s from 'wps' (older torchtitan name for tps)")
    if used_timestamps:
        p.notes.append(
            "step time from the timestamps of consecutive step lines divided by the steps between them "
            "(torchtitan does not print it)"
        )
    if seen_tflops:
        p.notes.append(
            "TFLOP/s per GPU: torchtitan's tflops, model FLOPs per token (6 x params + attention) "
            "x tokens/s per GPU, recomputation not counted"
        )
    if any(r.mfu is not None for r in p.records):
        p.notes.append("mfu: torchtitan prints a percentage of the GPU's peak dense bf16; converted to a fraction")
    if any(r.memory_bytes is not None for r in p.records):
        p.notes.append("peak memory: torchtitan's 'memory' (max reserved per log interval), max over the used records")
