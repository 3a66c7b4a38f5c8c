"""What every log dialect shares: the summary record, number and unit parsing, line cleaning, timestamps.

Part of :mod:`mpg_cli.inputs.logs` (standard library and :mod:`mpg_cli.errors` only; nothing asserts).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass, field


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
