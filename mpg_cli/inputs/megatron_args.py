"""Megatron-LM arguments: ``pretrain_gpt.py --num-layers … --tensor-model-parallel-size …``.

Reads an argument list, a launch command (``torchrun … pretrain_gpt.py …``, backslash-continued
lines) or a launch script (``GPT_ARGS=( … )`` bash arrays expanded with ``${GPT_ARGS[@]}``, simple
``NAME=value`` variables). Flag names and defaults follow Megatron-LM's
``megatron/training/arguments.py`` (core_r0.9-r0.12):

* ``--ffn-hidden-size`` defaults to 4·h, or with ``--swiglu`` to ``int(4·h·2/3 / 64)·64``;
* ``--num-query-groups`` applies only with ``--group-query-attention`` (else one KV head per head);
* embeddings are tied unless ``--untie-embeddings-and-output-weights``; linear layers have biases
  unless ``--disable-bias-linear``; ``--add-qkv-bias`` adds them to Q, K, V only;
* ``--position-embedding-type`` defaults to ``learned_absolute``; ``--normalization`` to LayerNorm;
* the vocabulary is padded to a multiple of ``--make-vocab-size-divisible-by`` (128) × tp
  (``_vocab_size_with_padding`` in megatron/training/tokenizer/tokenizer.py);
* ``--global-batch-size`` defaults to micro-batch × dp; ``--micro-batch-size`` to 1 here;
* without ``--use-distributed-optimizer`` the optimizer state is replicated (mpg ZeRO 0);
* no ``--recompute-granularity`` means no recomputation; ``--recompute-activations`` is the old
  spelling of selective recomputation;
* ``--moe-router-topk`` defaults to 2; ``--moe-ffn-hidden-size`` to ``--ffn-hidden-size``.

The same module reads the argument block a Megatron-LM log prints (``name ....... value``) for
``mpg calibrate`` (see :func:`log_arguments`). Standard library only.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from .base import Collector, Note, TrainConfig
from .megatron_script import LAUNCHERS as LAUNCHERS  # re-exported: the launch reader is megatron_script.py
from .megatron_script import arguments as arguments
from .megatron_script import script_tokens as script_tokens

NAME = "megatron"

# Vocabulary of tokenizers the arguments name (before Megatron's padding); sources: the tokenizers'
# published vocabularies (GPT-2 BPE 50,257; Llama 2 SentencePiece 32,000; Llama 3 tiktoken 128,256).
TOKENIZER_VOCAB = {"gpt2bpetokenizer": 50257, "llama2tokenizer": 32000}
TOKENIZER_MODEL_HINTS = (("llama-3", 128256), ("llama3", 128256), ("llama-2", 32000), ("llama2", 32000),
                         ("mistral", 32000), ("mixtral", 32000), ("gpt2", 50257), ("gpt-neox", 50277))

# Arguments mpg understands (what each maps to is in from_arguments).
USED = {
    "num_layers", "hidden_size", "ffn_hidden_size", "num_attention_heads", "group_query_attention",
    "num_query_groups", "kv_channels", "swiglu", "seq_length", "max_position_embeddings", "normalization",
    "position_embedding_type", "use_rotary_position_embeddings", "untie_embeddings_and_output_weights",
    "disable_bias_linear", "add_qkv_bias", "padded_vocab_size", "vocab_size", "tokenizer_type", "tokenizer_model",
    "vocab_file", "make_vocab_size_divisible_by", "num_experts", "moe_router_topk", "moe_ffn_hidden_size",
    "moe_shared_expert_intermediate_size", "tensor_model_parallel_size", "pipeline_model_parallel_size",
    "num_layers_per_virtual_pipeline_stage", "virtual_pipeline_model_parallel_size", "context_parallel_size",
    "expert_model_parallel_size", "sequence_parallel", "use_distributed_optimizer", "recompute_granularity",
    "recompute_method", "recompute_num_layers", "recompute_activations", "micro_batch_size", "global_batch_size",
    "bf16", "fp16", "fp8_format", "fp8", "train_iters", "train_samples", "rampup_batch_size", "no_position_embedding",
}
# Valid Megatron-LM arguments that do not change time or memory in mpg's model (listed as ignored).
KNOWN = {
    "lr", "min_lr", "lr_decay_style", "lr_decay_iters", "lr_decay_samples", "lr_warmup_iters", "lr_warmup_fraction",
    "lr_warmup_samples", "weight_decay", "adam_beta1", "adam_beta2", "adam_eps", "clip_grad", "init_method_std",
    "attention_dropout", "hidden_dropout", "data_path", "split", "merge_file", "save", "load",
    "save_interval", "eval_interval", "eval_iters", "log_interval", "tensorboard_dir", "seed", "data_cache_path",
    "attention_backend", "no_masked_softmax_fusion", "rotary_base", "rotary_percent", "use_flash_attn",
    "overlap_grad_reduce", "overlap_param_gather", "tp_comm_overlap", "moe_router_load_balancing_type",
    "moe_aux_loss_coeff", "moe_grouped_gemm", "moe_token_dispatcher_type", "moe_z_loss_coeff", "moe_router_pre_softmax",
    "norm_epsilon", "layernorm_epsilon", "distributed_backend", "num_workers", "log_throughput", "log_timers_to_tensorboard",
    "log_validation_ppl_to_tensorboard", "log_memory_to_tensorboard", "wandb_project", "wandb_exp_name", "exit_duration_in_mins",
    "use_mcore_models", "transformer_impl", "no_gradient_accumulation_fusion", "no_bias_swiglu_fusion", "no_rope_fusion",
    "fp8_amax_history_len", "fp8_amax_compute_algo", "fp8_margin", "untie_embeddings", "mock_data",
    "distributed_timeout_minutes", "ckpt_format", "no_load_optim", "no_load_rng", "finetune", "use_checkpoint_args",
    "apply_query_key_layer_scaling", "attention_softmax_in_fp32", "accumulate_allreduce_grads_in_fp32",
    "bf16_allreduce", "loss_scale", "initial_loss_scale", "min_loss_scale", "loss_scale_window", "hysteresis",
    "cross_entropy_loss_fusion", "manual_gc", "manual_gc_interval", "timing_log_level", "log_params_norm",
    "log_num_zeros_in_grad", "eval_only", "no_create_attention_mask_in_dataloader", "num_dataset_builder_threads",
    "qk_layernorm", "use_legacy_models", "ddp_bucket_size", "ddp_average_in_collective", "check_for_nan_in_loss_and_grad",
    "no_async_tensor_model_parallel_allreduce", "recompute_modules", "profile", "profile_step_start", "profile_step_end",
}
TORCHRUN_GPU_FLAGS = {"nproc_per_node", "nproc-per-node", "nnodes"}

# ---------------------------------------------------------------- mapping to mpg

def _padded(vocab: int, divisible_by: int, tp: int) -> int:
    """Megatron's _vocab_size_with_padding: up to a multiple of divisible_by × tp."""
    multiple = divisible_by * tp
    return -(-vocab // multiple) * multiple


def from_arguments(args: dict[str, Any], col: Collector, gpu_flags: Optional[dict[str, int]] = None) -> TrainConfig:
    """Map Megatron-LM arguments (Python names, string values, True for bare flags) onto a TrainConfig."""
    a = _Args(args, col)
    flag, num, on = _flag, a.num, a.on
    unknown = sorted(k for k in args if k not in USED and k not in KNOWN)
    col.unknown([flag(k) for k in unknown])
    ignored = sorted(k for k in args if k in KNOWN)
    if ignored:
        col.ignored(", ".join(flag(k) for k in ignored[:8]) + (f" and {len(ignored) - 8} more" if len(ignored) > 8
                                                               else ""), "no effect on time or memory in mpg")
    tp, pp, layers = _layout(a, col)
    seq = _batch_precision_tokens(a, col)
    if gpu_flags and "nproc_per_node" in gpu_flags:
        _torchrun_gpus(col, gpu_flags, tp, pp)
    if layers is not None or "hidden_size" in args:
        col.values["model"] = _model(args, col, num, on, flag, tp, layers, seq)
    return col.build()


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


class _Args:
    """Typed reads of the arguments: ``num`` an integer (or None), ``on`` a bare or 'true' flag."""

    def __init__(self, args: dict[str, Any], col: Collector) -> None:
        self.args, self.col = args, col

    def num(self, name: str, minimum: int = 1) -> Optional[int]:
        args, col = self.args, self.col
        if name not in args or args[name] is True:
            if args.get(name) is True:
                raise col.fail(_flag(name), "needs a value")
            return None
        v = args[name]
        if isinstance(v, list):
            raise col.fail(_flag(name), f"expected one value, got {' '.join(v)}")
        if isinstance(v, str) and v.strip().lower() == "none":
            return None
        return col.integer(_flag(name), v, minimum)

    def on(self, name: str) -> bool:
        v = self.args.get(name)
        return v is True or (isinstance(v, str) and v.lower() == "true")


def _layout(a: _Args, col: Collector) -> tuple[int, int, Optional[int]]:
    """tp, pp, cp, ep, virtual stages, sequence parallelism, the distributed optimizer and recompute;
    returns (tp, pp, --num-layers)."""
    flag, num = _flag, a.num
    tp = num("tensor_model_parallel_size")
    pp = num("pipeline_model_parallel_size")
    for name, field, key in (("tp", tp, "tensor_model_parallel_size"), ("pp", pp, "pipeline_model_parallel_size")):
        if field is not None:
            col.take(name, field, flag(key))
        else:
            col.default(name, 1, f"Megatron-LM default ({flag(key)} not given)")
    tp = tp or 1
    pp = pp or 1
    for name, key in (("cp", "context_parallel_size"), ("ep", "expert_model_parallel_size")):
        v = num(key)
        if v is not None:
            col.take(name, v, flag(key))
    layers = num("num_layers")
    vpp = num("virtual_pipeline_model_parallel_size")
    per_stage = num("num_layers_per_virtual_pipeline_stage")
    if vpp is not None:
        col.take("virtual_stages", vpp, flag("virtual_pipeline_model_parallel_size"))
    elif per_stage is None:
        col.default("virtual_stages", 1, "Megatron-LM default: no interleaved pipeline schedule")
    else:
        if layers is None or layers % (pp * per_stage):
            raise col.fail(flag("num_layers_per_virtual_pipeline_stage"),
                           f"{per_stage} does not divide the {layers} layers per pipeline stage evenly")
        v = layers // pp // per_stage
        col.derived("virtual_stages", v, f"virtual stages {v} = {flag('num_layers')} {layers} / pp {pp} / "
                                         f"{flag('num_layers_per_virtual_pipeline_stage')} {per_stage}")
    _recompute_and_optimizer(a, col, tp)
    return tp, pp, layers


def _recompute_and_optimizer(a: _Args, col: Collector, tp: int) -> None:
    """Sequence parallelism, the distributed optimizer as ZeRO 1, and the recompute granularity."""
    args, on = a.args, a.on
    if on("sequence_parallel"):
        col.take("sequence_parallel", True, "--sequence-parallel")
    elif "sequence_parallel" not in args and tp > 1:
        col.default("sequence_parallel", False, "Megatron-LM default (--sequence-parallel not given)")
    if on("use_distributed_optimizer"):
        col.take("zero", 1, "--use-distributed-optimizer", "ZeRO 1 from --use-distributed-optimizer")
    else:
        col.default("zero", 0, "Megatron-LM default: optimizer state replicated (no --use-distributed-optimizer)")
    gran = args.get("recompute_granularity")
    if isinstance(gran, str):
        if gran not in ("full", "selective"):
            raise col.fail("--recompute-granularity", f"expected full or selective, got {gran!r}")
        col.take("recompute", gran, "--recompute-granularity")
        if gran == "full" and args.get("recompute_method") not in (None, True):
            col.approx(f"--recompute-method {args['recompute_method']} "
                       f"(--recompute-num-layers {args.get('recompute_num_layers', 1)}): mpg recomputes every layer "
                       "in full", "recompute")
    elif on("recompute_activations"):
        col.take("recompute", "selective", "--recompute-activations")
    else:
        col.default("recompute", "none", "Megatron-LM default (no --recompute-granularity)")


def _batch_precision_tokens(a: _Args, col: Collector) -> Optional[int]:
    """Micro and global batch, the precision (fp32 modelled as bf16), sequence length, steps or tokens;
    returns --seq-length."""
    args, num, on = a.args, a.num, a.on
    mb = num("micro_batch_size")
    if mb is not None:
        col.take("micro_batch", mb, "--micro-batch-size")
    else:
        col.default("micro_batch", 1, "--micro-batch-size not given")
        mb = 1
    gbs = num("global_batch_size")
    if gbs is not None:
        col.take("global_batch", gbs, "--global-batch-size")
    else:
        col.default("batch_per_replica", mb, "Megatron-LM default: global batch = micro-batch × dp")
    if "rampup_batch_size" in args:
        col.ignored("--rampup-batch-size", "batch ramp-up is not modelled: the whole run uses the final global batch")
    if "fp8_format" in args and args["fp8_format"] is not True:
        col.take("precision", "fp8", "--fp8-format", f"precision fp8 from --fp8-format {args['fp8_format']}")
    elif on("bf16"):
        col.take("precision", "bf16", "--bf16")
    elif on("fp16"):
        col.take("precision", "fp16", "--fp16")
    else:
        col.approx("precision: no --bf16/--fp16 means fp32 in Megatron-LM; mpg models 16-bit and fp8 training "
                   "only, so bf16 is used", "precision")
        col.values["precision"] = "bf16"
    seq = num("seq_length")
    if seq is not None:
        col.take("seq_length", seq, "--seq-length")
    iters = num("train_iters")
    samples = num("train_samples")
    if iters is not None:
        col.take("train_steps", iters, "--train-iters")
    elif samples is not None:
        if seq is None:
            raise col.fail("--seq-length", "missing: --train-samples needs it to count tokens")
        col.derived("tokens", float(samples * seq), f"tokens {samples * seq:.4g} = --train-samples {samples:,} × "
                                                    f"--seq-length {seq:,}")
    return seq


def _torchrun_gpus(col: Collector, gpu_flags: dict[str, int], tp: int, pp: int) -> None:
    """The GPU count torchrun starts (--nproc_per_node × --nnodes), when tp·pp·cp divides it."""
    nodes = gpu_flags.get("nnodes", 1)
    n = gpu_flags["nproc_per_node"] * nodes
    mp = tp * pp * (col.values.get("cp") or 1)
    if n % mp:
        col.warn(f"torchrun starts {n} GPUs (--nproc_per_node {gpu_flags['nproc_per_node']} × --nnodes {nodes}), "
                 f"which tp·pp·cp = {mp} does not divide: GPU count not taken from the file (set --gpus)")
    else:
        col.take("gpus", n, "torchrun", f"GPUs {n:,} from torchrun --nproc_per_node "
                                        f"{gpu_flags['nproc_per_node']} × --nnodes {nodes}")


def _model(args, col: Collector, num, on, flag, tp: int, layers: Optional[int], seq: Optional[int]) -> dict:
    need = {}
    for key in ("num_layers", "hidden_size", "num_attention_heads"):
        v = num(key)
        if v is None:
            raise col.fail(flag(key), "missing: the model shape needs --num-layers, --hidden-size and "
                                      "--num-attention-heads", hint="add it, or give the model with -m")
        need[key] = v
    h, heads = need["hidden_size"], need["num_attention_heads"]
    swiglu = on("swiglu")
    ffn = num("ffn_hidden_size")
    if ffn is None:
        ffn = int((4 * h * 2 / 3) / 64) * 64 if swiglu else 4 * h
        col.approx(f"FFN width {ffn:,}: Megatron-LM default for {'--swiglu' if swiglu else 'GeLU'} "
                   "(--ffn-hidden-size not given)")
    kv = num("num_query_groups") if on("group_query_attention") else None
    if seq is None:
        seq = num("max_position_embeddings")
        if seq is None:
            raise col.fail("--seq-length", "missing", hint="add --seq-length, or give the model with -m")
    pos = args.get("position_embedding_type", "learned_absolute")
    if on("use_rotary_position_embeddings"):
        pos = "rope"
    if on("no_position_embedding") and pos == "learned_absolute":
        pos = "none"
    pos_map = {"learned_absolute": "learned", "rope": "rope", "none": "none", "mrope": "rope"}
    if pos not in pos_map:
        raise col.fail("--position-embedding-type", f"{pos!r} is not one of {', '.join(pos_map)}")
    norm = str(args.get("normalization", "LayerNorm"))
    vocab = _vocab(args, col, num, tp)
    model: dict[str, Any] = {
        "name": _model_name(col.source), "description": f"from Megatron-LM arguments in {col.source}",
        "source": col.source, "layers": need["num_layers"], "hidden_size": h, "heads": heads,
        "ffn_hidden_size": ffn, "ffn_type": "swiglu" if swiglu else "gelu", "vocab_size": vocab, "seq_length": seq,
        "tied_embeddings": not on("untie_embeddings_and_output_weights"), "position_embedding": pos_map[pos],
        "linear_biases": not on("disable_bias_linear"), "norm": "rmsnorm" if norm.lower() == "rmsnorm" else "layernorm",
    }
    if kv is not None:
        model["kv_heads"] = kv
    if on("add_qkv_bias") and on("disable_bias_linear"):
        model["qkv_bias"] = True
    kvc = num("kv_channels")
    if kvc is not None:
        model["head_dim"] = kvc
    experts = num("num_experts")
    if experts is not None:
        moe: dict[str, Any] = {"experts": experts, "top_k": num("moe_router_topk") or 2,
                               "expert_ffn_hidden_size": num("moe_ffn_hidden_size") or ffn}
        if "moe_router_topk" not in args:
            col.approx("MoE top-k 2: Megatron-LM default (--moe-router-topk not given)")
        shared = num("moe_shared_expert_intermediate_size")
        if shared is not None:
            moe.update(shared_experts=1, shared_expert_ffn_hidden_size=shared)
        model["moe"] = moe
    col.notes.append(Note(
        "from", f"model shape from {flag('num_layers')} {need['num_layers']}, {flag('hidden_size')} {h:,}, "
                f"{flag('num_attention_heads')} {heads}" + (f", --num-query-groups {kv}" if kv else "")
                + f", FFN {ffn:,}{' SwiGLU' if swiglu else ''}, vocab {vocab:,}", "model"))
    return model


def _vocab(args, col: Collector, num, tp: int) -> int:
    for key in ("padded_vocab_size",):
        v = num(key)
        if v is not None:
            return v
    div = num("make_vocab_size_divisible_by") or 128
    raw = num("vocab_size")
    how = "--vocab-size"
    if raw is None:
        ttype = str(args.get("tokenizer_type", "GPT2BPETokenizer" if "vocab_file" in args else "")).lower()
        model_path = str(args.get("tokenizer_model", "")).lower()
        raw = TOKENIZER_VOCAB.get(ttype)
        how = f"--tokenizer-type {args.get('tokenizer_type', 'GPT2BPETokenizer (with --vocab-file)')}"
        if raw is None:
            for hint, size in TOKENIZER_MODEL_HINTS:
                if hint in model_path:
                    raw, how = size, f"--tokenizer-model {args.get('tokenizer_model')}"
                    break
    if raw is None:
        raw, how = 50257, "no tokenizer the file names: GPT-2 BPE assumed"
        col.warn("vocabulary size unknown (no --vocab-size, --padded-vocab-size or known tokenizer): assumed "
                 "GPT-2's 50,257; give the model with -m or --from config.json for the exact count")
    padded = _padded(raw, div, tp)
    col.approx(f"vocabulary {padded:,}: {raw:,} from {how}, padded to a multiple of {div} × tp {tp} "
               "(Megatron-LM --make-vocab-size-divisible-by)")
    return padded


def _model_name(source: str) -> str:
    from pathlib import PurePath

    return PurePath(source).stem or "megatron-model"


def read(text: str, source: str) -> TrainConfig:
    """Read a Megatron-LM argument list or launch script."""
    col = Collector(NAME, source)
    tokens, gpu_flags = script_tokens(text, source)
    args = arguments(tokens)
    if not args:
        raise col.fail("arguments", "no --flag arguments found",
                       hint="give a Megatron-LM launch script or an argument list (--num-layers 32 …)")
    return from_arguments(args, col, gpu_flags)


def looks_like(text: str) -> bool:
    return bool(re.search(r"--(num-layers|tensor-model-parallel-size|hidden-size|num-attention-heads)\b", text)) \
        or "pretrain_gpt" in text


# ---------------------------------------------------------------- the argument block of a Megatron-LM log

LOG_ARGUMENT = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s+\.{2,}\s*(\S.*?)\s*$")
LOG_LAYOUT = {"tensor_model_parallel_size": "tp", "pipeline_model_parallel_size": "pp",
              "context_parallel_size": "cp", "micro_batch_size": "micro_batch"}


def log_argument(line: str) -> Optional[tuple[str, str]]:
    """('tensor_model_parallel_size', '8') from a '  tensor_model_parallel_size ...... 8' log line."""
    m = LOG_ARGUMENT.match(line)
    return (m.group(1), m.group(2)) if m else None


def log_layout(args: dict[str, str]) -> dict[str, int]:
    """The layout (tp, pp, cp, micro-batch) from a log's printed arguments (whole numbers only)."""
    out: dict[str, int] = {}
    for key, name in LOG_LAYOUT.items():
        v = args.get(key)
        if v is not None and v.isdigit():
            out[name] = int(v)
    return out
