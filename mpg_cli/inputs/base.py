"""What a training-config reader returns, and the helpers every reader shares.

A reader turns one file into a :class:`TrainConfig`: plain, frozen data (model shape, layout,
batch, precision, tokens, GPU count) plus provenance records that say, for each value, which key
of the file it came from, which framework default was applied because the file left it out,
which keys were ignored, and which mappings are approximations. The CLI merges it with the flags
(``mpg_cli.inputs.merge``). Bad values raise :class:`~mpg_cli.errors.PresetError` naming the file
and the key. Only the standard library is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import PresetError

# The fields a reader may fill, in the order notes are shown; each maps to an estimate option.
LAYOUT_FIELDS = ("tp", "pp", "dp", "cp", "ep", "virtual_stages", "micro_batch", "zero", "recompute",
                 "sequence_parallel")
RUN_FIELDS = ("seq_length", "global_batch", "precision", "tokens", "gpus")
DEFERRED_FIELDS = ("batch_per_replica", "train_steps")
FIELDS = ("model", "model_ref") + RUN_FIELDS + LAYOUT_FIELDS + DEFERRED_FIELDS

LABELS = {
    "tp": "tp", "pp": "pp", "dp": "dp", "cp": "cp", "ep": "ep", "virtual_stages": "virtual stages",
    "micro_batch": "micro-batch", "zero": "ZeRO", "recompute": "recompute", "sequence_parallel": "sequence parallel",
    "seq_length": "sequence length", "global_batch": "global batch", "precision": "precision", "tokens": "tokens",
    "gpus": "GPUs", "batch_per_replica": "batch per data-parallel replica", "train_steps": "training steps",
    "model": "model", "model_ref": "model",
}


@dataclass(frozen=True)
class Note:
    """One provenance record: kind is 'from' (a value read), 'default' (a framework default applied),
    'ignored' (a key mpg does not use), 'approx' (an approximate mapping) or 'derived'."""

    kind: str
    text: str
    field: str = ""


@dataclass(frozen=True)
class TrainConfig:
    """What one training-config file says, in mpg's terms. None = the file does not say."""

    format: str
    source: str
    model: Optional[dict] = None  # an mpg model preset mapping (validated by presets.model_from_dict)
    model_ref: Optional[str] = None  # or a built-in preset name (torchtitan flavors)
    seq_length: Optional[int] = None
    global_batch: Optional[int] = None
    precision: Optional[str] = None
    tokens: Optional[float] = None
    gpus: Optional[int] = None
    tp: Optional[int] = None
    pp: Optional[int] = None
    dp: Optional[int] = None
    cp: Optional[int] = None
    ep: Optional[int] = None
    virtual_stages: Optional[int] = None
    micro_batch: Optional[int] = None
    zero: Optional[int] = None
    recompute: Optional[str] = None
    sequence_parallel: Optional[bool] = None
    batch_per_replica: Optional[int] = None  # sequences per data-parallel rank per step (global = this × dp)
    train_steps: Optional[int] = None  # optimizer steps (tokens = steps × global batch × sequence length)
    notes: tuple[Note, ...] = ()
    warnings: tuple[str, ...] = ()

    def values(self) -> dict[str, Any]:
        """The fields the file gives (not None)."""
        return {f: getattr(self, f) for f in FIELDS if getattr(self, f) is not None}

    def origin_of(self, name: str) -> str:
        """The 'from' note text for a field ('tp 8 from tensor_model_parallel_size'), or ''."""
        for n in self.notes:
            if n.field == name and n.kind in ("from", "default", "derived", "approx"):
                return n.text
        return ""


def show(value: Any) -> str:
    """A value as the notes print it: 1,536 for counts, 1.57e+12 for token totals."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


class Collector:
    """Builds a TrainConfig: typed reads that raise PresetError naming the file and key, and notes."""

    def __init__(self, fmt: str, source: str) -> None:
        self.fmt = fmt
        self.source = source
        self.values: dict[str, Any] = {}
        self.notes: list[Note] = []
        self.warnings: list[str] = []

    # ------------------------------------------------------------ errors and typed values
    def fail(self, key: str, message: str, hint: Optional[str] = None) -> PresetError:
        return PresetError(f"{self.source}: {key}: {message}", hint=hint)

    def integer(self, key: str, value: Any, minimum: int = 1) -> int:
        """A whole number >= minimum (a numeric string such as '8' is accepted: shell scripts are text)."""
        v = value
        if isinstance(v, str):
            try:
                v = float(v.strip()) if any(c in v for c in ".eE") else int(v.strip(), 10)
            except ValueError:
                raise self.fail(key, f"expected a whole number, got {value!r}") from None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and (
                not math.isfinite(v) or not v.is_integer())):
            raise self.fail(key, f"expected a whole number, got {value!r}")
        v = int(v)
        if v < minimum:
            raise self.fail(key, f"must be at least {minimum}, got {v}")
        if v > 10**15:
            raise self.fail(key, f"{v} is implausibly large")
        return v

    def number(self, key: str, value: Any) -> float:
        v = value
        if isinstance(v, str):
            try:
                v = float(v.strip())
            except ValueError:
                raise self.fail(key, f"expected a number, got {value!r}") from None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise self.fail(key, f"expected a positive number, got {value!r}")
        return float(v)

    def boolean(self, key: str, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.strip().lower() in ("true", "1", "yes")
        raise self.fail(key, f"expected true or false, got {value!r}")

    # ------------------------------------------------------------ recording
    def take(self, name: str, value: Any, key: str, text: Optional[str] = None) -> None:
        """A value read from ``key``; the note says so ('tp 8 from tensor_model_parallel_size')."""
        self.values[name] = value
        self.notes.append(Note("from", text or f"{LABELS[name]} {show(value)} from {key}", name))

    def default(self, name: str, value: Any, why: str) -> None:
        """A framework default applied because the file leaves the value out."""
        self.values[name] = value
        self.notes.append(Note("default", f"{LABELS[name]} {show(value)}: {why}", name))

    def derived(self, name: str, value: Any, text: str) -> None:
        self.values[name] = value
        self.notes.append(Note("derived", text, name))

    def approx(self, text: str, name: str = "") -> None:
        self.notes.append(Note("approx", text, name))

    def ignored(self, key: str, why: str) -> None:
        self.notes.append(Note("ignored", f"{key} ignored: {why}"))

    def warn(self, text: str) -> None:
        self.warnings.append(f"{self.source}: {text}")

    def unknown(self, keys: list[str], where: str = "") -> None:
        """Keys the reader does not know: one warning (they are not silently dropped)."""
        if keys:
            shown = ", ".join(keys[:12]) + (f" and {len(keys) - 12} more" if len(keys) > 12 else "")
            self.warn(f"unknown key(s){' in ' + where if where else ''}: {shown} (not used by mpg)")

    def build(self) -> TrainConfig:
        return TrainConfig(format=self.fmt, source=self.source, notes=tuple(self.notes),
                           warnings=tuple(self.warnings), **self.values)


def walk(d: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every leaf of a nested mapping ('model.n_layers')."""
    out: list[str] = []
    if isinstance(d, dict):
        for k, v in d.items():
            path = f"{prefix}{k}"
            if isinstance(v, dict) and v:
                out.extend(walk(v, path + "."))
            else:
                out.append(path)
    return out
