"""Questions asked backwards: the fewest GPUs that hold a model, the smallest change that makes it fit."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Optional

from .estimate import Request, hardware_of
from .search import Candidate, SearchResult, search
from .specs import GpuSpec


def run_search(req: Request, gpus: Optional[int] = None, keep: int = 50, require_fit: bool = True) -> SearchResult:
    """The layout search for a request (optionally at another GPU count)."""
    seq = req.seq_length or req.model.seq_length
    return search(req.model, hardware_of(req.cluster, req.precision), gpus or req.gpus, seq, req.global_batch,
                  req.precision, req.cluster.gpu.memory_gib, req.constraints, req.memory, req.perf, req.constants,
                  keep=keep, require_fit=require_fit)


def gpu_counts(gpus_per_node: int, limit: int) -> Iterable[int]:
    """Single GPUs below a node (1, 2, … gpus_per_node − 1), then whole nodes."""
    yield from range(1, min(gpus_per_node, limit + 1))
    k = 1
    while k * gpus_per_node <= limit:
        yield k * gpus_per_node
        k += 1


def min_gpus(req: Request, limit: int = 1 << 20) -> Optional[tuple[int, Candidate]]:
    """The smallest GPU count (whole nodes, or single GPUs below a node) with a fitting layout.

    Scans single GPUs, then finds the node count by doubling and bisection (assumes that adding
    nodes never stops a model from fitting, which holds for the memory model: every state shrinks
    or stays as dp grows), then steps back to catch divisibility gaps.
    """
    gpn = req.cluster.gpus_per_node
    for n in range(1, gpn):
        res = run_search(req, n, keep=1)
        if res.candidates:
            return n, res.candidates[0]

    def at(nodes: int) -> Optional[Candidate]:
        r = run_search(req, nodes * gpn, keep=1)
        return r.candidates[0] if r.candidates else None

    hi, found = 1, at(1)
    while found is None:
        hi *= 2
        if hi * gpn > limit:
            return None
        found = at(hi)
    lo = hi // 2  # nodes=lo did not fit (or lo == 0)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        cand = at(mid)
        if cand is not None:
            hi, found = mid, cand
        else:
            lo = mid
    for nodes in range(max(1, hi - 3), hi):  # divisibility can make a smaller count fit
        cand = at(nodes)
        if cand is not None:
            return nodes * gpn, cand
    return hi * gpn, found


@dataclass(frozen=True)
class Change:
    """One change to the request that makes the model fit, with the best layout it gives."""

    flag: str
    description: str
    candidate: Candidate
    gpus: int


def changes_that_fit(req: Request, other_gpus: Iterable[GpuSpec] = ()) -> list[Change]:
    """The single changes that make a non-fitting request fit, smallest first.

    Order: ZeRO-3, full recompute, micro-batch 1 (each only when the user had fixed another value),
    then more GPUs, then another GPU type with more memory at the same count.
    """
    c = req.constraints
    out: list[Change] = []
    tries = []
    if c.zero is not None and c.zero < 3:
        tries.append(("--zero 3", "shard weights, gradients and optimizer states (ZeRO-3/FSDP)", replace(c, zero=3)))
    if c.recompute is not None and c.recompute != "full":
        tries.append(("--recompute full", "recompute every layer's activations", replace(c, recompute="full")))
    if c.micro_batch is not None and c.micro_batch > 1:
        tries.append(("--micro-batch 1", "one sequence per micro-batch", replace(c, micro_batch=1)))
    if c.tp is not None or c.pp is not None:
        tries.append(("drop --tp/--pp", "let the search choose tensor and pipeline parallelism",
                      replace(c, tp=None, pp=None, dp=None)))
    for flag, text, cons in tries:
        res = run_search(replace(req, constraints=cons), keep=1)
        if res.candidates:
            out.append(Change(flag, text, res.candidates[0], req.gpus))
    found = min_gpus(replace(req, constraints=replace(c, dp=None)))
    if found is not None and found[0] > req.gpus:
        out.append(Change(f"--gpus {found[0]}", f"the fewest GPUs that hold the model ({found[0]})", found[1], found[0]))
    cap = req.cluster.gpu.memory_gib
    for g in sorted((g for g in other_gpus if g.memory_gib > cap), key=lambda g: g.memory_gib):
        if g.peak(req.precision) is None:
            continue
        other = replace(req, cluster=replace(req.cluster, gpu=g))
        res = run_search(other, keep=1)
        if res.candidates:
            out.append(Change(f"--gpu {g.name}", f"a GPU with {g.memory_gib:g} GiB", res.candidates[0], req.gpus))
            break
    return out
