"""Hugging Face Trainer: the final ``{'train_runtime': ...}`` summary, or tqdm's ``s/it`` rate for a run killed before it.

Part of :mod:`mpg_cli.inputs.logs` (standard library and :mod:`mpg_cli.errors` only; nothing asserts).
"""

from __future__ import annotations

import re

from .base import _NUM, _Parsed, _Record, _int, _num

_HF_DICT = re.compile(r"\{[^{}]*\}")
_HF_PAIR = re.compile(r"['\"](\w+)['\"]\s*:\s*(" + _NUM + r"|nan|inf)")
_HF_TOTAL_BATCH = re.compile(r"Total train batch size \(w\. parallel, distributed & accumulation\)\s*=\s*([\d,]+)")
_HF_TOTAL_STEPS = re.compile(r"Total optimization steps\s*=\s*([\d,]+)")
_TQDM_RATE = re.compile(r"(?<![\d/])(\d+)/(\d+)\s*\[[\d:]+<[\d:?]+,\s*(" + _NUM + r")\s*(s/it|it/s)")
_GENERIC_SEQ = re.compile(
    r"\b(seq_length|seq_len|max_seq_len|max_seq_length|sequence_length)\b[\"']?\s*(?:\.{2,}|[:=])\s*(\d+)"
)


def _generic_seq_length(lines: list[str], p: _Parsed) -> None:
    for line in lines:
        m = _GENERIC_SEQ.search(line)
        if m:
            p.seq_length = int(m.group(2))
            p.notes.append(
                f"seq length {p.seq_length} taken from '{m.group(1)}' in the log; token counts assume "
                "every sample is that long (packed)"
            )
            return


def _parse_hf(lines: list[str]) -> _Parsed:
    p = _Parsed(expected="the final \"{'train_runtime': ..., 'train_steps_per_second': ...}\" summary or tqdm 'N/M [..<.., X s/it]' bars")
    summaries: list[dict[str, float | None]] = []
    loss_records = 0
    total_steps = None
    bars: dict[int, dict[int, float]] = {}
    for line in lines:
        m = _HF_TOTAL_BATCH.search(line)
        if m:
            p.global_batch = _int(m.group(1))
        m = _HF_TOTAL_STEPS.search(line)
        if m:
            total_steps = _int(m.group(1))
        for d in _HF_DICT.findall(line):
            pairs = {k: _num(v) for k, v in _HF_PAIR.findall(d)}
            if "train_runtime" in pairs:
                summaries.append(pairs)
            elif "loss" in pairs:
                loss_records += 1
        for n, total, rate, unit in _TQDM_RATE.findall(line):
            value = _num(rate)
            if value and value > 0:
                bars.setdefault(int(total), {})[int(n)] = value if unit == "s/it" else 1.0 / value
    _generic_seq_length(lines, p)
    if summaries:
        s = summaries[-1]
        if len(summaries) > 1:
            p.notes.append(f"{len(summaries)} train summaries in the log; used the last")
        p.whole_run = True
        rec = _Record()
        runtime, sps = s.get("train_runtime"), s.get("train_steps_per_second")
        if runtime and total_steps and sps and abs(total_steps / runtime - sps) <= 6e-4:
            rec.step_time_s = runtime / total_steps  # same quantity, without the 3-decimal rounding
        elif sps:
            rec.step_time_s = 1.0 / sps
        rec.samples_per_second = s.get("train_samples_per_second")
        rec.tokens_per_second_per_gpu = s.get("train_tokens_per_second")
        p.records.append(rec)
        p.notes.append(
            "HF Trainer prints throughput only as a whole-run average (train_runtime includes warm-up, "
            f"evaluation and checkpointing); {loss_records} per-step loss record(s) carry no timing"
        )
        if rec.tokens_per_second_per_gpu is not None:
            p.notes.append("per-GPU tokens/s from train_tokens_per_second (counted per device by the Trainer)")
        return p
    # No summary (run killed early): fall back to tqdm's rate on the training bar.
    if bars:
        total = total_steps if total_steps in bars else max(bars, key=lambda t: len(bars[t]))
        for n in sorted(bars[total]):
            p.records.append(_Record(step=n, step_time_s=bars[total][n]))
        p.notes.append(
            "no final train summary (run stopped early?): step time from tqdm's s/it on the training bar, "
            "an exponential moving average that lags changes"
        )
    return p
