"""Typed, validated access to the keys of one Hugging Face ``config.json``, and the readers every family shares.

Errors are ``PresetError``s naming the file and the key (``mpg_cli.errors``); only the standard library is used.
"""

from __future__ import annotations

from typing import Any

from mpg_cli.errors import PresetError

_MISSING = object()


class Reader:
    """Typed, validated access to the keys of one config.json."""

    def __init__(self, raw: dict, source: str) -> None:
        self.raw = raw
        self.source = source

    def fail(self, key: str, message: str, hint: str | None = None) -> PresetError:
        return PresetError(f"{self.source}: {key}: {message}", hint=hint)

    def _lookup(self, keys: tuple[str, ...]) -> tuple[str, Any]:
        """Return (key, value) for the first of ``keys`` present and not null."""
        for key in keys:
            value = self.raw.get(key, None)
            if value is not None:
                return key, value
        return keys[0], _MISSING

    def get_int(self, *keys: str, default: Any = _MISSING, minimum: int = 1) -> int:
        """Read an integer >= ``minimum`` from the first present key (aliases allowed)."""
        key, value = self._lookup(keys)
        if value is _MISSING:
            if default is _MISSING:
                raise self._missing(keys)
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(
                key,
                f"expected an integer, got {value!r} ({type(value).__name__})",
                hint=f"set {key!r} to a whole number in config.json",
            )
        if value < minimum:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise self.fail(
                key,
                f"expected {what}, got {value!r}",
                hint=f"set {key!r} to {what} in config.json",
            )
        return value

    def get_bool(self, key: str, default: bool) -> bool:
        """Read a boolean; absent or null gives ``default``."""
        _, value = self._lookup((key,))
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            raise self.fail(
                key,
                f"expected true or false, got {value!r} ({type(value).__name__})",
                hint=f"set {key!r} to true or false in config.json",
            )
        return value

    def _missing(self, keys: tuple[str, ...]) -> PresetError:
        alias = f" (or {', '.join(repr(k) for k in keys[1:])})" if len(keys) > 1 else ""
        return self.fail(
            keys[0],
            "missing key in config.json",
            hint=f"add {keys[0]!r}{alias} to the config, or write an mpg model preset by hand",
        )


def read_heads(r: Reader, layers_key: tuple[str, ...], heads_key: tuple[str, ...],
           hidden_key: tuple[str, ...], kv_key: tuple[str, ...] | None) -> dict:
    layers = r.get_int(*layers_key)
    hidden = r.get_int(*hidden_key)
    heads = r.get_int(*heads_key)
    kv_heads = r.get_int(*kv_key, default=heads) if kv_key else heads
    return {"layers": layers, "hidden_size": hidden, "heads": heads, "kv_heads": kv_heads}


def check_kv_heads(r: Reader, out: dict, kv_key: str) -> None:
    if out["heads"] % out["kv_heads"]:
        raise r.fail(
            kv_key,
            f"{out['kv_heads']} key/value heads do not divide {out['heads']} attention heads",
            hint="num_attention_heads must be a multiple of the key/value head count",
        )


def read_head_dim(r: Reader, out: dict, heads_key: str) -> None:
    """Add ``head_dim`` when the config gives it; otherwise require hidden % heads == 0."""
    explicit = r.get_int("head_dim", default=None)
    if explicit is not None:
        out["head_dim"] = explicit
        return
    if out["hidden_size"] % out["heads"]:
        raise r.fail(
            heads_key,
            f"hidden_size {out['hidden_size']} is not divisible by {out['heads']} heads",
            hint="add an explicit 'head_dim' to config.json",
        )


def read_seq(r: Reader, out: dict) -> None:
    """Sequence length = the pre-training context; say where it came from."""
    maxpos = r.get_int("max_position_embeddings")
    scaling = r.raw.get("rope_scaling")
    if isinstance(scaling, dict) and scaling:
        kind = scaling.get("rope_type", scaling.get("type", "?"))
        for where, d in (("rope_scaling.original_max_position_embeddings", scaling),
                         ("original_max_position_embeddings", r.raw)):
            orig = d.get("original_max_position_embeddings")
            if isinstance(orig, int) and not isinstance(orig, bool) and orig > 0:
                out["seq_length"] = orig
                out["seq_length_source"] = (f"{where} {orig:,} (the pre-training context; max_position_embeddings "
                                            f"{maxpos:,} is extended by {kind} RoPE scaling)")
                return
        out["seq_length"] = maxpos
        out["seq_length_source"] = (f"max_position_embeddings {maxpos:,}; rope_scaling ({kind}) gives no "
                                    "original_max_position_embeddings, so this may be a RoPE-extended context: "
                                    "set --seq-length to the pre-training one")
        return
    out["seq_length"] = maxpos
    out["seq_length_source"] = f"max_position_embeddings {maxpos:,}"


def check_top_k(r: Reader, moe: dict, key: str) -> None:
    if moe["top_k"] > moe["experts"]:
        raise r.fail(
            key,
            f"top_k {moe['top_k']} exceeds the {moe['experts']} experts",
            hint="num_experts_per_tok must be at most the number of experts",
        )
