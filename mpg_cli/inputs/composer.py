"""llm-foundry / Composer training YAML (``scripts/train/yamls/pretrain/mpt-*.yaml``).

Keys and defaults follow llm-foundry's MPT config (``llmfoundry/models/mpt/configuration_mpt.py``:
``expansion_ratio`` 4, ``learned_pos_emb`` true, ``no_bias`` false, ``attn_config.alibi`` false,
``attn_config.kv_n_heads`` = n_heads, ``tie_word_embeddings`` true, LayerNorm) and Composer's
Trainer (``max_duration`` as ``<n>ba`` batches, ``<n>tok`` tokens, ``<n>sp`` samples or ``<n>ep``
epochs; ``device_train_microbatch_size`` a number or ``auto``; ``precision`` amp_bf16 / amp_fp16 /
amp_fp8; FSDP ``sharding_strategy`` FULL_SHARD = ZeRO-3, SHARD_GRAD_OP = ZeRO-2, NO_SHARD = DDP,
HYBRID_SHARD = FSDP within a node and replicas across; ``activation_checkpointing`` = full
recomputation of each block). ``${...}`` references to keys of the same file (top-level, or the
newer ``variables:`` section) are resolved (``mpg_cli.inputs.interp``).
"""

from __future__ import annotations

import re
from typing import Any

from .base import Collector, TrainConfig
from .interp import resolve, unresolved

NAME = "composer"

TOP = {"variables", "data_local", "data_remote", "max_seq_len", "global_seed", "run_name", "model", "tokenizer",
       "train_loader", "eval_loader", "scheduler", "optimizer", "algorithms", "max_duration", "eval_interval",
       "eval_first", "eval_subset_num_batches", "global_train_batch_size", "seed", "device_eval_batch_size",
       "device_train_microbatch_size", "precision", "fsdp_config", "progress_bar", "log_to_console",
       "console_log_interval", "callbacks", "loggers", "save_folder", "save_interval", "save_num_checkpoints_to_keep",
       "load_path", "autoresume", "icl_tasks", "eval_gauntlet", "dist_timeout", "device_train_grad_accum",
       "python_log_level", "integrations", "save_overwrite", "save_weights_only", "load_weights_only",
       "parallelism_config", "compile_config", "eval_loaders", "log_config", "max_split_size_mb",
       "tp_config", "spin_dataloaders", "device_train_batch_size", "save_filename", "load_strict_model_weights"}
MODEL = {"name", "init_device", "d_model", "n_heads", "n_layers", "expansion_ratio", "max_seq_len", "vocab_size",
         "attn_config", "ffn_config", "learned_pos_emb", "no_bias", "norm_type", "tie_word_embeddings", "init_config",
         "emb_pdrop", "resid_pdrop", "logit_scale", "use_cache", "fc_type", "pretrained", "pretrained_model_name_or_path",
         "loss_fn", "param_init_fn", "init_std", "use_pad_tok_in_ffn", "block_overrides"}
FSDP = {"sharding_strategy", "mixed_precision", "activation_checkpointing", "activation_checkpointing_reentrant",
        "activation_cpu_offload", "limit_all_gathers", "verbose", "state_dict_type", "forward_prefetch",
        "backward_prefetch", "sync_module_states", "use_orig_params", "cpu_offload", "data_parallel_shard_degree",
        "data_parallel_replicate_degree", "load_monolith_rank0_only"}
STRATEGY = {"FULL_SHARD": 3, "SHARD_GRAD_OP": 2, "NO_SHARD": 0, "HYBRID_SHARD": 3, "_HYBRID_SHARD_ZERO2": 2}
PRECISION = {"amp_bf16": "bf16", "amp_fp16": "fp16", "amp_fp8": "fp8"}
_DURATION = re.compile(r"^\s*([0-9][0-9_]*(?:\.[0-9]+)?(?:e[0-9]+)?)\s*(ba|tok|sp|ep|dur)\s*$", re.I)


def looks_like(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    m = data.get("model")
    return bool({"global_train_batch_size", "max_duration", "device_train_microbatch_size"} & set(data)) or (
        isinstance(m, dict) and "d_model" in m)


def from_dict(raw: dict, source: str) -> TrainConfig:
    col = Collector(NAME, source)
    data = resolve(raw)
    col.unknown([k for k in data if k not in TOP])
    used = {"model", "max_seq_len", "global_train_batch_size", "device_train_microbatch_size", "max_duration",
            "fsdp_config", "precision", "tp_config", "variables"}
    unused = [k for k in data if k in TOP and k not in used]
    if unused:
        col.ignored(", ".join(unused[:8]) + (f" and {len(unused) - 8} more" if len(unused) > 8 else ""),
                    "no effect on time or memory in mpg")
    model = data.get("model")
    if not isinstance(model, dict):
        raise col.fail("model", "missing or not a mapping", hint="an llm-foundry YAML has a model: section")
    col.unknown([f"model.{k}" for k in model if k not in MODEL])
    seq = _model(col, data, model, source)
    _batch_and_duration(col, data, seq)
    _parallelism_and_precision(col, data)
    return col.build()


def _need(col: Collector, d: dict, key: str, where: str, minimum: int = 1) -> int:
    """A required integer key (a ``${...}`` left unresolved is an error naming it)."""
    if key not in d or d[key] is None:
        raise col.fail(where, "missing key")
    v = d[key]
    if unresolved(v):
        raise col.fail(where, f"{v} refers to a key that is not in this file")
    return col.integer(where, v, minimum)


def _model(col: Collector, data: dict, model: dict, source: str) -> int:
    """The MPT shape (llm-foundry's defaults where a key is absent); returns the sequence length."""
    if str(model.get("name", "mpt_causal_lm")) not in ("mpt_causal_lm", "mpt"):
        raise col.fail("model.name", f"{model.get('name')!r}: only llm-foundry's mpt_causal_lm shape is read",
                       hint="give the model with -m (a preset or a Hugging Face config.json)")
    h = _need(col, model, "d_model", "model.d_model")
    heads = _need(col, model, "n_heads", "model.n_heads")
    layers = _need(col, model, "n_layers", "model.n_layers")
    ratio = model.get("expansion_ratio", 4)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio <= 0:
        raise col.fail("model.expansion_ratio", f"expected a positive number, got {ratio!r}")
    seq_key = "model.max_seq_len" if "max_seq_len" in model else "max_seq_len"
    seq = _need(col, model if "max_seq_len" in model else data, "max_seq_len", seq_key)
    vocab = _need(col, model, "vocab_size", "model.vocab_size") if "vocab_size" in model else 50368
    attn = model.get("attn_config") or {}
    if not isinstance(attn, dict):
        raise col.fail("model.attn_config", f"expected a mapping, got {attn!r}")
    kv = col.integer("model.attn_config.kv_n_heads", attn["kv_n_heads"]) if "kv_n_heads" in attn else heads
    alibi = col.boolean("model.attn_config.alibi", attn.get("alibi", False))
    learned = col.boolean("model.learned_pos_emb", model.get("learned_pos_emb", True))
    no_bias = col.boolean("model.no_bias", model.get("no_bias", False))
    ffn = int(ratio * h)
    spec = {
        "name": _name(source), "description": f"llm-foundry MPT shape from {source}", "source": source,
        "layers": layers, "hidden_size": h, "heads": heads, "kv_heads": kv, "ffn_hidden_size": ffn, "ffn_type": "gelu",
        "vocab_size": vocab, "seq_length": seq,
        "tied_embeddings": col.boolean("model.tie_word_embeddings", model.get("tie_word_embeddings", True)),
        "position_embedding": "alibi" if alibi else ("learned" if learned else "none"),
        "linear_biases": not no_bias, "norm": "rmsnorm" if "rms" in str(model.get("norm_type", "")).lower() else "layernorm",
    }
    col.values["model"] = spec
    col.notes.append(_note("from", f"model shape from model.d_model {h:,}, n_heads {heads}, n_layers {layers}, "
                                   f"expansion_ratio {ratio:g} (FFN {ffn:,}), vocab_size {vocab:,}", "model"))
    defaults = [k for k, v in (("learned_pos_emb true", "learned_pos_emb"), ("no_bias false", "no_bias"),
                               ("attn_config.alibi false", "alibi")) if v not in (model if v != "alibi" else attn)]
    if defaults:
        col.notes.append(_note("default", f"llm-foundry MPT defaults: {', '.join(defaults)}"
                                          + ("" if "vocab_size" in model else ", vocab_size 50,368")))
    col.take("seq_length", seq, seq_key)
    return seq


def _batch_and_duration(col: Collector, data: dict, seq: int) -> None:
    """Global and micro-batch, and max_duration as steps, tokens or samples (epochs are not read)."""
    gbs = _need(col, data, "global_train_batch_size", "global_train_batch_size")
    col.take("global_batch", gbs, "global_train_batch_size")
    mb = data.get("device_train_microbatch_size")
    if mb == "auto":
        col.ignored("device_train_microbatch_size auto", "Composer picks it at run time; mpg searches it")
    elif mb is not None:
        col.take("micro_batch", col.integer("device_train_microbatch_size", mb), "device_train_microbatch_size")
    dur = data.get("max_duration")
    if dur is not None:
        m = _DURATION.match(str(dur))
        if not m:
            raise col.fail("max_duration", f"cannot read {dur!r}", hint="Composer durations look like 63900ba, 134e9tok")
        n, unit = float(m.group(1).replace("_", "")), m.group(2).lower()
        if unit == "ba":
            col.take("train_steps", int(n), "max_duration", f"training steps {int(n):,} from max_duration {dur}")
        elif unit == "tok":
            col.take("tokens", n, "max_duration", f"tokens {n:.4g} from max_duration {dur}")
        elif unit == "sp":
            col.derived("tokens", n * seq, f"tokens {n * seq:.4g} = max_duration {dur} × max_seq_len {seq:,}")
        else:
            col.ignored(f"max_duration {dur}", "epochs depend on the data set size: set --tokens")


def _parallelism_and_precision(col: Collector, data: dict) -> None:
    """FSDP sharding as a ZeRO stage, activation checkpointing as recompute, tp/pp (Composer: none), precision."""
    fsdp = data.get("fsdp_config")
    if isinstance(fsdp, dict):
        _fsdp(col, fsdp)
    else:
        col.default("zero", 0, "no fsdp_config: Composer trains with DDP")
        col.default("recompute", "none", "no fsdp_config: no activation checkpointing")
    if data.get("tp_config"):
        col.ignored("tp_config", "Composer tensor parallelism is not read; set --tp")
    else:
        col.default("tp", 1, "Composer trains with FSDP/DDP only (no tp_config)")
    col.default("pp", 1, "Composer has no pipeline parallelism")
    prec = data.get("precision")
    if prec is not None:
        if prec not in PRECISION:
            raise col.fail("precision", f"{prec!r} is not one of {', '.join(PRECISION)}")
        col.take("precision", PRECISION[prec], "precision", f"precision {PRECISION[prec]} from precision {prec}")


def _fsdp(col: Collector, fsdp: dict) -> None:
    """fsdp_config: the sharding strategy's ZeRO stage, activation checkpointing, offload and mixed precision."""
    col.unknown([f"fsdp_config.{k}" for k in fsdp if k not in FSDP])
    strat = str(fsdp.get("sharding_strategy", "FULL_SHARD"))
    if strat not in STRATEGY:
        raise col.fail("fsdp_config.sharding_strategy", f"{strat!r} is not one of {', '.join(STRATEGY)}")
    where = "fsdp_config.sharding_strategy" if "sharding_strategy" in fsdp else "FSDP default FULL_SHARD"
    col.take("zero", STRATEGY[strat], where, f"ZeRO {STRATEGY[strat]} from {where} {strat}")
    if "HYBRID" in strat:
        col.approx(f"{strat}: shards within a node and replicates across; mapped to ZeRO-{STRATEGY[strat]} over "
                   "all of dp, which under-counts the per-GPU state memory", "zero")
    ac = col.boolean("fsdp_config.activation_checkpointing", fsdp.get("activation_checkpointing", False))
    if "activation_checkpointing" in fsdp:
        col.take("recompute", "full" if ac else "none", "fsdp_config.activation_checkpointing",
                 f"recompute {'full' if ac else 'none'} from fsdp_config.activation_checkpointing {str(ac).lower()}")
    else:
        col.default("recompute", "none", "fsdp_config.activation_checkpointing not given (off)")
    if fsdp.get("activation_cpu_offload") or fsdp.get("cpu_offload"):
        col.warn("CPU offload is not modelled (memory counts activations and states on the GPU)")
    if "mixed_precision" in fsdp:
        col.ignored(f"fsdp_config.mixed_precision {fsdp['mixed_precision']}",
                    "mpg's memory model keeps 16-bit weights and gradients with fp32 master weights")


def _name(source: str) -> str:
    from pathlib import PurePath

    return PurePath(source).stem


def _note(kind: str, text: str, field: str = ""):
    from .base import Note

    return Note(kind, text, field)
