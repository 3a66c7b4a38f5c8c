"""The per-architecture readers of a Hugging Face ``config.json``: one function per model family.

Attention and FFN layouts follow the families' ``modeling_*.py`` in transformers (v4.55); see
``mpg_cli.inputs.hf_config`` for the list and the conventions. Only the standard library is used.
"""

from __future__ import annotations

from typing import Callable

from mpg_cli.inputs.hf_reader import Reader, check_kv_heads, check_top_k, read_head_dim, read_heads, read_seq

LLAMA_LIKE = ("llama", "mistral", "mixtral", "qwen2", "qwen3", "phi3", "olmo2", "granite", "qwen2_moe", "qwen3_moe",
              "gemma2", "gemma3_text", "gpt_oss")
FALCON = ("falcon", "RefinedWebModel", "RefinedWeb")
DEEPSEEK = ("deepseek_v2", "deepseek_v3")

_QKV_BIAS = ("qwen2", "qwen2_moe")  # transformers Qwen2Attention: bias=True on q/k/v_proj, none on o_proj
_GEMMA = ("gemma2", "gemma3_text")
_TIED_DEFAULT = {"gemma2": True, "gemma3_text": True, "granite": False}


def _llama_like(r: Reader, model_type: str) -> dict:
    out = read_heads(r, ("num_hidden_layers",), ("num_attention_heads",), ("hidden_size",),
                 ("num_key_value_heads",))
    check_kv_heads(r, out, "num_key_value_heads")
    read_head_dim(r, out, "num_attention_heads")
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
    read_seq(r, out)
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
        check_top_k(r, out["moe"], "num_experts_per_tok")
    elif model_type in ("qwen2_moe", "qwen3_moe"):
        moe = {"experts": r.get_int("num_experts"), "top_k": r.get_int("num_experts_per_tok"),
               "expert_ffn_hidden_size": r.get_int("moe_intermediate_size")}
        check_top_k(r, moe, "num_experts_per_tok")
        shared = r.get_int("shared_expert_intermediate_size", default=0, minimum=0)
        if shared:
            moe.update(shared_experts=1, shared_expert_ffn_hidden_size=shared)
        step = r.get_int("decoder_sparse_step", default=1)
        if step != 1:
            raise r.fail("decoder_sparse_step", f"MoE on every {step}th layer is not supported (only 1)",
                          hint="write an mpg model preset by hand for this layout")
        dense = r.raw.get("mlp_only_layers") or []
        if not isinstance(dense, list) or not all(isinstance(i, int) for i in dense):
            raise r.fail("mlp_only_layers", f"expected a list of layer indices, got {dense!r}")
        if dense:
            moe["dense_layers"] = len(dense)
            if sorted(dense) != list(range(len(dense))):
                notes.append(f"{model_type}: the {len(dense)} dense layers (mlp_only_layers) are counted as if "
                             "they came first")
        out["moe"] = moe
    if notes:
        out["assumptions"] = notes
    return out


def _gpt2(r: Reader, model_type: str) -> dict:
    out = read_heads(r, ("n_layer",), ("n_head",), ("n_embd",), None)
    read_head_dim(r, out, "n_head")
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


def _gpt_neox(r: Reader, model_type: str) -> dict:
    out = read_heads(r, ("num_hidden_layers",), ("num_attention_heads",), ("hidden_size",), None)
    read_head_dim(r, out, "num_attention_heads")
    out.update(
        ffn_hidden_size=r.get_int("intermediate_size"),
        ffn_type="gelu",
        vocab_size=r.get_int("vocab_size"),
        tied_embeddings=r.get_bool("tie_word_embeddings", False),
        position_embedding="rope",
        linear_biases=r.get_bool("attention_bias", True),
        norm="layernorm",
    )
    read_seq(r, out)
    return out


def _falcon(r: Reader, model_type: str) -> dict:
    layers = ("num_hidden_layers", "n_layer")
    heads_keys = ("num_attention_heads", "n_head")
    out = read_heads(r, layers, heads_keys, ("hidden_size",), None)
    # The 40B-style "RefinedWeb" checkpoints always use the new decoder architecture.
    new_arch = r.get_bool("new_decoder_architecture", model_type == "RefinedWeb")
    if new_arch:
        out["kv_heads"] = r.get_int("num_kv_heads", "n_head_kv", default=out["heads"])
    elif r.get_bool("multi_query", True):
        out["kv_heads"] = 1
    check_kv_heads(r, out, "num_kv_heads")
    read_head_dim(r, out, "num_attention_heads")
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


def _deepseek(r: Reader, model_type: str) -> dict:
    out = read_heads(r, ("num_hidden_layers",), ("num_attention_heads",), ("hidden_size",),
                 ("num_key_value_heads",))
    check_kv_heads(r, out, "num_key_value_heads")
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
    read_seq(r, out)
    experts = r.get_int("n_routed_experts", default=None)
    if experts is not None:
        freq = r.get_int("moe_layer_freq", default=1)
        if freq != 1:
            raise r.fail(
                "moe_layer_freq",
                f"MoE on every {freq}th layer is not supported (only 1)",
                hint="write an mpg model preset by hand for this layout",
            )
        moe = {
            "experts": experts,
            "top_k": r.get_int("num_experts_per_tok"),
            "expert_ffn_hidden_size": r.get_int("moe_intermediate_size"),
        }
        check_top_k(r, moe, "num_experts_per_tok")
        shared = r.get_int("n_shared_experts", default=0, minimum=0)
        if shared:
            moe["shared_experts"] = shared
        dense = r.get_int("first_k_dense_replace", default=0, minimum=0)
        if dense > out["layers"]:
            raise r.fail(
                "first_k_dense_replace",
                f"{dense} dense layers exceed num_hidden_layers {out['layers']}",
                hint="first_k_dense_replace must be at most num_hidden_layers",
            )
        if dense:
            moe["dense_layers"] = dense
        out["moe"] = moe
    # DeepSeek-V3 §2.2 multi-token prediction modules: said, not counted (as the deepseek-v3 preset): mpg would put
    # them on the last pipeline stage unbalanced (Megatron's default split), which makes deep pipelines look slow
    # only a note, so a value mpg cannot read is left out rather than failing the config
    mtp = r.raw.get("num_nextn_predict_layers")
    if isinstance(mtp, int) and not isinstance(mtp, bool) and 0 < mtp < 10**6:
        out["assumptions"] = [f"{model_type}: the {mtp} multi-token prediction module(s) (num_nextn_predict_layers) "
                              f"are not counted; add mtp_layers: {mtp} to a preset to count them on the last "
                              "pipeline stage"]
    out["mla"] = {
        "q_lora_rank": r.get_int("q_lora_rank", default=0, minimum=0),
        "kv_lora_rank": r.get_int("kv_lora_rank"),
        "qk_nope_head_dim": r.get_int("qk_nope_head_dim"),
        "qk_rope_head_dim": r.get_int("qk_rope_head_dim"),
        "v_head_dim": r.get_int("v_head_dim"),
    }
    return out


CONVERTERS: dict[str, Callable[[Reader, str], dict]] = {
    **{t: _llama_like for t in LLAMA_LIKE},
    "gpt2": _gpt2,
    "gpt_neox": _gpt_neox,
    **{t: _falcon for t in FALCON},
    **{t: _deepseek for t in DEEPSEEK},
}
