"""Calibration: measured miles per gallon from a partial run, as a ratio to the step-time model.

    ratio = measured tokens/s ÷ predicted tokens/s   (same model, cluster, GPU count and layout)

``estimate``, ``fit`` and ``compare`` accept ``--calibration FILE``: the step-time model's prediction
is multiplied by the ratio, so projecting to more GPUs or another layout keeps what was measured.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from typing import Any, Optional

from . import __version__
from .core.estimate import Efficiency, Request, Result, evaluate
from .core.flops import token_flops
from .core.estimate import run_search
from .errors import InputError, PresetError

CALIBRATION_KIND = "mpg-calibration"


@dataclass(frozen=True)
class Figures:
    """Throughput figures in mpg's conventions (see README: FLOP and MFU conventions)."""

    tokens_per_second: float  # whole job
    step_time_s: float
    tflops_per_gpu: float  # hardware (recompute counted)
    model_tflops_per_gpu: float
    mfu: float
    steps_used: Optional[int] = None

    def as_dict(self) -> dict[str, Any]:
        return {"tokens_per_second": self.tokens_per_second, "step_time_s": self.step_time_s,
                "tflops_per_gpu": self.tflops_per_gpu, "model_tflops_per_gpu": self.model_tflops_per_gpu,
                "mfu": self.mfu, "steps_used": self.steps_used}


def figures(req: Request, layout_recompute: str, global_batch: int, seq: int, tokens_per_second: float,
            steps_used: Optional[int] = None) -> Figures:
    """All figures from a whole-job tokens/s."""
    tf = token_flops(req.model, seq)
    n = req.gpus
    peak = (req.cluster.gpu.peak(req.precision) or 0.0) * 1e12
    model_f = tokens_per_second / n * tf.model
    return Figures(tokens_per_second, global_batch * seq / tokens_per_second,
                   tokens_per_second / n * tf.hardware(layout_recompute) / 1e12, model_f / 1e12,
                   model_f / peak if peak else float("nan"), steps_used)


@dataclass
class Calibration:
    measured: Figures
    predicted: Figures
    projection: Result
    measured_from: str
    peak_memory_bytes: Optional[float] = None
    log_summary: Any = None

    @property
    def ratio(self) -> float:
        return self.measured.tokens_per_second / self.predicted.tokens_per_second


def measured_tokens_per_second(req: Request, recompute: str, global_batch: int, seq: int, *,
                               step_time: Optional[float], tokens_per_second: Optional[float],
                               tflops: Optional[float], mfu: Optional[float]) -> tuple[float, str]:
    """Whole-job tokens/s from whichever measurement was given (in that order of preference)."""
    tf = token_flops(req.model, seq)
    n = req.gpus
    if tokens_per_second is not None:
        return tokens_per_second, "tokens/s"
    if step_time is not None:
        return global_batch * seq / step_time, "step time"
    if mfu is not None:
        peak = (req.cluster.gpu.peak(req.precision) or 0.0) * 1e12
        return n * peak * mfu / tf.model, "MFU"
    if tflops is not None:
        return n * tflops * 1e12 / tf.hardware(recompute), "hardware TFLOP/s per GPU"
    raise InputError("nothing measured: give a training log, or one of --step-time, --tokens-per-second, "
                     "--tflops, --mfu")


def calibrate(req: Request, measured: dict[str, Optional[float]], steps_used: Optional[int] = None) -> Calibration:
    """Predict the measured run with the step-time model and form the ratio; project the full run."""
    seq = req.seq_length or req.model.seq_length
    res = run_search(req, keep=1)
    if not res.candidates:  # a run that happened: time its layout even if the memory model disagrees
        res = run_search(req, keep=1, require_fit=False)
    if not res.candidates:
        raise InputError(f"no valid layout for {req.model.name} on {req.gpus} GPUs with the flags given",
                         hint="check --tp/--pp/--global-batch against the run's configuration")
    cand = res.candidates[0]
    gbs = cand.global_batch
    tps, source = measured_tokens_per_second(req, cand.layout.recompute, gbs, seq, **measured)
    if not math.isfinite(tps) or tps <= 0:
        raise InputError("the measured throughput is not a positive finite number")
    assert cand.step is not None  # run_search returns timed candidates
    predicted_tps = gbs * seq / cand.step.total
    meas = figures(req, cand.layout.recompute, gbs, seq, tps, steps_used)
    if meas.mfu > 1.0:
        raise InputError(f"the measured throughput ({tps:,.0f} tokens/s) is {meas.mfu:.0%} of the GPUs' dense peak: "
                         "impossible for this model and GPU count",
                         hint="check --model, --gpus, --seq-length and --global-batch against the run")
    pred = figures(req, cand.layout.recompute, gbs, seq, predicted_tps)
    ratio = tps / predicted_tps
    calibrated = Request(**{**req.__dict__, "efficiency": Efficiency("model", None, ratio, "this run")})
    projection = evaluate(calibrated, cand, "given" if req.constraints.tp else "searched", res)
    return Calibration(meas, pred, projection, source)


def to_document(cal: Calibration, req: Request, log_path: Optional[str]) -> dict[str, Any]:
    lay = cal.projection.layout
    return {
        "kind": CALIBRATION_KIND, "mpg_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": req.model.name, "cluster": req.cluster.name, "gpu": req.cluster.gpu.name, "gpus": req.gpus,
        "layout": {"tp": lay.tp, "pp": lay.pp, "dp": lay.dp, "ep": lay.ep, "cp": lay.cp,
                   "micro_batch": lay.micro_batch, "virtual_stages": lay.virtual_stages, "zero": lay.zero,
                   "recompute": lay.recompute, "sequence_parallel": lay.sequence_parallel},
        "global_batch": cal.projection.global_batch, "seq_length": cal.projection.seq_length,
        "measured_from": cal.measured_from, "source_log": log_path,
        "measured": cal.measured.as_dict(), "predicted": cal.predicted.as_dict(), "ratio": cal.ratio,
        "measured_params": cal.projection.params_total,
    }


def save(doc: dict[str, Any], path: str, force: bool) -> None:
    """Write the calibration file; without ``force`` the name is created exclusively (of several
    concurrent runs exactly one succeeds), with ``force`` it is replaced atomically."""
    import yaml

    from .safeio import write_output

    write_output(path, "# mpg calibration file: the step-time model is scaled by 'ratio'\n"
                 + yaml.safe_dump(doc, sort_keys=False), "--save", exclusive=not force)


RATIO_RANGE = (0.05, 20.0)  # outside: measured and predicted differ over 20x, a wrong model, GPU count or layout
RATIO_PLAUSIBLE = (0.25, 4.0)  # outside: warn (mpg validate: median |error| ~10%; a real 4x gap is a wrong model or layout)


def check_ratio(ratio: Any, where: str) -> float:
    """The one ratio check, for --calibration files and before --save (so no file is saved that would be refused)."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not math.isfinite(ratio) or ratio <= 0:
        raise PresetError(f"{where}: ratio: must be a positive number, got {ratio!r}"[:300])
    if not RATIO_RANGE[0] <= ratio <= RATIO_RANGE[1]:
        raise PresetError(f"{where}: ratio: {ratio:g} is implausible (measured vs predicted throughput differ over 20×)",
                          hint="check the run's model, GPU count and layout, then calibrate again")
    return float(ratio)


def load_calibration(path: str) -> tuple[float, str]:
    """Read a calibration file; returns (ratio, path)."""
    ratio, p, _ = load_calibration_doc(path)
    return ratio, p


def load_calibration_doc(path: str) -> tuple[float, str, dict[str, Any]]:
    """Read a calibration file; returns (ratio, path, the whole document)."""
    from .inputs.files import load_yaml_file
    from .safeio import user_path

    p = user_path(path, "--calibration")
    doc = load_yaml_file(p)
    if not isinstance(doc, dict) or doc.get("kind") != CALIBRATION_KIND:
        raise PresetError(f"{p}: not an mpg calibration file (kind: {CALIBRATION_KIND} missing)",
                          hint="write one with 'mpg calibrate ... --save FILE'")
    return check_ratio(doc.get("ratio"), str(p)), str(p), doc


def mismatch_warnings(doc: dict[str, Any], req: Request) -> list[str]:
    """Warnings when a calibration is applied to another GPU generation, GPU or model class than it measured."""
    from .core.params import param_breakdown

    out = []
    name = doc.get("gpu")
    gpu = req.cluster.gpu
    if isinstance(name, str) and name != gpu.name:
        try:
            from .presets import load_gpu

            other = load_gpu(name)
            gen = f" ({other.generation} vs {gpu.generation})" if other.generation != gpu.generation else ""
        except Exception:  # noqa: BLE001 - a GPU preset that no longer exists: still say it differs
            gen = ""
        out.append(f"the calibration was measured on {name}, applied to {gpu.name}{gen}: the ratio may not carry over")
    measured = doc.get("measured_params")
    total = param_breakdown(req.model).total
    if isinstance(measured, (int, float)) and not isinstance(measured, bool) and measured > 0:
        if not 0.25 <= total / measured <= 4:
            out.append(f"the calibration was measured on a {measured / 1e9:.3g}B model, applied to a {total / 1e9:.3g}B one")
    elif isinstance(doc.get("model"), str) and doc["model"] != req.model.name:
        out.append(f"the calibration was measured on {doc['model']}, applied to {req.model.name}")
    return out
