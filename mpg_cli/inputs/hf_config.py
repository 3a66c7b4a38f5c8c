"""Convert a local Hugging Face ``config.json`` into an mpg model preset dict.

Only the standard library is used: no ``transformers`` import and no network.
The caller parses the JSON file; :func:`convert_hf_config` maps the parsed
dict onto mpg's model preset schema and raises :class:`PresetError` (naming
the file and the offending key) for anything it cannot map.

Supported ``model_type`` families: llama, mistral, mixtral, qwen2, qwen2_moe,
qwen3, qwen3_moe, phi3, olmo2, granite, gemma2, gemma3_text (also the text config
inside a multimodal config, e.g. gemma3), gpt_oss, gpt2, gpt_neox, falcon (also the
old ``RefinedWebModel`` / ``RefinedWeb`` names), deepseek_v2 and deepseek_v3.
Attention and FFN layouts follow the families' ``modeling_*.py`` in transformers
(v4.55): Qwen2/Qwen2-MoE put biases on Q, K and V only; Gemma 2/3 use a gated GeLU
FFN (three matrices, counted like SwiGLU) and tie the embeddings; gpt-oss has biases
on every projection and expert.

Sequence length: the pre-training context. When ``rope_scaling`` extends the context
(Llama 3.1, Qwen YaRN, Phi-3 LongRoPE, gpt-oss), ``original_max_position_embeddings``
(in ``rope_scaling``, or top-level as Phi-3 writes it) is taken; the preset's
``seq_length_source`` says where the value came from, and ``assumptions`` lists the
approximations (sliding-window layers modelled as full attention).
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any, Callable

from mpg_cli.errors import PresetError, did_you_mean

_MISSING = object()

_LLAMA_LIKE = ("llama", "mistral", "mixtral", "qwen2", "qwen3", "phi3", "olmo2", "granite", "qwen2_moe", "qwen3_moe",
               "gemma2", "gemma3_text", "gpt_oss")
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


_QKV_BIAS = ("qwen2", "qwen2_moe")  # transformers Qwen2Attention: bias=True on q/k/v_proj, none on o_proj
_GEMMA = ("gemma2", "gemma3_text")
_TIED_DEFAULT = {"gemma2": True, "gemma3_text": True, "granite": False}


def _seq(r: _Reader, out: dict) -> None:
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


def _llama_like(r: _Reader, model_type: str) -> dict:
    out = _heads(r, ("num_hidden_layers",), ("num_attention_heads",), ("hidden_size",),
                 ("num_key_value_heads",))
    _check_kv_heads(r, out, "num_key_value_heads")
    _head_dim(r, out, "num_attention_heads")
    ffn = r.get_int("intermediate_size")
    notes: list[str] = []
    out.update(
        ffn_hidden_size=ffn,
        ffn_type="swiglu",
        vocab_size=r.get_int("vocab_size"),
        tied_embeddings=r.get_bool("tie_word_embeddings", _TIED_DEFAULT.get(model_type, False)),
        position_embedding="rope",
        linear_biases=model_type == "gpt_oss" or r.get_bool("attention_bias", False) and r.get_bool("mlp_bias", False),
        norm="rmsnorm",
    )
    _seq(r, out)
    if model_type in _QKV_BIAS or (model_type != "gpt_oss" and r.get_bool("attention_bias", False)
                                   and not out["linear_biases"]):
        out["qkv_bias"] = True
    if model_type in _GEMMA:
        notes.append(f"{model_type}: gated GeLU FFN counted like SwiGLU (same three matrices and FLOPs)")
    window = r.raw.get("sliding_window")
    if isinstance(window, int) and not isinstance(window, bool) and window < out["seq_length"] and (
            model_type in _GEMMA or model_type == "gpt_oss" or r.get_bool("use_sliding_window", False)):
        notes.append(f"{model_type}: sliding-window layers (window {window:,}) modelled as full causal attention "
                     "over the sequence: attention FLOPs and activations are over-counted for those layers")
    if model_type == "gpt_oss":
        notes.append("gpt_oss: attention sinks not modelled (a few scalars per head)")
    if model_type in ("mixtral", "gpt_oss"):
        out["moe"] = {
            "experts": r.get_int("num_local_experts"),
            "top_k": r.get_int("num_experts_per_tok", "experts_per_token"),
            "expert_ffn_hidden_size": ffn,
        }
        _check_top_k(r, out["moe"], "num_experts_per_tok")
    elif model_type in ("qwen2_moe", "qwen3_moe"):
        moe = {"experts": r.get_int("num_experts"), "top_k": r.get_int("num_experts_per_tok"),
               "expert_ffn_hidden_size": r.get_int("moe_intermediate_size")}
        _check_top_k(r, moe, "num_experts_per_tok")
        shared = r.get_int("shared_expert_intermediate_size", default=0, minimum=0)
        if shared:
            moe.update(shared_experts=1, shared_expert_ffn_hidden_size=shared)
        step = r.get_int("decoder_sparse_step", default=1)
        if step != 1:
            raise r._fail("decoder_sparse_step", f"MoE on every {step}th layer is not supported (only 1)",
                          hint="write an mpg model preset by hand for this layout")
        dense = r.raw.get("mlp_only_layers") or []
        if not isinstance(dense, list) or not all(isinstance(i, int) for i in dense):
            raise r._fail("mlp_only_layers", f"expected a list of layer indices, got {dense!r}")
        if dense:
            moe["dense_layers"] = len(dense)
            if sorted(dense) != list(range(len(dense))):
                notes.append(f"{model_type}: the {len(dense)} dense layers (mlp_only_layers) are counted as if "
                             "they came first")
        out["moe"] = moe
    if notes:
        out["assumptions"] = notes
    return out


def _gpt2(r: _Reader, model_type: str) -> dict:
    out = _heads(r, ("n_layer",), ("n_head",), ("n_embd",), None)
    _head_dim(r, out, "n_head")
    out.update(
        ffn_hidden_size=r.get_int("n_inner", default=4 * out["hidden_size"]),
        ffn_type="gelu",
        vocab_size=r.get_int("vocab_size"),
        seq_length=r.get_int("n_positions", "n_ctx"),
        seq_length_source="n_positions" if "n_positions" in r.raw else "n_ctx",
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
        tied_embeddings=r.get_bool("tie_word_embeddings", False),
        position_embedding="rope",
        linear_biases=r.get_bool("attention_bias", True),
        norm="layernorm",
    )
    _seq(r, out)
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
        seq_length_source="max_position_embeddings" if r.raw.get("max_position_embeddings") else
        "falcon default 2,048 (no max_position_embeddings)",
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
        tied_embeddings=r.get_bool("tie_word_embeddings", False),
        position_embedding="rope",
        linear_biases=r.get_bool("attention_bias", False),
        norm="rmsnorm",
    )
    _seq(r, out)
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
_TEXT_OF = {"gemma3": "gemma3_text"}


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
    if model_type not in _CONVERTERS and isinstance(raw.get("text_config"), dict):
        inner = dict(raw["text_config"])
        inner.setdefault("model_type", _TEXT_OF.get(model_type, f"{model_type}_text"))
        if "_name_or_path" in raw:
            inner.setdefault("_name_or_path", raw["_name_or_path"])
        preset = convert_hf_config(inner, source)
        preset["description"] += f"; the text model (text_config) of a {model_type} multimodal config"
        preset["assumptions"] = list(preset.get("assumptions", [])) + [
            f"{model_type}: only the language model (text_config) is counted; the vision tower is not"]
        return preset
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
