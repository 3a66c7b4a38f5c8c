"""The table of log dialects: how each is recognised, parsed and told apart (detection order).

Part of :mod:`mpg_cli.inputs.logs` (standard library and :mod:`mpg_cli.errors` only; nothing asserts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from mpg_cli.errors import InputError, LogFormatError, did_you_mean
from .base import SUPPORTED_FORMATS, _ALIASES, _NUM, _Parsed, _clean
from .deepspeed import _parse_deepspeed
from .hf_trainer import _parse_hf
from .megatron import _parse_megatron
from .nemo import _parse_nemo
from .torchtitan import _parse_torchtitan

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
