"""torchtitan ``train_configs/*.toml`` (the JobConfig TOML).

Keys and defaults follow torchtitan's ``torchtitan/config/job_config.py`` (2025): ``[training]``
``local_batch_size`` (older: ``batch_size``) = 8, ``global_batch_size`` = -1 (local × dp; larger means
gradient accumulation), ``seq_len`` = 2048, ``steps`` = 10000, ``mixed_precision_param`` = bfloat16;
``[parallelism]`` ``data_parallel_replicate_degree`` = 1, ``data_parallel_shard_degree`` = -1 (the
GPUs left over), tensor/pipeline/context/expert degrees = 1; ``[activation_checkpoint] mode`` =
selective; float8 training when ``[model] converters`` holds "float8" (older:
``[float8] enable_float8_linear``). torchtitan's tensor parallel plan always shards the norms'
sequence dimension (sequence parallelism on with tp > 1).

``[model] flavor`` names map to mpg's built-in presets where mpg has that model (llama3 8B/70B/405B,
llama2 7B/13B/70B, deepseek_v3 671B). HSDP (replicate × shard) is mapped to ZeRO-3 over
dp = replicate × shard and said to be an approximation: mpg shards the states over the whole dp
group, HSDP only over the shard group, so it under-counts HSDP's per-GPU state memory.

TOML needs ``tomllib`` (Python 3.11+) or the ``tomli`` backport on 3.10.
"""

from __future__ import annotations

import sys
from typing import Any

from .base import Collector, TrainConfig

NAME = "torchtitan"

FLAVORS = {
    ("llama3", "8B"): "llama3-8b", ("llama3", "70B"): "llama3-70b", ("llama3", "405B"): "llama3-405b",
    ("llama2", "7B"): "llama2-7b", ("llama2", "13B"): "llama2-13b", ("llama2", "70B"): "llama2-70b",
    ("deepseek_v3", "671B"): "deepseek-v3",
}

KNOWN: dict[str, set[str]] = {
    "job": {"config_file", "dump_folder", "description", "use_for_integration_test", "print_args", "print_config"},
    "profiling": {"enable_profiling", "save_traces_folder", "profile_freq", "enable_memory_snapshot",
                  "save_memory_snapshot_folder", "profiler_active", "profiler_warmup"},
    "metrics": {"log_freq", "enable_tensorboard", "disable_color_printing", "save_tb_folder", "save_for_all_ranks",
                "enable_wandb", "enable_color_printing"},
    "model": {"name", "flavor", "tokenizer_path", "hf_assets_path", "converters", "norm_type", "print_after_conversion"},
    "optimizer": {"name", "lr", "eps", "beta1", "beta2", "weight_decay", "implementation", "early_step_in_backward"},
    "lr_scheduler": {"warmup_steps", "decay_ratio", "decay_type", "lr_min", "min_lr_factor"},
    "training": {"local_batch_size", "batch_size", "global_batch_size", "seq_len", "steps", "max_norm",
                 "mixed_precision_param", "mixed_precision_reduce", "dataset", "dataset_path", "compile",
                 "warmup_steps", "gc_freq", "seed", "deterministic", "enable_cpu_offload", "data_parallel_degree",
                 "tensor_parallel_degree", "enable_async_tensor_parallel", "lr", "fsdp_reshard_after_forward",
                 "gc_debug", "debug_moe_force_load_balance"},
    "parallelism": {"data_parallel_replicate_degree", "data_parallel_shard_degree", "tensor_parallel_degree",
                    "pipeline_parallel_degree", "context_parallel_degree", "expert_parallel_degree",
                    "expert_tensor_parallel_degree", "enable_async_tensor_parallel", "pipeline_parallel_schedule",
                    "pipeline_parallel_schedule_csv", "pipeline_parallel_microbatch_size",
                    "pipeline_parallel_split_points", "pipeline_parallel_layers_per_stage",
                    "module_fqns_per_model_part", "fsdp_reshard_after_forward", "disable_loss_parallel",
                    "enable_compiled_autograd", "context_parallel_rotate_method", "pipeline_parallel_degree_first",
                    "pipeline_parallel_first_stage_less_layers", "pipeline_parallel_last_stage_less_layers"},
    "checkpoint": {"enable_checkpoint", "enable", "folder", "interval", "interval_type", "model_weights_only",
                   "last_save_model_weights_only", "last_save_model_only", "export_dtype", "async_mode",
                   "keep_latest_k", "load_step", "initial_load_path", "initial_load_model_only",
                   "initial_load_model_weights_only", "exclude_from_loading", "create_seed_checkpoint",
                   "enable_first_step_checkpoint", "load_only"},
    "activation_checkpoint": {"mode", "selective_ac_option", "per_op_sac_force_recompute_mm_shapes_by_fqns",
                              "early_stop", "memory_budget"},
    "float8": {"enable_float8_linear", "enable_fsdp_float8_all_gather", "precompute_float8_dynamic_scale_for_fsdp",
               "force_recompute_fp8_weight_in_bwd", "filter_fqns", "recipe_name", "emulate",
               "moe_fqns_prototype", "scaling_type_input", "scaling_type_weight", "scaling_type_grad_output"},
    "mx": {"mxfp8_dim1_cast_kernel_choice", "recipe_name", "filter_fqns", "use_fp8_dim1_cast_triton_kernel"},
    "comm": {"init_timeout_seconds", "train_timeout_seconds", "trace_buf_size", "save_traces_folder"},
    "memory_estimation": {"enabled", "disable_fake_mode"},
    "experimental": {"custom_import", "custom_args_module", "pipeline_parallel_degree", "enable_async_tensor_parallel",
                     "context_parallel_degree", "pipeline_parallel_schedule", "pipeline_parallel_split_points"},
    "validation": {"enable", "enabled", "dataset", "dataset_path", "local_batch_size", "seq_len", "freq", "steps"},
    "compile": {"enable", "components"},
    "fault_tolerance": {"enable", "replica_id", "group_size", "min_replica_size", "semi_sync_method"},
}


def _toml():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10: the tomli backport (a dependency there)
        import tomli as tomllib
    return tomllib


def parse(text: str, source: str) -> dict:
    tomllib = _toml()
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        from ..errors import PresetError

        raise PresetError(f"{source}: malformed TOML: {exc}", hint="check the [section] headers and key = value "
                          "lines") from None


def read(text: str, source: str) -> TrainConfig:
    return from_dict(parse(text, source), source)


def looks_like(data: Any) -> bool:
    return isinstance(data, dict) and bool({"parallelism", "training", "model", "job"} & set(data))


def from_dict(data: dict, source: str) -> TrainConfig:
    col = Collector(NAME, source)
    unknown = []
    for sec, body in data.items():
        if sec not in KNOWN:
            unknown.append(f"[{sec}]")
        elif isinstance(body, dict):
            unknown.extend(f"{sec}.{k}" for k in body if k not in KNOWN[sec])
        else:
            raise col.fail(sec, f"expected a [{sec}] table, got {body!r}")
    col.unknown(unknown)
    unused = [f"[{sec}]" for sec in data if sec in KNOWN and sec not in (
        "model", "training", "parallelism", "experimental", "activation_checkpoint", "float8")]
    if unused:
        col.ignored(", ".join(unused), "no effect on time or memory in mpg")

    def sect(name: str) -> dict:
        return data.get(name) or {}

    model, training, par = sect("model"), sect("training"), sect("parallelism")
    degrees = _Degrees(col, (("parallelism", par), ("experimental", sect("experimental")), ("training", training)))
    name, flavor = model.get("name"), model.get("flavor")
    if flavor is not None:
        ref = FLAVORS.get((str(name), str(flavor)))
        if ref is None:
            known = ", ".join(f"{n} {f}" for n, f in FLAVORS)
            raise col.fail("model.flavor", f"no built-in mpg model for {name} {flavor!r}",
                           hint=f"give the model with -m (a preset or config.json); known flavors: {known}")
        col.take("model_ref", ref, "model.flavor", f"model {ref} from model.name {name!r}, model.flavor {flavor!r}")
    pp = _layout(col, degrees, training, par, sect("activation_checkpoint"))
    _batch(col, training, par, pp)
    _precision(col, model, training, sect("float8"))
    if training.get("enable_cpu_offload"):
        col.warn("training.enable_cpu_offload: CPU offload is not modelled (memory counts the states on the GPU)")
    return col.build()


class _Degrees:
    """Parallel degrees, looked up in [parallelism], then [experimental], then [training] (older torchtitan)."""

    def __init__(self, col: Collector, sections: tuple[tuple[str, dict], ...]) -> None:
        self.col, self.sections = col, sections

    def __call__(self, key: str, *, allow_rest: bool = False) -> tuple[int, str]:
        """(degree, 'section.key'); absent: 1, or -1 ('the rest') with ``allow_rest``, and an empty key."""
        for where, d in self.sections:
            if key in d:
                v = d[key]
                if allow_rest and v == -1:
                    return -1, f"{where}.{key}"
                return self.col.integer(f"{where}.{key}", v), f"{where}.{key}"
        return (-1 if allow_rest else 1), ""


def _layout(col: Collector, degree: _Degrees, training: dict, par: dict, ac: dict) -> int:
    """tp, pp, cp, ep, the data-parallel degrees as dp and a ZeRO stage, the GPU count, virtual stages,
    sequence parallelism and recompute; returns pp."""
    tp, tp_key = degree("tensor_parallel_degree")
    pp, pp_key = degree("pipeline_parallel_degree")
    cp, cp_key = degree("context_parallel_degree")
    ep, ep_key = degree("expert_parallel_degree")
    for field, v, key in (("tp", tp, tp_key), ("pp", pp, pp_key), ("cp", cp, cp_key), ("ep", ep, ep_key)):
        if key:
            col.take(field, v, key)
        elif field in ("tp", "pp"):
            col.default(field, 1, f"torchtitan default ({field} degree not given)")
    _data_parallel(col, degree, training, (tp, pp, cp))
    sched = str(par.get("pipeline_parallel_schedule", "1F1B"))
    if pp > 1 and "interleaved" not in sched.lower() and "looped" not in sched.lower() and "zb" not in sched.lower():
        col.default("virtual_stages", 1, f"pipeline schedule {sched} (one stage per GPU)")
    if tp > 1:
        col.default("sequence_parallel", True, "torchtitan's tensor-parallel plan shards the sequence (on with tp > 1)")
    mode = ac.get("mode")
    if mode is None:
        col.default("recompute", "selective", "torchtitan default (activation_checkpoint.mode not given)")
    else:
        if mode not in ("none", "selective", "full"):
            raise col.fail("activation_checkpoint.mode", f"expected none, selective or full, got {mode!r}")
        col.take("recompute", mode, "activation_checkpoint.mode")
        if mode == "selective" and ac.get("selective_ac_option", "op") != "op":
            col.approx(f"activation_checkpoint.selective_ac_option {ac['selective_ac_option']!r} (every n-th layer "
                       "in full) is modelled as selective recomputation", "recompute")
    return pp


def _data_parallel(col: Collector, degree: _Degrees, training: dict, model_parallel: tuple[int, int, int]) -> None:
    """Replicate × shard degrees: DDP (shard 1) or FSDP/HSDP as ZeRO-3, dp, and the GPU count when all are given."""
    rep, rep_key = degree("data_parallel_replicate_degree")
    shard, shard_key = degree("data_parallel_shard_degree", allow_rest=True)
    if "data_parallel_degree" in training and not shard_key:  # torchtitan before 2024-08
        shard, shard_key = col.integer("training.data_parallel_degree", training["data_parallel_degree"]) \
            if training["data_parallel_degree"] != -1 else -1, "training.data_parallel_degree"
    shard_text = shard_key or "data_parallel_shard_degree (default -1)"
    if shard == 1:
        col.take("zero", 0, shard_text, f"ZeRO 0 (DDP) from {shard_text} 1")
        if rep > 1:
            col.take("dp", rep, rep_key, f"dp {rep} from {rep_key}")
    else:
        col.take("zero", 3, shard_text, f"ZeRO 3 (FSDP) from {shard_text} {shard}")
        if rep > 1:
            col.approx(f"HSDP: {rep_key} {rep} × {shard_text} {shard} mapped to ZeRO-3 over dp = replicate × "
                       "shard; mpg shards the states over all of dp, HSDP only within a shard group, so per-GPU "
                       "state memory is under-counted", "zero")
        if shard != -1:
            dp = rep * shard
            col.take("dp", dp, shard_text, f"dp {dp} = replicate {rep} × shard {shard}")
    if shard != -1:
        tp, pp, cp = model_parallel
        n = rep * max(shard, 1) * tp * pp * cp
        col.derived("gpus", n, f"GPUs {n:,} = replicate {rep} × shard {max(shard, 1)} × tp {tp} × pp {pp} × cp {cp}")


def _batch(col: Collector, training: dict, par: dict, pp: int) -> None:
    """Local and global batch, the micro-batch (the pipeline's, or the local batch), sequence length and steps."""
    lkey = "local_batch_size" if "local_batch_size" in training else ("batch_size" if "batch_size" in training else "")
    local = col.integer(f"training.{lkey}", training[lkey]) if lkey else 8
    if not lkey:
        col.notes.append(_note("default", "local batch 8: torchtitan default (training.local_batch_size not given)"))
    gkey = "training.global_batch_size"
    gbs = training.get("global_batch_size", -1)
    if gbs not in (-1, None):
        col.take("global_batch", col.integer(gkey, gbs), gkey)
    else:
        col.take("batch_per_replica", local, f"training.{lkey or 'local_batch_size'}",
                 f"global batch = training.{lkey or 'local_batch_size'} {local} × dp (torchtitan: global_batch_size -1)")
    if pp > 1:
        mbk = "parallelism.pipeline_parallel_microbatch_size"
        mb = col.integer(mbk, par["pipeline_parallel_microbatch_size"]) if "pipeline_parallel_microbatch_size" in par else 1
        col.take("micro_batch", mb, mbk if "pipeline_parallel_microbatch_size" in par else "torchtitan default "
                 "pipeline_parallel_microbatch_size 1")
    else:
        col.take("micro_batch", local, f"training.{lkey}" if lkey else "torchtitan default local batch 8")
    if "seq_len" in training:
        col.take("seq_length", col.integer("training.seq_len", training["seq_len"]), "training.seq_len")
    else:
        col.default("seq_length", 2048, "torchtitan default (training.seq_len not given)")
    if "steps" in training:
        col.take("train_steps", col.integer("training.steps", training["steps"]), "training.steps")
    else:
        col.default("train_steps", 10000, "torchtitan default (training.steps not given)")


def _precision(col: Collector, model: dict, training: dict, fl8: dict) -> None:
    """fp8 from float8 converters, else the mixed-precision parameter dtype (float32 modelled as bf16)."""
    converters = model.get("converters") or []
    if isinstance(converters, str):
        converters = [converters]
    if "float8" in converters or fl8.get("enable_float8_linear") is True:
        key = "model.converters" if "float8" in converters else "float8.enable_float8_linear"
        col.take("precision", "fp8", key, f"precision fp8 from {key} (float8 linear layers)")
    else:
        mp = training.get("mixed_precision_param", "bfloat16")
        if mp == "bfloat16":
            if "mixed_precision_param" in training:
                col.take("precision", "bf16", "training.mixed_precision_param")
            else:
                col.default("precision", "bf16", "torchtitan default mixed_precision_param bfloat16")
        elif mp == "float32":
            col.approx("training.mixed_precision_param float32: mpg models 16-bit and fp8 training only; bf16 used",
                       "precision")
            col.values["precision"] = "bf16"
        else:
            raise col.fail("training.mixed_precision_param", f"expected bfloat16 or float32, got {mp!r}")


def _note(kind: str, text: str):
    from .base import Note

    return Note(kind, text)
