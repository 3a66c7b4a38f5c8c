"""Parse the human-friendly values flags accept: token counts, GPU lists, percentages."""

from __future__ import annotations

import math
import re

from .errors import InputError

_SUFFIX = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12, "P": 1e15}
_NUMBER = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBgGtTpP]?)\s*$")
_THOUSANDS = re.compile(r"^\s*\d{1,3}(,\d{3})+(\.\d+)?\s*[kKmMbBgGtTpP]?\s*$")


def parse_count(text: str, flag: str) -> float:
    """'300e9', '300B', '1.4T', '15t', '2048' -> float; anything else is an InputError naming the flag."""
    raw = str(text).replace("_", "")
    if "," in raw:
        if not _THOUSANDS.match(raw):  # '1,4T' is a decimal comma, not 14T
            raise InputError(f"{flag}: cannot read {text!r}: use '.' for decimals (commas only group thousands)",
                             hint=f"write e.g. {flag} 1.4T")
        raw = raw.replace(",", "")
    m = _NUMBER.match(raw)
    if not m:
        raise InputError(f"{flag}: cannot read {text!r} as a count",
                         hint=f"write e.g. {flag} 300B, {flag} 1.4T or {flag} 3e11")
    value = float(m.group(1)) * _SUFFIX[m.group(2).upper()]
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{flag}: must be a positive finite number, got {text!r}")
    if value > 1e18:
        raise InputError(f"{flag}: {text!r} is implausibly large (more than 1e18)")
    return value


def parse_tokens(text: str | None) -> tuple[float | None, str]:
    """--tokens: a count, or 'chinchilla' (20 per parameter). Returns (tokens or None, source)."""
    if text is None:
        return None, "default"
    if str(text).strip().lower() in ("chinchilla", "compute-optimal"):
        return None, "chinchilla"
    return parse_count(text, "--tokens"), "given"


def parse_gpus(text: str | None) -> list[int]:
    """--gpus: '1024' or a list '64,128,256'."""
    if text is None:
        return []
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = parse_count(part, "--gpus")
        except InputError:
            raise InputError(f"--gpus: cannot read {part!r} as a GPU count",
                             hint="write a whole number such as --gpus 1024 (or a list: --gpus 64,128,256)") from None
        if not value.is_integer():
            raise InputError(f"--gpus: {part!r} is not a whole number of GPUs")
        if value > 10_000_000:
            raise InputError(f"--gpus: {part!r} is more GPUs than any cluster has")
        out.append(int(value))
    if not out:
        raise InputError("--gpus: no GPU count given", hint="write e.g. --gpus 1024 or --gpus 64,128,256")
    return out


def check_positive(value: float | None, flag: str, *, maximum: float | None = None, allow_zero: bool = False) -> None:
    """Reject NaN, infinities, zero/negative values (and values above ``maximum``) for a float flag."""
    if value is None:
        return
    if not math.isfinite(value):
        raise InputError(f"{flag}: must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise InputError(f"{flag}: must be greater than 0, got {value:g}")
    if maximum is not None and value > maximum:
        raise InputError(f"{flag}: must be at most {maximum:g}, got {value:g}")


def parse_percent(text: str, flag: str, *, strict: bool = False) -> float:
    """'10%' or '0.1' -> 0.1. With ``strict``, a bare number above 1 ('10') is refused as ambiguous
    (10 % or 1,000 %?): write '10%' or '0.10'."""
    s = str(text).strip()
    try:
        value = float(s[:-1]) / 100.0 if s.endswith("%") else float(s)
    except ValueError:
        raise InputError(f"{flag}: cannot read {text!r} as a percentage", hint=f"write e.g. {flag} 10%") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{flag}: must be a finite, non-negative percentage, got {text!r}")
    if strict and not s.endswith("%") and value > 1:
        raise InputError(f"{flag} {s}: ambiguous (a fraction above 1 means more than 100%)",
                         hint=f"write {flag} {s}% for {s} percent, or {flag} {value / 100:g} as a fraction")
    return value
