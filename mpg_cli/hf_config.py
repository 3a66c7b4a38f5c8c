"""Convert a local Hugging Face ``config.json`` into an mpg model preset dict.

Only the standard library is used: no ``transformers`` import and no network.
The caller parses the JSON file; :func:`convert_hf_config` maps the parsed
dict onto mpg's model preset schema and raises :class:`PresetError` (naming
the file and the offending key) for anything it cannot map.

Supported ``model_type`` families: llama, mistral, mixtral, qwen2, gpt2,
gpt_neox, falcon (also the old ``RefinedWebModel`` / ``RefinedWeb`` names),
deepseek_v2 and deepseek_v3.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any, Callable

from mpg_cli.errors import PresetError, did_you_mean

_MISSING = object()

_LLAMA_LIKE = ("llama", "mistral", "mixtral", "qwen2")
_FALCON = ("falcon", "RefinedWebModel", "RefinedWeb")
_DEEPSEEK = ("deepseek_v2", "deepseek_v3")
SUPPORTED_MODEL_TYPES: tuple[str, ...] = _LLAMA_LIKE + ("gpt2", "gpt_neox") + _FALCON + _DEEPSEEK


class _Reader:
    """Typed, validated access to the keys of one config.json."""

    def __init__(self, raw: dict, source: str) -> None:
        self.raw = raw
        self.source = source

    def _fail(self, key: str, message: str, hint: str | None = None) -> PresetError:
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
            raise self._fail(
                key,
                f"expected an integer, got {value!r} ({type(value).__name__})",
                hint=f"set {key!r} to a whole number in config.json",
            )
        if value < minimum:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise self._fail(
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
            raise self._fail(
                key,
                f"expected true or false, got {value!r} ({type(value).__name__})",
                hint=f"set {key!r} to true or false in config.json",
            )
        return value

    def _missing(self, keys: tuple[str, ...]) -> PresetError:
        alias = f" (or {', '.join(repr(k) for k in keys[1:])})" if len(keys) > 1 else ""
        return self._fail(
            keys[0],
            "missing key in config.json",
            hint=f"add {keys[0]!r}{alias} to the config, or write an mpg model preset by hand",
        )


def _name(raw: dict, source: str, model_type: str) -> str:
    """Model name: ``_name_or_path`` basename, else the file's dir (or stem), else model_type."""
    name_or_path = raw.get("_name_or_path")
    if isinstance(name_or_path, str):
        base = name_or_path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        if base:
            return base
    path = PurePath(source)
    if path.name == "config.json":
        parent = path.parent.name
        if not parent:
            try:
                parent = Path(source).absolute().parent.name
            except OSError:  # pragma: no cover - cwd vanished
                parent = ""
        if parent:
            return parent
    elif path.stem:
        # A config saved under its own name (e.g. ``llama3-8b.json``) names itself.
        return path.stem
    return model_type


def _heads(r: _Reader, layers_key: tuple[str, ...], heads_key: tuple[str, ...],
           hidden_key: tuple[str, ...], kv_key: tuple[str, ...] | None) -> dict:
    layers = r.get_int(*layers_key)
    hidden = r.get_int(*hidden_key)
    heads = r.get_int(*heads_key)
    kv_heads = r.get_int(*kv_key, default=heads) if kv_key else heads
    return {"layers": layers, "hidden_size": hidden, "heads": heads, "kv_heads": kv_heads}


def _check_kv_heads(r: _Reader, out: dict, kv_key: str) -> None:
    if out["heads"] % out["kv_heads"]:
        raise r._fail(
            kv_key,
            f"{out['kv_heads']} key/value heads do not divide {out['heads']} attention heads",
            hint="num_attention_heads must be a multiple of the key/value head count",
        )


def _head_dim(r: _Reader, out: dict, heads_key: str) -> None:
    """Add ``head_dim`` when the config gives it; otherwise require hidden % heads == 0."""
    explicit = r.get_int("head_dim", default=None)
    if explicit is not None:
        out["head_dim"] = explicit
        return
    if out["hidden_size"] % out["heads"]:
        raise r._fail(
            heads_key,
            f"hidden_size {out['hidden_size']} is not divisible by {out['heads']} heads",
            hint="add an explicit 'head_dim' to config.json",
        )


def _llama_like(r: _Reader, model_type: str) -> dict:
    out = _heads(r, ("num_hidden_layers",), ("num_attention_heads",), ("hidden_size",),
                 ("num_key_value_heads",))
    _check_kv_heads(r, out, "num_key_value_heads")
    _head_dim(r, out, "num_attention_heads")
    ffn = r.get_int("intermediate_size")
    out.update(
        ffn_hidden_size=ffn,
        ffn_type="swiglu",
        vocab_size=r.get_int("vocab_size"),
        seq_length=r.get_int("max_position_embeddings"),
        tied_embeddings=r.get_bool("tie_word_embeddings", False),
        position_embedding="rope",
        # qwen2 has biases on Q/K/V only: < 0.1% of the parameters, so report none.
        linear_biases=False,
        norm="rmsnorm",
    )
    if model_type == "mixtral":
        out["moe"] = {
            "experts": r.get_int("num_local_experts"),
            "top_k": r.get_int("num_experts_per_tok"),
            "expert_ffn_hidden_size": ffn,
        }
        _check_top_k(r, out["moe"], "num_experts_per_tok")
    return out


def _gpt2(r: _Reader, model_type: str) -> dict:
    out = _heads(r, ("n_layer",), ("n_head",), ("n_embd",), None)
    _head_dim(r, out, "n_head")
    out.update(
        ffn_hidden_size=r.get_int("n_inner", default=4 * out["hidden_size"]),
        ffn_type="gelu",
        vocab_size=r.get_int("vocab_size"),
        seq_length=r.get_int("n_positions", "n_ctx"),
        tied_embeddings=r.get_bool("tie_word_embeddings", True),
        position_embedding="learned",
        linear_biases=True,
        norm="layernorm",
    )
    return out


def _gpt_neox(r: _Reader, model_type: str) -> dict:
    out = _heads(r, ("num_hidden_layers",), ("num_attention_heads",), ("hidden_size",), None)
    _head_dim(r, out, "num_attention_heads")
    out.update(
        ffn_hidden_size=r.get_int("intermediate_size"),
        ffn_type="gelu",
        vocab_size=r.get_int("vocab_size"),
        seq_length=r.get_int("max_position_embeddings"),
        tied_embeddings=r.get_bool("tie_word_embeddings", False),
        position_embedding="rope",
        linear_biases=r.get_bool("attention_bias", True),
        norm="layernorm",
    )
    return out


def _falcon(r: _Reader, model_type: str) -> dict:
    layers = ("num_hidden_layers", "n_layer")
    heads_keys = ("num_attention_heads", "n_head")
    out = _heads(r, layers, heads_keys, ("hidden_size",), None)
    # The 40B-style "RefinedWeb" checkpoints always use the new decoder architecture.
    new_arch = r.get_bool("new_decoder_architecture", model_type == "RefinedWeb")
    if new_arch:
        out["kv_heads"] = r.get_int("num_kv_heads", "n_head_kv", default=out["heads"])
    elif r.get_bool("multi_query", True):
        out["kv_heads"] = 1
    _check_kv_heads(r, out, "num_kv_heads")
    _head_dim(r, out, "num_attention_heads")
    out.update(
        ffn_hidden_size=r.get_int("ffn_hidden_size", default=4 * out["hidden_size"]),
        ffn_type="gelu",
        vocab_size=r.get_int("vocab_size"),
        seq_length=r.get_int("max_position_embeddings", default=2048),
        tied_embeddings=r.get_bool("tie_word_embeddings", True),
        position_embedding="alibi" if r.get_bool("alibi", False) else "rope",
        linear_biases=r.get_bool("bias", False),
        norm="layernorm",
    )
    return out


def _deepseek(r: _Reader, model_type: str) -> dict:
    out = _heads(r, ("num_hidden_layers",), ("num_attention_heads",), ("hidden_size",),
                 ("num_key_value_heads",))
    _check_kv_heads(r, out, "num_key_value_heads")
    # MLA defines its own per-head dims (the mla block); no plain head_dim applies.
    out.update(
        ffn_hidden_size=r.get_int("intermediate_size"),
        ffn_type="swiglu",
        vocab_size=r.get_int("vocab_size"),
        seq_length=r.get_int("max_position_embeddings"),
        tied_embeddings=r.get_bool("tie_word_embeddings", False),
        position_embedding="rope",
        linear_biases=r.get_bool("attention_bias", False),
        norm="rmsnorm",
    )
    experts = r.get_int("n_routed_experts", default=None)
    if experts is not None:
        freq = r.get_int("moe_layer_freq", default=1)
        if freq != 1:
            raise r._fail(
                "moe_layer_freq",
                f"MoE on every {freq}th layer is not supported (only 1)",
                hint="write an mpg model preset by hand for this layout",
            )
        moe = {
            "experts": experts,
            "top_k": r.get_int("num_experts_per_tok"),
            "expert_ffn_hidden_size": r.get_int("moe_intermediate_size"),
        }
        _check_top_k(r, moe, "num_experts_per_tok")
        shared = r.get_int("n_shared_experts", default=0, minimum=0)
        if shared:
            moe["shared_experts"] = shared
        dense = r.get_int("first_k_dense_replace", default=0, minimum=0)
        if dense > out["layers"]:
            raise r._fail(
                "first_k_dense_replace",
                f"{dense} dense layers exceed num_hidden_layers {out['layers']}",
                hint="first_k_dense_replace must be at most num_hidden_layers",
            )
        if dense:
            moe["dense_layers"] = dense
        out["moe"] = moe
    out["mla"] = {
        "q_lora_rank": r.get_int("q_lora_rank", default=0, minimum=0),
        "kv_lora_rank": r.get_int("kv_lora_rank"),
        "qk_nope_head_dim": r.get_int("qk_nope_head_dim"),
        "qk_rope_head_dim": r.get_int("qk_rope_head_dim"),
        "v_head_dim": r.get_int("v_head_dim"),
    }
    return out


def _check_top_k(r: _Reader, moe: dict, key: str) -> None:
    if moe["top_k"] > moe["experts"]:
        raise r._fail(
            key,
            f"top_k {moe['top_k']} exceeds the {moe['experts']} experts",
            hint="num_experts_per_tok must be at most the number of experts",
        )


_CONVERTERS: dict[str, Callable[[_Reader, str], dict]] = {
    **{t: _llama_like for t in _LLAMA_LIKE},
    "gpt2": _gpt2,
    "gpt_neox": _gpt_neox,
    **{t: _falcon for t in _FALCON},
    **{t: _deepseek for t in _DEEPSEEK},
}

_FAMILY = {"RefinedWebModel": "falcon", "RefinedWeb": "falcon"}


def convert_hf_config(raw: dict, source: str) -> dict:
    """Map a parsed Hugging Face ``config.json`` onto an mpg model preset dict.

    Raises :class:`PresetError` naming ``source`` and the offending key when
    the model family is unknown or a needed key is missing or malformed.
    """
    supported = ", ".join(SUPPORTED_MODEL_TYPES)
    if not isinstance(raw, dict):
        raise PresetError(
            f"{source}: expected a JSON object, got {type(raw).__name__}",
            hint="pass a Hugging Face config.json file",
        )
    model_type = raw.get("model_type")
    if model_type is None:
        raise PresetError(
            f"{source}: model_type: missing key in config.json; supported families: {supported}",
            hint="add a 'model_type' key naming one of the supported families",
        )
    if not isinstance(model_type, str):
        raise PresetError(
            f"{source}: model_type: expected a string, got {model_type!r} "
            f"({type(model_type).__name__})",
            hint=f"supported families: {supported}",
        )
    if model_type not in _CONVERTERS:
        by_lower = {t.lower(): t for t in SUPPORTED_MODEL_TYPES}
        if model_type.lower() in by_lower:
            suggestion: str | None = f"did you mean {by_lower[model_type.lower()]!r}?"
        else:
            suggestion = did_you_mean(model_type, SUPPORTED_MODEL_TYPES)
        hint = f"supported families: {supported}"
        if suggestion:
            hint = f"{suggestion} {hint}"
        raise PresetError(
            f"{source}: model_type: unsupported model family {model_type!r}",
            hint=hint,
        )

    reader = _Reader(raw, source)
    body = _CONVERTERS[model_type](reader, model_type)
    family = _FAMILY.get(model_type, model_type)
    description = f"from Hugging Face config.json ({family})"
    if family == "falcon" and reader.get_bool("parallel_attn", True):
        description += "; parallel attention and MLP"
    preset = {"name": _name(raw, source, model_type), "description": description, "source": source}
    preset.update(body)
    return preset
