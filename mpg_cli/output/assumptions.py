"""The words for an estimate's assumptions: one sentence per record (``core.assumptions.Assumption``).

The core says what it assumed, with the value, its source and the flags that override it; this module says it
in English for the table, Markdown and JSON outputs (JSON keeps ``assumptions`` as a list of these sentences,
schema 1). Each ``what`` has one wording function; a record nobody words raises, so a new one cannot go
unsaid.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

from ..core.assumptions import Assumption
from ..core.search import BATCH_TOLERANCE
from ..humanize import days_text

_DIMENSION_NAMES = {"micro_batch": "micro-batch", "virtual_stages": "virtual stages", "zero": "ZeRO"}


def _set(a: Assumption) -> str:
    """'; set --flag' for an assumption one flag overrides."""
    return f"; set {a.flags[0]}" if a.flags else ""


def _note(a: Assumption) -> str:
    return str(a.value)


def _tokens(a: Assumption) -> str:
    return f"tokens: {a.detail['per_param']:g} per parameter ({a.source}) = {a.value:.3g}{_set(a)}"


def _global_batch(a: Assumption) -> str:
    d, gbs = a.detail, a.value
    head = f"global batch: {gbs:,} sequences = {gbs * d['seq'] / 1e6:.2f}M tokens"
    if gbs == d["default"]:
        return f"{head} ({a.source}, the same for every layout and GPU count){_set(a)}"
    if abs(gbs - d["default"]) <= d["default"] * BATCH_TOLERANCE:
        return (f"{head}: {d['gpus']:,} GPUs split {a.source} ({d['default']:,} sequences) poorly or not at all, so "
                f"the batch within 1/8 of it whose fastest layout is fastest per sequence is used{_set(a)}")
    return (f"{head}: no data-parallel size of {d['gpus']:,} GPUs divides {a.source} ({d['default']:,} sequences) "
            f"or a batch within 1/8 of it, so the nearest batch one of them divides is used{_set(a)}")


def _layout(a: Assumption) -> str:
    what = "completed" if a.detail["completed"] else "chosen"
    filled = ", ".join(f"{_DIMENSION_NAMES.get(d, d)} {v}" for d, v in a.value)
    return (f"layout {what} by search: fastest fitting of {a.detail['evaluated']:,} evaluated; searched: "
            f"{filled}; fix any with --tp/--pp/--zero/...")


def _pipeline_split(a: Assumption) -> str:
    d = a.detail
    return (f"uneven pipeline split: {d['layers']} layers over {a.value} stages, at most {d['per_stage']} per stage "
            f"(first {d['first']}, last {d['last']}: the end stages give up the shortfall, {a.source}); the fullest "
            "stage sets time and memory")


def _sequence_parallel(a: Assumption) -> str:
    return f"sequence parallelism on with tp > 1 ({a.source})"


def _flops_convention(a: Assumption) -> str:
    return (f"FLOPs: {a.source} (GEMMs only, full s² attention, no causal saving); "
            "hardware FLOPs add recomputation")


def _throughput(a: Assumption) -> str:
    d = a.detail
    if a.source == "--tflops":
        return (f"achieved throughput: {a.value:g} hardware TFLOP/s per GPU (given, recompute counted); "
                f"time uses the full FLOP count (Narayanan 2021 eq. 3 generalised); eq. 4's "
                f"{d['eq4_factor']}·T·P/(n·X) approximation gives {d['eq4_days']:.1f} days")
    if a.source == "--mfu":
        return f"achieved throughput: MFU {a.value:.1%} of the dense {d['precision']} peak (given)"
    return "achieved throughput: predicted by the step-time model " + accuracy_text(d["runs"], d["errors"])


def accuracy_text(runs: Any, errors: Iterable[tuple[str, float]]) -> str:
    """'(fitted on 46 published runs; median error on unseen sources: dense-bf16 9%, hopper 8%; see mpg validate)'."""
    parts = [f"{k} {e:.0%}" for k, e in errors]
    fitted = f"fitted on {runs} published runs" if runs is not None else "fitted on published runs"
    if not parts:
        return f"({fitted}; see mpg validate)"
    return f"({fitted}; median error on unseen sources: {', '.join(parts)}; see mpg validate)"


def _step_time_model(a: Assumption) -> str:
    v = a.value
    grb = v["grad_reduce_bytes"]
    grads = "bf16 with ZeRO-3/FSDP, fp32 otherwise" if grb is None else f"{grb:g} B"
    text = (f"step-time model: {'FlashAttention' if v['flash_attention'] else 'materialised attention scores'} "
            f"(--[no-]flash-attention); gradient reduction {'overlapped with' if v['overlap_grad_reduce'] else 'after'} "
            f"the last backward (--[no-]overlap-grad-reduce); TP communication "
            f"{'overlapped' if v['tp_comm_overlap'] else 'not overlapped'} (--[no-]tp-comm-overlap); gradients "
            f"reduced in {grads}; attention kernel {v['attention_kernel']} (--attention-kernel)")
    if "sharded_impl" in v:
        text += f"; ZeRO-3 as {v['sharded_impl']} (--sharded-impl)"
    if "a2a_overlap" in v:
        text += (f"; MoE all-to-all {v['a2a_overlap']:.0%} overlapped (--a2a-overlap), expert imbalance "
                 f"{v['expert_imbalance']:g} (--expert-imbalance), node-limited routing "
                 f"{v['node_limited_routing'] or 'off'} (--node-limited-routing)")
    return text


def _calibration(a: Assumption) -> str:
    return f"calibration applied: measured/predicted = {a.value:.3f} ({a.source})"


def _price(a: Assumption) -> str:
    return f"price: ${a.value:g}/GPU-hour from the {a.source} preset ({a.detail['as_of']}){_set(a)}"


def _energy(a: Assumption) -> str:
    v = a.value
    return (f"energy: GPUs at TDP {v['tdp_watts']:g} W × PUE {v['pue']:g} over the wall time"
            + ("" if a.detail["pue_in_preset"] else " (not in the cluster preset)") + "; excludes CPUs and network")


def _memory(a: Assumption) -> str:
    v, d = a.value, a.detail
    opt = v["optimizer"]
    if d["fsdp"]:
        states = (f"FSDP: fp32 parameter shard (the master copy), fp32 gradient shard and "
                  f"{d['optimizer_bytes'] - 4:g} B/param {opt} moments, all sharded, plus two live "
                  "bf16 units and one unit's gradient")
    else:
        states = (f"2 B/param 16-bit weights, {d['grad_bytes']:g} B/param gradients, "
                  f"{d['optimizer_bytes']:g} B/param {opt} states with fp32 master weights"
                  + (" (DeepSpeed ZeRO-3 accounting)" if d["zero3"] else ""))
    fp8_note = "; FP8: +1 B/param FP8 weight copy, GEMM inputs saved in FP8" if d["fp8"] else ""
    return (f"memory: {states}{fp8_note}; {'dropout masks' if d['dropout'] else 'no dropout masks'}; "
            f"{v['loss_impl']} cross-entropy ({d['loss_bytes']:g} B per logit); "
            f"{v['reserved_gib']:g} GiB CUDA/NCCL in use; one margin: {v['headroom_fraction']:.0%} of capacity "
            f"kept free for the allocator ({', '.join(a.flags)})")


def _goodput(a: Assumption) -> str:
    if a.source == "--goodput":
        return f"goodput: fixed at {a.value:.0%} of wall time (--goodput); the failure and checkpoint model is off"
    d = a.detail
    write = d["checkpoint_write_s"]
    return (
        f"goodput {a.value:.1%} (steady / wall time, {a.source}): failures "
        f"{d['failures_per_gpu_hour']:.2e}/GPU-hour ({d['failures_source']}; --failures-per-gpu-hour) → job MTBF "
        f"{d['job_mtbf_hours']:.3g} h; checkpoint "
        f"{d['checkpoint_bytes'] / 1e12:.3g} TB ({d['checkpoint_bytes_per_param']:g} B/param: 16-bit weights + "
        f"{d['optimizer']} states with fp32 master) at {d['storage_tb_s']:g} TB/s ({d['storage_source']}; "
        "--storage-tb-s), "
        + (f"asynchronous: {write:.3g} s blocking device-to-host copy (--async-checkpoint)"
           if d["async_checkpoint"] else f"{write:.3g} s blocking write (--async-checkpoint to hide it)")
        + f"; interval {d['checkpoint_interval_s'] / 60:.3g} min ({d['interval_source']}); restart "
        f"{d['restart_s'] / 60:g} min + reload ({d['restart_source']}; --restart-minutes); maintenance "
        f"{d['maintenance_fraction']:.0%} (--maintenance-fraction); --goodput F fixes the fraction instead")


def _range(a: Assumption) -> str:
    d = a.detail
    kind = d["kind"]
    if kind == "given":
        return f"no range: throughput (--{d['efficiency']}) and goodput (--goodput) are both given"
    if kind == "no_data":
        return (f"no range: the constants carry no per-run cross-validated errors ({a.source}; "
                "re-run scripts/fit_perf.py)")
    if kind == "goodput_only":
        return (f"range ({a.value:.0%}): reflects only goodput (the interruption count's Poisson spread): "
                f"throughput is given (--{d['efficiency']})")
    if kind == "model":
        lo, hi = d["log_bounds"]
        return (f"range ({a.value:.0%}, --interval): {a.source} (log predicted/measured tokens/s, each run "
                f"predicted without its source; core/intervals.py): ×{math.exp(lo):.3g}-{math.exp(hi):.3g} "
                "on time, GPU-hours, cost and energy; goodput enters at its expected value")
    return (f"range ({a.value:.0%}, --interval): empirical quantiles of the {a.source} (log predicted/measured "
            "tokens/s), applied to throughput, time, GPU-hours, cost and energy; goodput enters at its "
            "expected value")


def _gpu_count_scan(a: Assumption) -> str:
    return (f"GPU count solved for {a.detail['days']:g} days: the fewest of {a.detail['candidates']} counts "
            "whose dp divides the global batch, scanned in order (the smaller ones take longer)")


def _sure(confidence: Any) -> str:
    return "" if confidence is None else f" with {confidence:.0%} probability (--confidence; cross-validated errors)"


def _gpus_for_days(a: Assumption) -> str:
    return (f"GPUs solved for: the fewest whole nodes that finish within {days_text(a.detail['days'])}"
            f"{_sure(a.detail['confidence'])} (wall time, goodput included)")


def _tokens_for_budget(a: Assumption) -> str:
    return (f"tokens solved for: what {a.detail['budget_gpu_hours']:,.0f} GPU-hours buy{_sure(a.detail['confidence'])} "
            "(wall time, goodput included)")


def _scaling(a: Assumption) -> str:
    d = a.detail
    text = f"{a.source} scaling: global batch {a.value:,} sequences at {d['gpus']:,} GPUs"
    if a.source == "strong":
        return text + " (the same batch for every GPU count; --weak-scaling grows it with the GPUs)"
    if d.get("first_batch") is not None:
        return text + f" (grown with the GPU count from {d['first_batch']:,} at {d['first_gpus']:,})"
    return text


def _model_shape(a: Assumption) -> str:
    d = a.detail
    return (f"model: the largest {a.value}-style dense shape ({a.source}; hidden a multiple of "
            f"1024, {d['hidden_per_layer']:g} hidden per layer, FFN {d['ffn_ratio']:g}×) that trains "
            f"compute-optimally within {d['within']}")


def _seq_length(a: Assumption) -> str:
    joint = ": " if a.detail.get("model_default") else " from "
    return f"sequence length {a.value:,}{joint}{a.source}{_set(a)}"


WORDING: dict[str, Callable[[Assumption], str]] = {
    "note": _note, "tokens": _tokens, "global_batch": _global_batch, "layout": _layout,
    "pipeline_split": _pipeline_split, "sequence_parallel": _sequence_parallel,
    "flops_convention": _flops_convention, "throughput": _throughput, "step_time_model": _step_time_model,
    "calibration": _calibration, "price": _price, "energy": _energy, "memory": _memory, "goodput": _goodput,
    "range": _range, "gpu_count_scan": _gpu_count_scan, "gpus_for_days": _gpus_for_days,
    "tokens_for_budget": _tokens_for_budget, "scaling": _scaling, "model_shape": _model_shape,
    "seq_length": _seq_length,
}


def assumption_text(a: Assumption) -> str:
    """One record in words (a KeyError for a ``what`` without wording: a programming error, caught by tests)."""
    return WORDING[a.what](a)


def assumption_texts(assumptions: Iterable[Assumption]) -> list[str]:
    """The records in words, in order."""
    return [assumption_text(a) for a in assumptions]
