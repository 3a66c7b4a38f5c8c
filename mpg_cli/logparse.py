"""Read a (partial) training log and extract the measured steady-state throughput.

This backs ``mpg calibrate train.log``: a short real run of the job is used to
calibrate the estimate. Five log dialects are understood (``SUPPORTED_FORMATS``):

* ``megatron``   Megatron-LM (and Megatron-DeepSpeed) ``iteration N/M | ...`` lines.
* ``nemo``       NeMo 1.x Lightning progress bar (``train_step_timing in s=...``)
                 and NeMo 2.x ``Training epoch 0, iteration N/M | ...`` lines.
* ``torchtitan`` ``step: N  loss: ...  memory: ...GiB(..%)  tps: ...  tflops: ...  mfu: ..%``
                 (older versions: ``wps:`` and ANSI colour codes).
* ``hf-trainer`` Hugging Face Trainer: the final ``{'train_runtime': ...}`` summary, or,
                 for a run killed before it, tqdm's ``s/it`` rate.
* ``deepspeed``  DeepSpeed ThroughputTimer ``CurrSamplesPerSec=`` lines, plus the
                 ``train_batch_size`` config line and the flops profiler summary.

Warm-up: by default the first ``max(2, 10% of records)`` records are skipped, then
any leading records whose cost (step time, or inverse throughput) is more than
1.5x the median of the records after the counted skip. An explicit ``warmup=N``
skips exactly N records and nothing more. The medians of the remaining records
are reported; fewer than 3 remaining records is an error.

Only the standard library and :mod:`mpg_cli.errors` are used. Nothing here asserts;
every failure is a :class:`~mpg_cli.errors.LogFormatError` (or ``InputError`` for a
bad ``warmup``/``fmt`` argument).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import statistics
from dataclasses import dataclass, field
from typing import Callable

from mpg_cli.errors import InputError, LogFormatError, did_you_mean
from mpg_cli.inputs.megatron_args import log_argument, log_layout

__all__ = ["LogSummary", "SUPPORTED_FORMATS", "detect_format", "parse_log"]

SUPPORTED_FORMATS: tuple[str, ...] = ("megatron", "nemo", "torchtitan", "hf-trainer", "deepspeed")

_ALIASES = {
    "megatron-lm": "megatron",
    "megatron-deepspeed": "megatron",
    "nemo2": "nemo",
    "lightning": "nemo",
    "titan": "torchtitan",
    "hf": "hf-trainer",
    "huggingface": "hf-trainer",
    "transformers": "hf-trainer",
    "trainer": "hf-trainer",
    "ds": "deepspeed",
}

_MIN_STEADY = 3
MAX_LINE = 8192  # characters kept of one log line: a Megatron/NeMo/torchtitan record is under 1,000
_WARMUP_RATIO = 1.5


@dataclass(frozen=True)
class LogSummary:
    """What a training log says about steady-state throughput."""

    format: str  # one of SUPPORTED_FORMATS
    steps_total: int  # throughput records found
    steps_used: int  # records in the steady state that the medians used
    warmup_skipped: int
    step_time_s: float | None  # median seconds per iteration (optimizer step)
    tokens_per_second: float | None  # whole job
    tokens_per_second_per_gpu: float | None
    samples_per_second: float | None  # whole job
    tflops_per_gpu: float | None  # as the log reports it; the convention is in `notes`
    mfu: float | None  # fraction 0-1
    global_batch: int | None  # sequences per iteration
    seq_length: int | None
    peak_memory_bytes: float | None
    notes: tuple[str, ...]
    world_size: int | None = None  # GPUs, when the log prints it
    layout: tuple[tuple[str, int], ...] = ()  # ('tp', 8), ('pp', 2), ('micro_batch', 1)… from the run's arguments


# --------------------------------------------------------------------------- helpers

_NUM = r"[-+]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"

_ANSI = re.compile(
    r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]"
    r"|\x1b\[?[0-9;?]*$",  # an escape cut off at the end of a line
    re.M,
)
# Colour codes whose ESC byte was lost on the way into the file ("[31mstep: 1").
_BARE_SGR = re.compile(r"\[(?:\d{1,3};)*\d{1,3}m")
_NEWLINES = re.compile(r"\r\n|\r|\n")

_UNIT_BYTES = {
    "B": 1.0,
    "KB": 1e3,
    "MB": 1e6,
    "GB": 1e9,
    "TB": 1e12,
    "KIB": 2.0**10,
    "MIB": 2.0**20,
    "GIB": 2.0**30,
    "TIB": 2.0**40,
}


def _num(text: str | None) -> float | None:
    """Parse a number as logs print it ('3,456', '1.5E-04'); None if not a finite number."""
    if text is None:
        return None
    try:
        value = float(text.replace(",", "").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _int(text: str | None) -> int | None:
    value = _num(text)
    if value is None or value < 0 or abs(value - round(value)) > 1e-6:
        return None
    return int(round(value))


def _to_bytes(value: float, unit: str, *, binary: bool = False) -> float | None:
    """Convert ``value unit`` to bytes. ``binary`` treats KB/MB/GB/TB as powers of 1024,
    which is what frameworks that divide by 1024**k and print 'MB'/'GB' mean."""
    key = unit.strip().upper()
    if binary and key in ("KB", "MB", "GB", "TB"):
        key = key[0] + "IB"
    factor = _UNIT_BYTES.get(key)
    return None if factor is None else value * factor


def _clean(text: str) -> tuple[list[str], bool]:
    """Strip ANSI codes, split on any newline (incl. tqdm's '\\r').

    Returns the lines and whether the text ended with a line terminator.
    """
    text = text.lstrip("\ufeff")
    terminated = text.endswith(("\n", "\r"))
    lines = _NEWLINES.split(text)
    if terminated:
        lines.pop()  # the empty piece after the final terminator
    # per line, cut at MAX_LINE characters first: every pattern then runs on bounded input (linear time)
    return [_BARE_SGR.sub("", _ANSI.sub("", line[:MAX_LINE])) for line in lines], terminated


def _looks_binary(text: str) -> bool:
    sample = text[:65536]
    if not sample:
        return False
    bad = sum(1 for c in sample if c in "\x00\ufffd" or (ord(c) < 32 and c not in "\t\n\r\x1b\x0b\x0c\x08"))
    return bad / len(sample) > 0.05


_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:[,.](\d{1,6}))?")


def _timestamp(line: str) -> _dt.datetime | None:
    m = _TIMESTAMP.search(line)
    if not m:
        return None
    try:
        when = _dt.datetime.fromisoformat(f"{m.group(1)} {m.group(2)}")
    except ValueError:
        return None
    frac = m.group(3)
    if frac:
        when = when.replace(microsecond=int(frac.ljust(6, "0")))
    return when


@dataclass
class _Record:
    """One throughput measurement (one logged iteration or log interval)."""

    step: int | None = None
    step_time_s: float | None = None
    tokens_per_second: float | None = None
    tokens_per_second_per_gpu: float | None = None
    samples_per_second: float | None = None
    tflops_per_gpu: float | None = None
    mfu: float | None = None
    memory_bytes: float | None = None
    global_batch: int | None = None
    seq_length: int | None = None


@dataclass
class _Parsed:
    """What a format parser found; summarised by :func:`_summarise`."""

    records: list[_Record] = field(default_factory=list)
    cost_field: str = "step_time_s"  # the per-record value warm-up detection compares
    global_batch: int | None = None
    seq_length: int | None = None
    world_size: int | None = None
    layout: dict[str, int] = field(default_factory=dict)  # parallel layout from the run's arguments, if printed
    peak_memory_bytes: float | None = None  # memory reports not tied to one record
    tflops_single: float | None = None  # a one-off TFLOP/s figure (DeepSpeed profiler)
    tflops_single_step: int | None = None
    whole_run: bool = False  # a single whole-run average (HF summary): no warm-up logic
    notes: list[str] = field(default_factory=list)
    expected: str = ""  # what a record line looks like, for the no-records error


def _set_once(current, value):
    return current if current is not None else value


# --------------------------------------------------------------------------- Megatron-LM

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
            p.records.append(rec)
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
    return p


# --------------------------------------------------------------------------- NeMo

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
            st = _num(fields.get("train_step_timing in s"))
            if st is None:
                continue
            rec = _Record(step_time_s=st)
            gs = _num(fields.get("global_step"))
            if gs is not None:
                rec.step = int(gs)
            else:
                m = _NEMO_ITER.search(line) or _TQDM_COUNT.search(line)
                if m:
                    rec.step = int(m.group(1))
            rec.tflops_per_gpu = _num(fields.get("TFLOPS_per_GPU"))
            seen_tflops = seen_tflops or rec.tflops_per_gpu is not None
            rec.global_batch = _int(fields.get("global_batch_size"))
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
    if seen_tflops:
        p.notes.append("TFLOP/s per GPU: NeMo's TFLOPS_per_GPU (FLOPsMeasurementCallback, analytic model FLOPs)")
    return p


# --------------------------------------------------------------------------- torchtitan

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
            step = int(_TT_STEP.search(line).group(1))
            rec = _Record(step=step)
            m = _TT_TPS.search(line)
            if m:
                rec.tokens_per_second_per_gpu = _num(m.group(2))
                counter = counter or m.group(1)
            m = _TT_TFLOPS.search(line)
            if m:
                rec.tflops_per_gpu = _num(m.group(1))
                seen_tflops = seen_tflops or rec.tflops_per_gpu is not None
            m = _TT_MFU.search(line)
            if m:
                pct = _num(m.group(1))
                rec.mfu = pct / 100.0 if pct is not None else None
            m = _TT_MEM.search(line)
            if m:
                value = _num(m.group(1))
                rec.memory_bytes = _to_bytes(value, m.group(2)) if value is not None else None
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
            names = [n.strip().strip("'\"") for n in m.group(1).split(",") if n.strip()]
            dims = [int(d) for d in m.group(2).replace(",", " ").split()]
            if dims:
                p.world_size = math.prod(dims)
                if len(names) == len(dims):
                    mesh_dp = math.prod(d for n, d in zip(names, dims) if n.startswith("dp"))
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
    return p


# --------------------------------------------------------------------------- Hugging Face Trainer

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
    summaries: list[dict[str, float]] = []
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


# --------------------------------------------------------------------------- DeepSpeed

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


# --------------------------------------------------------------------------- format table


@dataclass(frozen=True)
class _Spec:
    strong: re.Pattern  # throughput records of this format are present
    weak: re.Pattern  # the framework's fingerprints (no records needed)
    marker: re.Pattern  # a line that would carry a record
    complete: re.Pattern  # an unterminated final marker line that matches is whole
    parse: Callable[[list[str]], _Parsed]


_SPECS: dict[str, _Spec] = {
    "megatron": _Spec(
        strong=re.compile(r"\biteration\s+\d+\s*/\s*\d+\s*\|.*\belapsed time per iteration", re.M),
        weak=re.compile(r"-{5,} arguments -{5,}|using world size: \d+, data-parallel size|\bvalidation loss at iteration\b", re.M),
        marker=re.compile(r"\biteration\s+\d+\s*/"),
        complete=re.compile(r"\|\s*$"),
        parse=_parse_megatron,
    ),
    "nemo": _Spec(
        strong=re.compile(r"train_step_timing in s\s*[=:]\s*\d"),
        weak=re.compile(r"^\[NeMo [IWEDC] |\bnemo_logging\b", re.M),
        marker=re.compile(r"train_step_timing|^Epoch \d+:|^Training epoch \d+"),
        complete=re.compile(r"\]\s*$"),
        parse=_parse_nemo,
    ),
    "torchtitan": _Spec(
        strong=re.compile(r"\bstep:\s*\d+\s+loss:.*\b[tw]ps:\s*\d", re.M),
        weak=re.compile(r"\[titan\]|\btorchtitan\b|\bstep:\s*\d+\s+loss:"),
        marker=re.compile(r"\bstep:\s*\d+"),
        complete=re.compile(r"\bmfu:\s*" + _NUM + r"\s*%\s*$"),
        parse=_parse_torchtitan,
    ),
    "hf-trainer": _Spec(
        strong=re.compile(r"['\"]train_runtime['\"]\s*:"),
        weak=re.compile(r"\*{5} Running training \*{5}|\[(?:INFO|WARNING)\|trainer\.py:\d+\]"),
        marker=re.compile(r"^\s*\{|\d+/\d+\s*\["),
        complete=re.compile(r"[\]}]\s*$"),
        parse=_parse_hf,
    ),
    "deepspeed": _Spec(
        strong=re.compile(r"\bCurrSamplesPerSec=\s*\d"),
        weak=re.compile(
            r"\[logging\.py:\d+:log_dist\]|\bDeepSpeed info: version=|\[config\.py:\d+:print\]|\bstep=\d+, skipped=\d+"
        ),
        marker=re.compile(r"\bCurrSamplesPerSec="),
        complete=re.compile(r"[KMGT]i?B\s*$"),
        parse=_parse_deepspeed,
    ),
}

# Which format wins when several match: records beat fingerprints; Megatron-DeepSpeed is
# 'megatron'; an HF Trainer run under DeepSpeed with per-step timer lines is 'deepspeed'.
_STRONG_ORDER = ("megatron", "nemo", "torchtitan", "deepspeed", "hf-trainer")
_WEAK_ORDER = ("nemo", "torchtitan", "hf-trainer", "deepspeed", "megatron")


def _formats_list() -> str:
    return ", ".join(SUPPORTED_FORMATS)


def _detect(clean_text: str) -> tuple[str | None, list[str]]:
    """Return (format or None, other formats whose records are also present)."""
    strong = [f for f in _STRONG_ORDER if _SPECS[f].strong.search(clean_text)]
    if strong:
        return strong[0], strong[1:]
    for f in _WEAK_ORDER:
        if _SPECS[f].weak.search(clean_text):
            return f, []
    return None, []


def detect_format(text: str) -> str:
    """Return which of ``SUPPORTED_FORMATS`` wrote ``text``; LogFormatError if none did."""
    lines, _ = _clean(text)
    fmt, _ = _detect("\n".join(lines))
    if fmt is None:
        raise LogFormatError(
            f"unrecognised training log format; supported formats: {_formats_list()}",
            hint="pass the format explicitly if the log is one of these with unusual formatting",
        )
    return fmt


def _normalise_fmt(fmt: str) -> str:
    key = str(fmt).strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in SUPPORTED_FORMATS:
        raise InputError(
            f"unknown log format {fmt!r}; supported formats: {_formats_list()}",
            hint=did_you_mean(key, SUPPORTED_FORMATS),
        )
    return key


# --------------------------------------------------------------------------- summary


def _cost(rec: _Record, cost_field: str) -> float | None:
    """Bigger is slower: step time, or 1/throughput."""
    value = getattr(rec, cost_field)
    if value is None or value <= 0:
        return None
    return value if cost_field == "step_time_s" else 1.0 / value


def _median(values) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def _derive(rec: _Record, p: _Parsed, how: set[str]) -> None:
    """Fill per-record values that follow from what the log printed."""
    gb = rec.global_batch if rec.global_batch is not None else p.global_batch
    seq = rec.seq_length if rec.seq_length is not None else p.seq_length
    world = p.world_size
    if rec.step_time_s is None and gb and rec.samples_per_second:
        rec.step_time_s = gb / rec.samples_per_second
        how.add("step time = global batch / samples/s")
    if rec.tokens_per_second is None and rec.tokens_per_second_per_gpu is not None and world:
        rec.tokens_per_second = rec.tokens_per_second_per_gpu * world
        how.add(f"tokens/s = per-GPU tokens/s x {world} GPUs")
    if rec.tokens_per_second is None and gb and seq and rec.step_time_s:
        rec.tokens_per_second = gb * seq / rec.step_time_s
        how.add("tokens/s = global batch x seq length / step time")
    if rec.samples_per_second is None and gb and rec.step_time_s:
        rec.samples_per_second = gb / rec.step_time_s
        how.add("samples/s = global batch / step time")
    if rec.tokens_per_second_per_gpu is None and rec.tokens_per_second is not None and world:
        rec.tokens_per_second_per_gpu = rec.tokens_per_second / world
        how.add(f"per-GPU tokens/s = tokens/s / {world} GPUs (world size from the log)")


def _summarise(fmt: str, p: _Parsed, source: str, warmup: int | None, notes: list[str]) -> LogSummary:
    notes.extend(p.notes)
    if not p.records:
        raise LogFormatError(
            f"{source}: looks like a {fmt} log but has no throughput records "
            f"(expected {p.expected}); supported formats: {_formats_list()}",
            hint="log at least a few dozen training steps with timing enabled, or pass the right format",
        )
    how: set[str] = set()
    for rec in p.records:
        _derive(rec, p, how)
    total = len(p.records)
    records = [r for r in p.records if _cost(r, p.cost_field) is not None]
    if len(records) < total:
        notes.append(f"{total - len(records)} record(s) without a usable {p.cost_field} ignored")

    if p.whole_run:
        skipped = 0
        if warmup:
            notes.append("warm-up setting ignored: the log only has a whole-run average")
    else:
        costs = [_cost(r, p.cost_field) for r in records]
        n = len(records)
        if warmup is not None:
            skipped = min(warmup, n)
        else:
            skipped = min(max(2, n // 10), n)
            rest = costs[skipped:]
            if rest:
                limit = _WARMUP_RATIO * statistics.median(rest)
                counted = skipped
                while skipped < n and costs[skipped] > limit:
                    skipped += 1
                if skipped > counted:
                    notes.append(
                        f"skipped {skipped - counted} more leading record(s) slower than "
                        f"{_WARMUP_RATIO}x the median of the rest"
                    )
        used_n = n - skipped
        if used_n < _MIN_STEADY:
            raise LogFormatError(
                f"{source}: only {used_n} steady-state iterations (of {total} throughput records, "
                f"{skipped} skipped as warm-up); run longer or lower --warmup",
                hint=f"at least {_MIN_STEADY} records after warm-up are needed",
            )
    used = records[skipped:]

    step_time = _median(r.step_time_s for r in used)
    tps = _median(r.tokens_per_second for r in used)
    tps_gpu = _median(r.tokens_per_second_per_gpu for r in used)
    sps = _median(r.samples_per_second for r in used)
    tflops = _median(r.tflops_per_gpu for r in used)
    mfu = _median(r.mfu for r in used)
    if tflops is None and p.tflops_single is not None:
        tflops = p.tflops_single
    mems = [r.memory_bytes for r in used if r.memory_bytes is not None]
    peak = max(mems) if mems else p.peak_memory_bytes

    gbs = [r.global_batch for r in used if r.global_batch is not None]
    global_batch = gbs[-1] if gbs else p.global_batch
    if len(set(gbs)) > 1:
        notes.append(f"global batch changed within the used records ({min(gbs)}..{max(gbs)}); reported the last")
    seqs = [r.seq_length for r in used if r.seq_length is not None]
    seq_length = seqs[-1] if seqs else p.seq_length

    for text in sorted(how):
        notes.append(f"derived: {text}")
    if step_time is None and fmt != "deepspeed":
        notes.append("step time not found in the log")
    if tps is None:
        notes.append("whole-job tokens/s unknown (needs global batch and seq length, or per-GPU tokens/s and GPU count)")
    if warmup is not None and not p.whole_run:
        notes.append(f"warm-up: skipped exactly {skipped} record(s) as requested")

    return LogSummary(
        format=fmt,
        steps_total=total,
        steps_used=len(used),
        warmup_skipped=skipped,
        step_time_s=step_time,
        tokens_per_second=tps,
        tokens_per_second_per_gpu=tps_gpu,
        samples_per_second=sps,
        tflops_per_gpu=tflops,
        mfu=mfu,
        global_batch=global_batch,
        seq_length=seq_length,
        peak_memory_bytes=peak,
        notes=tuple(notes),
        world_size=p.world_size,
        layout=tuple(sorted(p.layout.items())),
    )


def parse_log(text: str, source: str, *, warmup: int | None = None, fmt: str | None = None,
              notes: tuple[str, ...] = ()) -> LogSummary:
    """Parse a training log's text; ``source`` names it in messages (usually the path).

    ``warmup`` skips exactly that many leading throughput records instead of the
    automatic rule; ``fmt`` forces one of ``SUPPORTED_FORMATS`` instead of detecting it.
    """
    if warmup is not None and (isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0):
        raise InputError(f"warm-up must be a whole number >= 0, got {warmup!r}")
    forced = _normalise_fmt(fmt) if fmt is not None else None
    if not isinstance(text, str):
        raise LogFormatError(f"{source}: expected decoded text, got {type(text).__name__}")
    if not text.lstrip("\ufeff").strip():
        raise LogFormatError(
            f"{source}: the log is empty; supported formats: {_formats_list()}",
            hint="point calibrate at the stdout/stderr of a training run that got past a few dozen steps",
        )
    if _looks_binary(text):
        raise LogFormatError(
            f"{source}: looks like a binary file, not a text training log; supported formats: {_formats_list()}"
        )
    lines, terminated = _clean(text)
    extra_notes = list(notes)
    notes: list[str] = extra_notes  # type: ignore[no-redef]
    if forced is None:
        found, others = _detect("\n".join(lines))
        if found is None:
            raise LogFormatError(
                f"{source}: no training throughput records found in a recognised format; "
                f"supported formats: {_formats_list()}",
                hint="if the log is one of these, pass its format explicitly",
            )
        fmt_name = found
        if others:
            notes.append(f"also found {', '.join(others)} records; used {fmt_name} (pass the format to choose)")
    else:
        fmt_name = forced
    spec = _SPECS[fmt_name]
    if not terminated and lines and spec.marker.search(lines[-1]) and not spec.complete.search(lines[-1]):
        lines = lines[:-1]
        notes.append("ignored the last line: it is cut off (a partial record, no line end)")
    return _summarise(fmt_name, spec.parse(lines), source, warmup, notes)
