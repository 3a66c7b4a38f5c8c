"""What an estimate assumed, as records: what, its value, where the value comes from, the flags that override it.

The core states assumptions; it does not word them. ``mpg_cli/output/assumptions.py`` turns each record into the
sentence the table, Markdown and JSON outputs show (one wording function per ``what``). The builders here hold
the estimate's reasoning about *which* assumption applies (e.g. the default batch was or was not kept); the
numbers they carry are the ones the estimate used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from .memory import OPTIMIZER_BYTES, grad_bytes
from .params import stage_layers
from .perf import PerfConstants
from .request import Request
from .specs import LOSS_IMPLS, Layout, ModelSpec


@dataclass(frozen=True)
class Assumption:
    """One assumption of an estimate (worded by ``mpg_cli.output.assumptions``).

    ``what``: the quantity or choice assumed ('tokens', 'global_batch', 'memory', 'goodput', ...), which also
    selects the wording; ``value``: the value assumed (a number, a name, or a mapping of settings for a group);
    ``source``: where the value comes from (a paper, a preset, the search, the flag it was given with);
    ``flags``: the flags that override it; ``detail``: what the wording needs besides those (derived numbers).
    """

    what: str
    value: Any = None
    source: str = ""
    flags: tuple[str, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)


def note(text: str, source: str = "") -> Assumption:
    """An assumption an input reader already worded (a --from file's value, a model file's approximation)."""
    return Assumption("note", text, source)


def tokens_assumption(tokens: float, per_param: float) -> Assumption:
    """The training tokens when none are given: ``per_param`` per parameter (Chinchilla)."""
    return Assumption("tokens", tokens, "Chinchilla compute-optimal, Hoffmann et al. 2022", ("--tokens",),
                      {"per_param": per_param})


def batch_assumption(m: ModelSpec, gbs: int, default: int, seq: int, gpus: int) -> Assumption:
    """The global batch when none is given: the model's published batch (or ~4M tokens), or the batch within 1/8
    of it whose fastest layout is fastest per sequence when the GPU count splits it poorly (``default`` is the
    unadjusted batch)."""
    basis = (f"{m.name}'s published batch" if m.batch_tokens else "the default ~4M tokens")
    return Assumption("global_batch", gbs, basis, ("--global-batch",), {"seq": seq, "default": default, "gpus": gpus})


def layout_assumption(lay: Layout, dims: list[str], completed: bool, evaluated: int) -> Assumption:
    """The layout dimensions the search chose (all of them) or completed (those the user left out)."""
    return Assumption("layout", tuple((d, getattr(lay, d)) for d in dims), "search",
                      tuple("--" + d.replace("_", "-") for d in dims), {"completed": completed, "evaluated": evaluated})


def layout_notes(m: ModelSpec, lay: Layout, sequence_parallel_given: bool) -> list[Assumption]:
    """An uneven pipeline split (the end stages give up the shortfall: ``params.stage_layers``), and sequence
    parallelism turned on by default with tp > 1."""
    out = []
    if m.layers % lay.pp:
        out.append(Assumption("pipeline_split", lay.pp, "Llama 3 §3.3.2", ("--pp",),
                              {"layers": m.layers, "per_stage": -(-m.layers // lay.pp),
                               "first": stage_layers(m.layers, lay.pp, "first"),
                               "last": stage_layers(m.layers, lay.pp, "last")}))
    if lay.sequence_parallel and not sequence_parallel_given and lay.tp > 1:
        out.append(Assumption("sequence_parallel", True, "Korthikanti et al. 2022", ("--no-sequence-parallel",)))
    return out


FLOPS_CONVENTION = Assumption("flops_convention", "megatron-korthikanti", "Megatron/Korthikanti convention")


def tflops_assumption(tflops: float, recompute_full: bool, eq4_days: float) -> Assumption:
    """Throughput given as hardware TFLOP/s per GPU; ``eq4_days`` is Narayanan 2021 eq. 4's approximate time."""
    return Assumption("throughput", tflops, "--tflops", ("--tflops",),
                      {"eq4_factor": 8 if recompute_full else 6, "eq4_days": eq4_days})


def mfu_assumption(mfu: float, precision: str) -> Assumption:
    """Throughput given as MFU against the dense peak at ``precision``."""
    return Assumption("throughput", mfu, "--mfu", ("--mfu",), {"precision": precision})


def model_throughput_assumption(consts: PerfConstants, m: ModelSpec, req: Request) -> Assumption:
    """Throughput predicted by the step-time model, with its cross-validated accuracy for this class of run."""
    runs, errors = cross_validated_errors(consts, m, req)
    return Assumption("throughput", None, "step-time model", ("--tflops", "--mfu", "--calibration"),
                      {"runs": runs, "errors": errors})


def cross_validated_errors(consts: PerfConstants, m: ModelSpec, req: Request) -> tuple[Any, tuple[tuple[str, float], ...]]:
    """(runs fitted on or None, ((class, median error), ...)): how well the model predicts runs of this class and
    GPU generation it was not fitted on (leave-one-source-out, mpg validate; the constants' provenance)."""
    prov = consts.provenance or {}
    cv = prov.get("cross_validated", {})
    cls = "moe" if m.moe is not None else ("dense-fp8" if req.precision == "fp8" else "dense-bf16")
    gen = req.cluster.gpu.generation
    errors = tuple((k, cv[k]["median_abs_error"]) for k in (cls, gen) if k in cv)
    return (prov["runs"] if "runs" in prov else None), errors


def step_model_assumption(req: Request, lay: Layout) -> Assumption:
    """The framework settings the step-time model assumed (each its own flag)."""
    po, moe = req.perf, req.model.moe is not None
    value: dict[str, Any] = {
        "flash_attention": lay.flash_attention, "overlap_grad_reduce": po.overlap_grad_reduce,
        "tp_comm_overlap": po.tp_comm_overlap, "grad_reduce_bytes": po.grad_reduce_bytes,
        "attention_kernel": po.attention_kernel}
    flags = ["--[no-]flash-attention", "--[no-]overlap-grad-reduce", "--[no-]tp-comm-overlap", "--attention-kernel"]
    if lay.zero >= 3:
        value["sharded_impl"] = po.sharded_impl
        flags.append("--sharded-impl")
    if moe:
        value.update(a2a_overlap=po.a2a_overlap, expert_imbalance=po.expert_imbalance,
                     node_limited_routing=po.node_limited_routing)
        flags += ["--a2a-overlap", "--expert-imbalance", "--node-limited-routing"]
    return Assumption("step_time_model", value, "", tuple(flags))


def calibration_assumption(ratio: float, file: str) -> Assumption:
    """A calibration scales the step-time model's throughput by measured/predicted."""
    return Assumption("calibration", ratio, file, ("--calibration",))


def price_assumption(price: float, preset: str, as_of: Optional[str]) -> Assumption:
    """The price per GPU-hour from a cluster or GPU preset (dated where the preset says when)."""
    return Assumption("price", price, preset, ("--price",), {"as_of": as_of})


def energy_assumption(tdp_watts: float, pue: float, pue_in_preset: bool) -> Assumption:
    """Energy: GPUs at TDP times the cluster's PUE (1 when the preset has none) over the wall time."""
    return Assumption("energy", {"tdp_watts": tdp_watts, "pue": pue}, "presets", (), {"pue_in_preset": pue_in_preset})


def memory_assumption(req: Request, lay: Layout) -> Assumption:
    """The memory model's accounting and defaults (docs/formulas.md B1, B3), each with its flag."""
    mo, m = req.memory, req.model
    value = {"optimizer": mo.optimizer, "sharded_impl": mo.sharded_impl, "loss_impl": mo.loss_impl,
             "reserved_gib": mo.reserved_gib, "headroom_fraction": mo.headroom_fraction}
    detail = {"fsdp": lay.zero >= 3 and mo.sharded_impl == "fsdp", "zero3": lay.zero >= 3,
              "optimizer_bytes": OPTIMIZER_BYTES[mo.optimizer], "grad_bytes": grad_bytes(req.precision, mo.grad_reduce_bytes),
              "fp8": req.precision == "fp8", "dropout": bool(m.dropout), "loss_bytes": LOSS_IMPLS[mo.loss_impl]}
    return Assumption("memory", value, "", ("--optimizer", "--sharded-impl", "--loss-impl", "--reserved-gib",
                                            "--headroom"), detail)
