"""Which parallel layout an estimate uses: the layout search for a request, and the choice among its results."""

from __future__ import annotations

from typing import Optional

from .request import EstimateError, Request, hardware_of
from .search import RECOMPUTE_ORDER, Candidate, SearchResult, search
from .specs import Layout


def run_search(req: Request, gpus: Optional[int] = None, keep: int = 50, require_fit: bool = True) -> SearchResult:
    """The layout search for a request (optionally at another GPU count). With the throughput given
    (--tflops/--mfu) the batch does not change the time, so the default batch is kept whenever it has a layout."""
    seq = req.seq_length or req.model.seq_length
    return search(req.model, hardware_of(req.cluster, req.precision), gpus or req.gpus, seq, req.global_batch,
                  req.precision, req.cluster.gpu.memory_gib, req.constraints, req.memory, req.perf, req.constants,
                  keep=keep, require_fit=require_fit,
                  batch_alternatives=req.efficiency.source not in ("tflops", "mfu"))


def choose_layout(req: Request, seq: int) -> tuple[Candidate, str, SearchResult]:
    """The layout to use: the fastest fitting one under the user's constraints (or the given one).

    When nothing fits, the layout that comes closest (least memory) is returned; the result says it does not fit.
    With the throughput given (--tflops, --mfu) the step-time model does not set the time, recomputation does:
    the fitting layout with the lightest recomputation is used (the fastest of those by the model), so more
    GPUs never cost more GPU-hours because a heavier policy was picked.
    """
    c = req.constraints
    given = req.efficiency.source in ("tflops", "mfu")
    # the model sets the time: only the fastest is used, and a search keeping one prunes more (its bound is held
    # against the best time so far, not the 50th): the same layout, as a layout is skipped only when its compute
    # lower bound (below its step time: the optimizer step is never free) is no faster than one already timed
    # (search._Ranker; tests/test_fit.py compares it with a search that keeps every layout)
    res = run_search(req, keep=50 if given else 1)
    best = res.candidates[0] if res.candidates else res.smallest_misfit
    if res.candidates and given:
        best = min(res.candidates, key=lambda cand: (RECOMPUTE_ORDER.index(cand.layout.recompute),
                                                     cand.seconds_per_sequence))
    missing = searched_dimensions(req, best.layout if best else None)
    source = "given" if not missing else ("searched" if c.is_empty else "partly searched")
    if best is None:
        raise EstimateError(_no_layout_message(req, seq), hint=_no_layout_hint(req))
    return best, source, res


def searched_dimensions(req: Request, lay: Optional[Layout]) -> list[str]:
    """The layout dimensions the search filled (not given by the user) that matter for this model and layout."""
    c = req.constraints
    dims = ["tp", "pp", "micro_batch", "zero", "recompute"]
    if req.model.moe is not None:
        dims.append("ep")
    seq = req.seq_length or req.model.seq_length
    if seq >= 16384:
        dims.append("cp")
    if lay is None or lay.pp > 1 or (c.pp or 1) > 1:
        dims.append("virtual_stages")
    return [d for d in dims if getattr(c, d) is None]


def _no_layout_message(req: Request, seq: int) -> str:
    c = req.constraints
    given = " ".join(f"--{k.replace('_', '-')} {getattr(c, k)}"
                     for k in ("tp", "pp", "dp", "ep", "cp", "micro_batch", "virtual_stages") if getattr(c, k) is not None)
    batch = f"global batch {req.global_batch}" if req.global_batch else "the default global batch"
    return (f"no valid parallel layout for {req.model.name} on {req.gpus} GPUs with {batch}"
            + (f" and {given}" if given else ""))


def _no_layout_hint(req: Request) -> str:
    m = req.model
    return (f"tp must divide heads ({m.heads}) and kv_heads ({m.n_kv}); pp must divide layers ({m.layers}) or be a "
            f"power of two; tp·pp·cp must divide --gpus; dp must divide --global-batch, and the micro-batch the "
            f"per-replica batch (global batch / dp)")
