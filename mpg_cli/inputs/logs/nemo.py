"""NeMo: the 1.x Lightning progress bar (``train_step_timing in s=...``) and 2.x ``Training epoch 0, iteration N/M | ...`` lines.

Part of :mod:`mpg_cli.inputs.logs` (standard library and :mod:`mpg_cli.errors` only; nothing asserts).
"""

from __future__ import annotations

import re
import statistics

from mpg_cli.inputs.megatron_args import log_layout
from .base import _NUM, _Parsed, _Record, _int, _num, _set_once

_NEMO_FIELD = re.compile(
    r"(global_step|consumed_samples|train_step_timing in s|TFLOPS_per_GPU|global_batch_size)\s*[=:]\s*(" + _NUM + ")"
)
_NEMO_ITER = re.compile(r"\biteration\s+(\d+)\s*/\s*\d+")
_TQDM_COUNT = re.compile(r"\|\s*(\d+)/(\d+|\?)\s*\[")
_NEMO_YAML_GB = re.compile(r"^\s*global_batch_size:\s*(\d+)\s*$")
_NEMO_YAML_SEQ = re.compile(r"^\s*(?:encoder_seq_length|seq_length|seq_len):\s*(\d+)\s*$")
_NEMO_WORLD = re.compile(r"Initializing distributed: GLOBAL_RANK: \d+, MEMBER: \d+/(\d+)|Starting with (\d+) processes")


# NeMo prints its experiment config as YAML: the parallel layout, with Megatron's argument names
_NEMO_YAML_LAYOUT = re.compile(r"^\s*(tensor_model_parallel_size|pipeline_model_parallel_size|context_parallel_size|"
                              r"micro_batch_size):\s*(\d{1,9})\s*$")


def _parse_nemo(lines: list[str]) -> _Parsed:
    p = _Parsed(expected="'train_step_timing in s=T' in the progress bar (NeMo 1) or '| train_step_timing in s: T |' (NeMo 2)")
    at_index: dict[int, int] = {}  # step -> position in p.records
    consumed: dict[int, float] = {}
    yaml_gb = None
    seen_tflops = False
    for line in lines:
        if "train_step_timing" in line:
            fields = dict(_NEMO_FIELD.findall(line))
            rec = _step_record(line, fields)
            if rec is None:
                continue
            seen_tflops = seen_tflops or rec.tflops_per_gpu is not None
            if rec.step is None:
                p.records.append(rec)
            else:
                # tqdm redraws the same step (postfix refresh, validation): keep the last
                if rec.step in at_index:
                    p.records[at_index[rec.step]] = rec
                else:
                    at_index[rec.step] = len(p.records)
                    p.records.append(rec)
                cs = _num(fields.get("consumed_samples"))
                if cs is not None:
                    consumed[rec.step] = cs
            continue
        m = _NEMO_YAML_GB.match(line)
        if m:
            yaml_gb = _set_once(yaml_gb, int(m.group(1)))
            continue
        m = _NEMO_YAML_LAYOUT.match(line)
        if m:
            p.layout.update({k: v for k, v in log_layout({m.group(1): m.group(2)}).items() if k not in p.layout})
            continue
        m = _NEMO_YAML_SEQ.match(line)
        if m:
            p.seq_length = _set_once(p.seq_length, int(m.group(1)))
            continue
        m = _NEMO_WORLD.search(line)
        if m:
            p.world_size = _set_once(p.world_size, int(m.group(1) or m.group(2)))
    _global_batch(p, yaml_gb, consumed)
    if seen_tflops:
        p.notes.append("TFLOP/s per GPU: NeMo's TFLOPS_per_GPU (FLOPsMeasurementCallback, analytic model FLOPs)")
    return p


def _step_record(line: str, fields: dict[str, str]) -> _Record | None:
    """One progress-bar or logger line with train_step_timing as a record (None without a step time)."""
    st = _num(fields.get("train_step_timing in s"))
    if st is None:
        return None
    rec = _Record(step_time_s=st)
    gs = _num(fields.get("global_step"))
    if gs is not None:
        rec.step = int(gs)
    else:
        m = _NEMO_ITER.search(line) or _TQDM_COUNT.search(line)
        if m:
            rec.step = int(m.group(1))
    rec.tflops_per_gpu = _num(fields.get("TFLOPS_per_GPU"))
    rec.global_batch = _int(fields.get("global_batch_size"))
    return rec


def _global_batch(p: _Parsed, yaml_gb: int | None, consumed: dict[int, float]) -> None:
    """The global batch from the printed config, else from the growth of consumed_samples per step."""
    if yaml_gb is not None:
        p.global_batch = yaml_gb
    elif len(consumed) >= 2 and not any(r.global_batch is not None for r in p.records):
        steps = sorted(consumed)
        ratios = [
            (consumed[b] - consumed[a]) / (b - a) for a, b in zip(steps, steps[1:]) if b > a and consumed[b] > consumed[a]
        ]
        if ratios:
            gb = statistics.median(ratios)
            if gb >= 1 and abs(gb - round(gb)) < 1e-6:
                p.global_batch = int(round(gb))
                p.notes.append("global batch derived from the growth of consumed_samples per step")
