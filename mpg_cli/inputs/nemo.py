"""NeMo 1.x Megatron GPT YAML (``megatron_gpt_config.yaml``, NeMo-Framework-Launcher ``conf/training/gpt3/*.yaml``).

Keys and defaults follow NeMo's ``examples/nlp/language_modeling/conf/megatron_gpt_config.yaml``:
``ffn_hidden_size`` 4·h, ``num_query_groups`` null (= heads), ``activation`` gelu (``swiglu`` /
``fast-swiglu`` = SwiGLU), ``position_embedding_type`` learned_absolute, ``normalization`` layernorm,
``bias`` true, ``share_embeddings_and_output_weights`` true, ``make_vocab_size_divisible_by`` 128
(× tp, as Megatron pads), ``sequence_parallel`` false, ``activations_checkpoint_granularity`` null (no
recomputation); ``optim.name: distributed_fused_adam`` is Megatron's distributed optimizer (ZeRO-1);
``trainer.precision`` 16 / bf16 / bf16-mixed / 32, ``model.fp8`` true for FP8; GPUs =
``trainer.num_nodes`` × ``trainer.devices``; tokens = ``trainer.max_steps`` × global batch × sequence.
``${...}`` references within the file (``${.encoder_seq_length}``, ``${multiply:4, ${.hidden_size}}``)
are resolved (``mpg_cli.inputs.interp``); references to keys outside the file stay unresolved.
"""

from __future__ import annotations

from typing import Any

from .base import Collector, Note, TrainConfig
from .interp import resolve, unresolved
from .megatron_args import TOKENIZER_MODEL_HINTS, TOKENIZER_VOCAB, _padded

NAME = "nemo"

TOP = {"defaults", "hydra", "run", "name", "trainer", "exp_manager", "model", "restore_from_path", "base_results_dir",
       "data_dir", "cluster", "env_vars", "training", "launcher_scripts_path"}
TRAINER = {"num_nodes", "devices", "accelerator", "precision", "logger", "enable_checkpointing", "use_distributed_sampler",
           "replace_sampler_ddp", "max_epochs", "max_steps", "max_time", "log_every_n_steps", "val_check_interval",
           "limit_val_batches", "limit_test_batches", "accumulate_grad_batches", "gradient_clip_val", "benchmark",
           "enable_model_summary", "strategy", "num_sanity_val_steps"}
MODEL_USED = {"micro_batch_size", "global_batch_size", "tensor_model_parallel_size", "pipeline_model_parallel_size",
              "virtual_pipeline_model_parallel_size", "context_parallel_size", "expert_model_parallel_size",
              "encoder_seq_length", "max_position_embeddings", "num_layers", "hidden_size", "ffn_hidden_size",
              "num_attention_heads", "num_query_groups", "kv_channels", "activation", "position_embedding_type",
              "normalization", "bias", "share_embeddings_and_output_weights", "make_vocab_size_divisible_by",
              "activations_checkpoint_granularity", "activations_checkpoint_method", "activations_checkpoint_num_layers",
              "sequence_parallel", "tokenizer", "optim", "fp8", "num_moe_experts", "moe_router_topk", "rampup_batch_size",
              "data", "mcore_gpt", "megatron_amp_O2", "transformer_engine"}


def looks_like(data: Any) -> bool:
    m = data.get("model") if isinstance(data, dict) else None
    return isinstance(m, dict) and ("encoder_seq_length" in m or "tensor_model_parallel_size" in m) and (
        "num_layers" in m or "trainer" in data)


def from_dict(raw: dict, source: str) -> TrainConfig:
    col = Collector(NAME, source)
    data = resolve(raw)
    col.unknown([k for k in data if k not in TOP])
    model = data.get("model")
    trainer = data.get("trainer") or {}
    if not isinstance(model, dict):
        raise col.fail("model", "missing or not a mapping")
    if not isinstance(trainer, dict):
        raise col.fail("trainer", f"expected a mapping, got {trainer!r}")
    col.unknown([f"trainer.{k}" for k in trainer if k not in TRAINER])
    other = sorted(k for k in model if k not in MODEL_USED)
    if other:
        col.ignored(", ".join(f"model.{k}" for k in other[:6]) + (f" and {len(other) - 6} more" if len(other) > 6
                                                                  else ""), "no effect on time or memory in mpg")
    keys = _Keys(col, model)
    tp = _layout(col, model, keys)
    _batch_precision_gpus(col, model, trainer, keys)
    _model(col, data, model, keys, tp, source)
    return col.build()


class _Keys:
    """The integer keys of one section (``model.`` by default); a ``${...}`` left unresolved is an error naming it."""

    def __init__(self, col: Collector, d: dict, prefix: str = "model.") -> None:
        self.col, self.d, self.prefix = col, d, prefix

    def get(self, key: str, default: Any = None, minimum: int = 1) -> Any:
        v = self.d.get(key, default)
        if v is None:
            return None
        if unresolved(v):
            raise self.col.fail(self.prefix + key, f"{v} refers to a key that is not in this file")
        return self.col.integer(self.prefix + key, v, minimum)

    def need(self, key: str) -> int:
        v = self.get(key)
        if v is None:
            raise self.col.fail(f"{self.prefix}{key}", "missing key")
        return v


def _layout(col: Collector, model: dict, keys: _Keys) -> int:
    """tp, pp, virtual stages, cp, ep, sequence parallelism, recompute and the optimizer's ZeRO stage; returns tp."""
    get = keys.get
    tp = get("tensor_model_parallel_size")
    pp = get("pipeline_model_parallel_size")
    for field, v, key in (("tp", tp, "tensor_model_parallel_size"), ("pp", pp, "pipeline_model_parallel_size")):
        if v is not None:
            col.take(field, v, f"model.{key}")
        else:
            col.default(field, 1, f"NeMo default (model.{key} not given)")
    tp, pp = tp or 1, pp or 1
    for field, key in (("virtual_stages", "virtual_pipeline_model_parallel_size"), ("cp", "context_parallel_size"),
                       ("ep", "expert_model_parallel_size")):
        v = get(key)
        if v is not None:
            col.take(field, v, f"model.{key}")
    if model.get("virtual_pipeline_model_parallel_size") is None:
        col.default("virtual_stages", 1, "NeMo default (virtual_pipeline_model_parallel_size null: no interleaving)")
    sp = model.get("sequence_parallel")
    if sp is not None:
        col.take("sequence_parallel", col.boolean("model.sequence_parallel", sp), "model.sequence_parallel")
    gran = model.get("activations_checkpoint_granularity")
    if gran is None:
        col.default("recompute", "none", "NeMo default (activations_checkpoint_granularity null)")
    elif gran in ("selective", "full"):
        col.take("recompute", gran, "model.activations_checkpoint_granularity")
        if gran == "full" and model.get("activations_checkpoint_method") not in (None, "uniform"):
            col.approx(f"activations_checkpoint_method {model.get('activations_checkpoint_method')}: mpg recomputes "
                       "every layer in full", "recompute")
    else:
        raise col.fail("model.activations_checkpoint_granularity", f"expected selective, full or null, got {gran!r}")
    optim = model.get("optim") or {}
    oname = str(optim.get("name", "fused_adam")) if isinstance(optim, dict) else "fused_adam"
    if oname.startswith("distributed_fused_adam") or oname == "mcore_distributed_optim":
        col.take("zero", 1, "model.optim.name", f"ZeRO 1 from model.optim.name {oname} (distributed optimizer)")
    else:
        col.take("zero", 0, "model.optim.name", f"ZeRO 0 from model.optim.name {oname} (replicated optimizer state)")
    return tp


def _batch_precision_gpus(col: Collector, model: dict, trainer: dict, keys: _Keys) -> None:
    """Micro and global batch, the precision (fp32 modelled as bf16), the GPU count and the training steps."""
    get = keys.get
    mb = get("micro_batch_size")
    if mb is not None:
        col.take("micro_batch", mb, "model.micro_batch_size")
    gbs = get("global_batch_size")
    if gbs is not None:
        col.take("global_batch", gbs, "model.global_batch_size")
    if model.get("rampup_batch_size"):
        col.ignored("model.rampup_batch_size", "batch ramp-up is not modelled")
    prec = str(trainer.get("precision", 16))
    if model.get("fp8") is True:
        col.take("precision", "fp8", "model.fp8")
    elif prec in ("bf16", "bf16-mixed", "bf16-true"):
        col.take("precision", "bf16", "trainer.precision", f"precision bf16 from trainer.precision {prec}")
    elif prec in ("16", "16-mixed", "fp16"):
        col.take("precision", "fp16", "trainer.precision", f"precision fp16 from trainer.precision {prec}")
    elif prec in ("32", "32-true"):
        col.approx("trainer.precision 32: mpg models 16-bit and fp8 training only; bf16 used", "precision")
        col.values["precision"] = "bf16"
    else:
        raise col.fail("trainer.precision", f"{prec!r} is not one of 16, bf16, bf16-mixed, 32")
    nodes = _Keys(col, trainer, "trainer.").get("num_nodes", 1)
    devices = _Keys(col, trainer, "trainer.").get("devices", None)
    if devices is not None:
        col.take("gpus", nodes * devices, "trainer", f"GPUs {nodes * devices:,} = trainer.num_nodes {nodes} × "
                                                     f"trainer.devices {devices}")
    steps = trainer.get("max_steps")
    if steps not in (None, -1):
        col.take("train_steps", col.integer("trainer.max_steps", steps), "trainer.max_steps")


def _model(col: Collector, data: dict, model: dict, keys: _Keys, tp: int, source: str) -> None:
    """The Megatron GPT shape NeMo trains (gelu or gated FFN, learned/rope/alibi positions, MoE)."""
    get, need = keys.get, keys.need
    layers, h, heads = need("num_layers"), need("hidden_size"), need("num_attention_heads")
    seq = need("encoder_seq_length")
    col.take("seq_length", seq, "model.encoder_seq_length")
    ffn = get("ffn_hidden_size") or 4 * h
    kv = get("num_query_groups")
    act = str(model.get("activation", "gelu"))
    swiglu = act in ("swiglu", "fast-swiglu")
    if act not in ("gelu", "fast-gelu", "swiglu", "fast-swiglu", "geglu", "fast-geglu"):
        raise col.fail("model.activation", f"{act!r}: mpg models gelu and swiglu FFNs")
    gated = swiglu or "geglu" in act
    pos = str(model.get("position_embedding_type", "learned_absolute"))
    pos_map = {"learned_absolute": "learned", "rope": "rope", "alibi": "alibi", "none": "none", "kerple": "none",
               "xpos": "rope", "sandwich": "none"}
    if pos not in pos_map:
        raise col.fail("model.position_embedding_type", f"{pos!r} is not one of {', '.join(pos_map)}")
    vocab = _vocab(model, col, tp)
    spec: dict[str, Any] = {
        "name": data.get("run", {}).get("name") if isinstance(data.get("run"), dict) and isinstance(
            data["run"].get("name"), str) else _stem(source),
        "description": f"NeMo Megatron GPT shape from {source}", "source": source, "layers": layers,
        "hidden_size": h, "heads": heads, "ffn_hidden_size": ffn, "ffn_type": "swiglu" if gated else "gelu",
        "vocab_size": vocab, "seq_length": seq, "position_embedding": pos_map[pos],
        "tied_embeddings": col.boolean("model.share_embeddings_and_output_weights",
                                       model.get("share_embeddings_and_output_weights", True)),
        "linear_biases": col.boolean("model.bias", model.get("bias", True)),
        "norm": "rmsnorm" if str(model.get("normalization", "layernorm")).lower() == "rmsnorm" else "layernorm",
    }
    if kv is not None:
        spec["kv_heads"] = kv
    kvc = get("kv_channels")
    if kvc is not None:
        spec["head_dim"] = kvc
    experts = get("num_moe_experts")
    if experts is not None and experts > 1:
        spec["moe"] = {"experts": experts, "top_k": get("moe_router_topk") or 2, "expert_ffn_hidden_size": ffn}
    if "geglu" in act:
        col.approx(f"activation {act}: a gated FFN, counted like SwiGLU (same FLOPs and parameters)")
    col.values["model"] = spec
    col.notes.append(Note("from", f"model shape from model.num_layers {layers}, hidden_size {h:,}, "
                                  f"num_attention_heads {heads}" + (f", num_query_groups {kv}" if kv else "")
                                  + f", ffn_hidden_size {ffn:,} ({act})", "model"))


def _vocab(model: dict, col: Collector, tp: int) -> int:
    tok = model.get("tokenizer") or {}
    div = model.get("make_vocab_size_divisible_by", 128)
    div = col.integer("model.make_vocab_size_divisible_by", div)
    ttype = str(tok.get("type", "")) if isinstance(tok, dict) else ""
    raw = TOKENIZER_VOCAB.get(ttype.lower())
    how = f"tokenizer.type {ttype}"
    if raw is None:
        text = " ".join(str(tok.get(k, "")) for k in ("type", "model", "library")).lower() if isinstance(tok, dict) else ""
        for hint, size in TOKENIZER_MODEL_HINTS:
            if hint in text:
                raw, how = size, f"model.tokenizer {hint!r}"
                break
    if raw is None:
        raw, how = 50257, "no tokenizer mpg knows: GPT-2 BPE assumed"
        col.warn("vocabulary size unknown (tokenizer not recognised): assumed GPT-2's 50,257; give the model with -m "
                 "for the exact count")
    padded = _padded(raw, div, tp)
    col.approx(f"vocabulary {padded:,}: {raw:,} from {how}, padded to a multiple of {div} × tp {tp} "
               "(make_vocab_size_divisible_by)")
    return padded


def _stem(source: str) -> str:
    from pathlib import PurePath

    return PurePath(source).stem
