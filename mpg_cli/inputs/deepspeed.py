"""DeepSpeed JSON config (``ds_config.json``).

Keys follow DeepSpeed's configuration reference (deepspeed.ai/docs/config-json): ``train_batch_size``
= ``train_micro_batch_size_per_gpu`` × ``gradient_accumulation_steps`` × data-parallel GPUs (any two
give the third); ``zero_optimization.stage`` 0-3 (default 0); ``offload_optimizer``/``offload_param``
move states to CPU or NVMe; ``bf16.enabled``/``fp16.enabled`` (default off: fp32);
``activation_checkpointing`` configures ``deepspeed.checkpointing`` for models that call it.
``"auto"`` values are filled in by the Hugging Face Trainer integration at run time; mpg leaves them
to its own defaults and says so. A DeepSpeed config has no model: combine it with ``-m`` or another
``--from`` (e.g. the model's config.json). DeepSpeed does not validate unknown keys; mpg warns.
"""

from __future__ import annotations

import json
from typing import Any

from .base import Collector, TrainConfig

NAME = "deepspeed"

TOP = {"train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "optimizer", "scheduler",
       "fp16", "bf16", "amp", "zero_optimization", "gradient_clipping", "steps_per_print", "wall_clock_breakdown",
       "dump_state", "prescale_gradients", "gradient_predivide_factor", "sparse_gradients",
       "zero_allow_untested_optimizer", "activation_checkpointing", "flops_profiler", "tensorboard", "wandb",
       "csv_monitor", "comet", "comms_logger", "aio", "data_efficiency", "curriculum_learning", "compression_training",
       "elasticity", "autotuning", "checkpoint", "data_types", "communication_data_type",
       "seq_parallel_communication_data_type", "pipeline", "sparse_attention", "memory_breakdown",
       "zero_force_ds_cpu_optimizer", "torch_autocast", "monitor_config", "load_universal_checkpoint",
       "use_node_local_storage", "hybrid_engine", "nebula", "weight_quantization", "eigenvalue",
       "progressive_layer_drop", "quantize_training", "disable_allgather", "fp32_allreduce", "dataloader_drop_last",
       "graph_harvesting", "compile", "train_batch_size_per_gpu", "timers", "mics_shard_size", "pld",
       "zero_quantized_weights", "zero_quantized_gradients", "tensor_parallel", "sequence_parallel_size"}
ZERO = {"stage", "allgather_partitions", "allgather_bucket_size", "overlap_comm", "reduce_scatter",
        "reduce_bucket_size", "contiguous_gradients", "offload_param", "offload_optimizer", "cpu_offload",
        "cpu_offload_params", "cpu_offload_use_pin_memory", "stage3_max_live_parameters", "stage3_max_reuse_distance",
        "stage3_prefetch_bucket_size", "stage3_param_persistence_threshold", "stage3_gather_16bit_weights_on_model_save",
        "stage3_gather_fp16_weights_on_model_save", "sub_group_size", "round_robin_gradients", "zero_hpz_partition_size",
        "zero_quantized_weights", "zero_quantized_gradients", "zero_quantized_nontrainable_weights", "mics_shard_size",
        "mics_hierarchical_params_gather", "memory_efficient_linear", "elastic_checkpoint", "load_from_fp32_weights",
        "ignore_unused_parameters", "legacy_stage1", "use_multi_rank_bucket_allreduce", "pipeline_loading_checkpoint",
        "override_module_apply", "module_granularity_threshold", "use_all_reduce_for_fetch_params",
        "stage3_module_granularity_threshold", "log_trace_cache_warnings", "zeropp_loco_param", "offload_ratio",
        "reduce_scatter_bucket_size"}
ACT = {"partition_activations", "cpu_checkpointing", "contiguous_memory_optimization", "number_checkpoints",
       "synchronize_checkpoint_boundary", "profile"}


def looks_like(data: Any) -> bool:
    return isinstance(data, dict) and bool({"zero_optimization", "train_batch_size", "train_micro_batch_size_per_gpu",
                                            "gradient_accumulation_steps"} & set(data))


def parse(text: str, source: str) -> Any:
    from ..errors import PresetError

    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PresetError(f"{source}: malformed JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None


def from_dict(data: dict, source: str) -> TrainConfig:
    col = Collector(NAME, source)
    col.unknown([k for k in data if k not in TOP])
    autos: list[str] = []  # keys set to "auto" (the Hugging Face Trainer fills them in)
    _batch(col, data, autos)
    if "pipeline" in data or "tensor_parallel" in data:
        col.ignored("pipeline/tensor_parallel", "model-parallel sizes live in the training script; set --tp/--pp")
    else:
        col.default("tp", 1, "a DeepSpeed ZeRO config is data parallel (model parallelism lives in the model code)")
        col.default("pp", 1, "no pipeline section")
    _zero(col, data.get("zero_optimization"))
    _precision_and_recompute(col, data, autos)
    if autos:
        col.ignored(", ".join(autos) + " \"auto\"", "the Hugging Face Trainer fills them in at run time; mpg's "
                    "flags and defaults apply")
    quiet = [k for k in ("optimizer", "scheduler", "gradient_clipping", "steps_per_print", "wall_clock_breakdown")
             if k in data]
    if quiet:
        col.ignored(", ".join(quiet), "no effect on time or memory in mpg")
    return col.build()


def _count(col: Collector, autos: list[str], data: dict, key: str) -> Any:
    """A batch count, None when absent or "auto" (then noted in ``autos``)."""
    if key not in data:
        return None
    if data[key] == "auto":
        autos.append(key)
        return None
    return col.integer(key, data[key])


def _batch(col: Collector, data: dict, autos: list[str]) -> None:
    """Micro-batch, global batch, and dp = train_batch_size / (micro-batch × gradient accumulation)."""
    tbs = _count(col, autos, data, "train_batch_size")
    mb = _count(col, autos, data, "train_micro_batch_size_per_gpu")
    gas = _count(col, autos, data, "gradient_accumulation_steps")
    if mb is not None:
        col.take("micro_batch", mb, "train_micro_batch_size_per_gpu")
    if tbs is not None:
        col.take("global_batch", tbs, "train_batch_size")
        if mb is not None and gas is not None:
            if tbs % (mb * gas):
                raise col.fail("train_batch_size", f"{tbs} is not train_micro_batch_size_per_gpu {mb} × "
                                                   f"gradient_accumulation_steps {gas} × a whole number of GPUs")
            dp = tbs // (mb * gas)
            col.derived("dp", dp, f"dp {dp} = train_batch_size {tbs} / (micro-batch {mb} × gradient accumulation {gas})")
            if "pipeline" not in data and "tensor_parallel" not in data:
                col.derived("gpus", dp, f"GPUs {dp:,} = dp (data parallel only)")
    elif mb is not None:
        g = gas if gas is not None else 1
        col.derived("batch_per_replica", mb * g, f"global batch = micro-batch {mb} × gradient_accumulation_steps "
                                                 f"{g}{'' if gas is not None else ' (default)'} × dp")


def _zero(col: Collector, zero: Any) -> None:
    """zero_optimization: the stage, and a warning for each offload (not modelled)."""
    if zero is None:
        col.default("zero", 0, "DeepSpeed default (no zero_optimization)")
    else:
        if not isinstance(zero, dict):
            raise col.fail("zero_optimization", f"expected an object, got {zero!r}")
        col.unknown([f"zero_optimization.{k}" for k in zero if k not in ZERO])
        stage = zero.get("stage", 0)
        if stage not in (0, 1, 2, 3) or isinstance(stage, bool):
            raise col.fail("zero_optimization.stage", f"expected 0, 1, 2 or 3, got {stage!r}")
        col.take("zero", stage, "zero_optimization.stage")
        for key in ("offload_optimizer", "offload_param"):
            off = zero.get(key)
            device = off.get("device", "none") if isinstance(off, dict) else None
            if device not in (None, "none"):
                what = "optimizer states" if key == "offload_optimizer" else "parameters"
                col.warn(f"zero_optimization.{key}.device {device}: offload is not modelled; memory counts the "
                         f"{what} on the GPU and time has no offload traffic")
        if zero.get("cpu_offload"):
            col.warn("zero_optimization.cpu_offload: offload is not modelled")


def _precision_and_recompute(col: Collector, data: dict, autos: list[str]) -> None:
    """bf16/fp16 sections as the precision (fp32 training is modelled as bf16), activation checkpointing as full
    recompute."""
    bf = data.get("bf16") or {}
    fp = data.get("fp16") or {}
    for name, sec in (("bf16", bf), ("fp16", fp)):
        if not isinstance(sec, dict):
            raise col.fail(name, f"expected an object like {{\"enabled\": true}}, got {sec!r}")
    if bf.get("enabled") == "auto" or fp.get("enabled") == "auto":
        autos.append("bf16/fp16.enabled")
    elif bf.get("enabled") is True:
        col.take("precision", "bf16", "bf16.enabled")
    elif fp.get("enabled") is True:
        col.take("precision", "fp16", "fp16.enabled")
    else:
        col.approx("precision: neither bf16.enabled nor fp16.enabled (DeepSpeed trains in fp32); mpg models "
                   "16-bit and fp8 training only, so bf16 is used", "precision")
        col.values["precision"] = "bf16"
    act = data.get("activation_checkpointing")
    if isinstance(act, dict):
        col.unknown([f"activation_checkpointing.{k}" for k in act if k not in ACT])
        col.take("recompute", "full", "activation_checkpointing",
                 "recompute full from activation_checkpointing (assumes the model calls deepspeed.checkpointing)")
        if act.get("cpu_checkpointing"):
            col.warn("activation_checkpointing.cpu_checkpointing: offload is not modelled")
