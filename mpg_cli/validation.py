"""Predict the published runs shipped in mpg_cli/data/runs.yaml and compare with what was measured.

For each run, the published layout is fixed (tp, pp, dp, ZeRO/FSDP, recompute, micro-batch and
virtual stages where the source gives them); what the source does not give is searched, as an
expert would tune it, under the memory model. Tokens/s per GPU is compared because it does not
depend on how a source counts FLOPs (modeling-notes.md 8).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .core.flops import token_flops
from .core.estimate import Request, run_search
from .core.perf import DEFAULT_CONSTANTS, PerfConstants, PerfOptions
from .core.search import Constraints
from .core.specs import ClusterSpec, GpuSpec
from .errors import PresetError
from .presets import load_gpu, load_yaml_file, model_from_dict

RUNS_FILE = Path(__file__).resolve().parent / "data" / "runs.yaml"


@dataclass(frozen=True)
class RunResult:
    id: str
    group: str
    gpus: int
    measured_tokens_s_gpu: float
    predicted_tokens_s_gpu: Optional[float]
    predicted_mfu: Optional[float]  # model FLOPs (mpg convention, full s²) / dense peak
    measured_mfu: Optional[float]  # the measured tokens/s converted to the same definition
    layout: str
    source: str
    memory_fraction: Optional[float] = None  # predicted memory / capacity for the layout used
    memory_fits: Optional[bool] = None

    @property
    def error(self) -> Optional[float]:
        if self.predicted_tokens_s_gpu is None:
            return None
        return self.predicted_tokens_s_gpu / self.measured_tokens_s_gpu - 1.0


def load_runs(path: Path = RUNS_FILE) -> list[dict]:
    runs = load_yaml_file(path)
    if not isinstance(runs, list):
        raise PresetError(f"{path}: expected a list of runs")
    return runs


def predict_run(run: dict, consts: PerfConstants = DEFAULT_CONSTANTS, gpu_cache: Optional[dict] = None) -> RunResult:
    """Predict one published run; the layout the source gives is kept, the rest searched."""
    where = f"runs.yaml:{run['id']}"
    model = model_from_dict(run["model"], where)
    cache = gpu_cache if gpu_cache is not None else {}
    gpu: GpuSpec = cache.get(run["gpu"]) or cache.setdefault(run["gpu"], load_gpu(run["gpu"]))
    lay = run["layout"]
    peak = gpu.peak("bf16") or 0.0
    cluster = ClusterSpec(name=run["id"], gpu=gpu, gpus_per_node=run["gpus_per_node"], nodes=1,
                          intra_node_gb_s=run["intra_node_gb_s"], inter_node_gb_s=run["inter_node_gb_s"])
    cons = Constraints(tp=lay["tp"], pp=lay["pp"], dp=lay.get("dp"), micro_batch=lay.get("micro_batch"),
                       virtual_stages=lay.get("virtual_stages"), zero=lay.get("zero"), recompute=lay.get("recompute"),
                       sequence_parallel=lay.get("sequence_parallel"), flash_attention=lay.get("flash_attention", True))
    fw = run.get("framework", {})
    popts = PerfOptions(grad_reduce_bytes=lay.get("grad_reduce_bytes"),
                        overlap_grad_reduce=fw.get("overlap_grad_reduce", True),
                        tp_comm_overlap=fw.get("tp_comm_overlap", False))
    s = model.seq_length
    req = Request(model=model, cluster=cluster, gpus=run["gpus"], global_batch=run["global_batch"], precision="bf16",
                  constraints=cons, perf=popts, constants=consts)
    res = run_search(req, keep=1)
    if not res.candidates:  # the run happened: time its layout even where the memory model disagrees
        res = run_search(req, keep=1, require_fit=False)
    measured = run["measured"]["tokens_per_s_per_gpu"]
    per_token = token_flops(model, s).model
    measured_mfu = measured * per_token / (peak * 1e12) if peak else None
    if not res.candidates:
        return RunResult(run["id"], run["group"], run["gpus"], measured, None, None, measured_mfu, "no fit", run["source"])
    best = res.candidates[0]
    pred = run["global_batch"] * s / (best.step.total * run["gpus"])
    b = best.layout
    desc = f"tp{b.tp} pp{b.pp} dp{b.dp} mb{b.micro_batch} v{b.virtual_stages} z{b.zero} {b.recompute}"
    return RunResult(run["id"], run["group"], run["gpus"], measured, pred, pred * per_token / (peak * 1e12),
                     measured_mfu, desc, run["source"], best.memory.fraction_of_capacity, best.memory.fits)


def validate_all(consts: PerfConstants = DEFAULT_CONSTANTS) -> list[RunResult]:
    cache: dict = {}
    return [predict_run(r, consts, cache) for r in load_runs()]


def summary(results: list[RunResult]) -> dict[str, float]:
    """Median and 90th percentile of |error|, and the share within ±20 %."""
    errs = sorted(abs(r.error) for r in results if r.error is not None)
    if not errs:
        return {"runs": 0, "median_abs_error": float("nan"), "p90_abs_error": float("nan"), "within_20pct": 0.0}
    n = len(errs)

    def pct(q: float) -> float:
        k = q * (n - 1)
        lo = int(k)
        hi = min(lo + 1, n - 1)
        return errs[lo] + (errs[hi] - errs[lo]) * (k - lo)

    return {"runs": n, "median_abs_error": pct(0.5), "p90_abs_error": pct(0.9),
            "within_20pct": sum(e <= 0.20 for e in errs) / n, "unpredicted": len(results) - n}
