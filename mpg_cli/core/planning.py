"""Questions asked backwards: the fewest GPUs that hold a model, the smallest change that makes it fit."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterable, Optional

from .estimate import EstimateError, Request, Result, estimate, run_search
from .search import Candidate
from .specs import GpuSpec, ModelSpec


SCAN_BELOW_NODE = 16  # nodes up to this size: every GPU count below a node is tried; larger: powers of two


def below_node_counts(gpn: int) -> list[int]:
    """GPU counts tried below one node: all of 1..gpn-1 for real nodes (<= 16 GPUs), else powers of two.

    Bounds the work by log2(gpus_per_node) searches, whatever a preset says a node holds."""
    if gpn <= SCAN_BELOW_NODE:
        return list(range(1, gpn))
    return [1 << k for k in range(gpn.bit_length()) if (1 << k) < gpn]


def min_gpus(req: Request, limit: int = 1 << 20,
             progress: Optional[Callable[[str], None]] = None) -> Optional[tuple[int, Candidate]]:
    """The smallest GPU count (whole nodes, or single GPUs below a node) with a fitting layout.

    Scans single GPUs, then finds the node count by doubling and bisection (assumes that adding
    nodes never stops a model from fitting, which holds for the memory model: every state shrinks
    or stays as dp grows), then steps back to catch divisibility gaps.
    """
    gpn = req.cluster.gpus_per_node
    for n in below_node_counts(gpn):
        res = run_search(req, n, keep=1)
        if res.candidates:
            return n, res.candidates[0]

    def at(nodes: int) -> Optional[Candidate]:
        if progress:
            progress(f"trying {nodes * gpn:,} GPUs…")
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


# ---------------------------------------------------------------- solving for the unknown

def gpus_for_days(req: Request, days: float, limit: int = 1 << 20,
                  progress: Optional[Callable[[str], None]] = None) -> Optional[Result]:
    """The fewest GPUs (whole nodes; single GPUs below a node) whose estimate finishes within ``days``.

    Time falls as GPUs are added (at fixed efficiency exactly as 1/n; with the step-time model
    nearly so), so the count is found by doubling and bisection over node counts, then a short
    step back for divisibility gaps. Returns None when even ``limit`` GPUs are too slow.
    """
    gpn = req.cluster.gpus_per_node

    def at(n: int) -> Optional[Result]:
        if progress:
            progress(f"trying {n:,} GPUs…")
        try:
            r = estimate(replace(req, gpus=n))
        except EstimateError:
            return None
        return r if (r.days <= days and r.memory.fits) else None

    for n in below_node_counts(gpn):
        r = at(n)
        if r is not None:
            return r
    hi, found = 1, at(gpn)
    while found is None:
        hi *= 2
        if hi * gpn > limit:
            return None
        found = at(hi * gpn)
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        r = at(mid * gpn)
        if r is not None:
            hi, found = mid, r
        else:
            lo = mid
    for nodes in range(max(1, hi - 3), hi):
        r = at(nodes * gpn)
        if r is not None:
            return r
    return found


def tokens_for_budget(req: Request, gpu_hours: float) -> Result:
    """How many tokens ``gpu_hours`` buy: the exact inverse of estimate's GPU-hours (time is linear in tokens)."""
    probe = estimate(replace(req, tokens=1e12))
    tokens = 1e12 * gpu_hours / probe.gpu_hours
    return estimate(replace(req, tokens=tokens))


@dataclass(frozen=True)
class Template:
    """A model family's shape rule: layers, heads and FFN width from the hidden size."""

    name: str
    hidden_per_layer: float  # h / l
    head_dim: int
    ffn_ratio: float  # ffn / h
    ffn_type: str
    kv_heads_large: int  # GQA groups once hidden >= gqa_from
    gqa_from: int
    vocab_size: int
    seq_length: int
    norm: str
    tied_embeddings: bool
    position_embedding: str
    source: str


TEMPLATES = {
    # Llama 3 (arXiv 2407.21783, Table 3): 8B 32×4096, 70B 80×8192, 405B 126×16384; FFN 3.5h (multiplier 1.3
    # on 8h/3); 8 KV heads; head dim 128; vocab 128,256; 8K pre-training context.
    "llama": Template("llama", 128.0, 128, 3.5, "swiglu", 8, 4096, 128256, 8192, "rmsnorm", False, "rope",
                      "Llama 3 shapes (arXiv 2407.21783 Table 3)"),
    # GPT-3 (Brown et al. 2020, Table 2.1): h/l ≈ 128 for 175B (12288/96), MHA, GeLU 4h, 2048 context.
    "gpt": Template("gpt", 128.0, 128, 4.0, "gelu", 0, 1 << 30, 51200, 2048, "layernorm", True, "learned",
                    "GPT-3 shapes (Brown et al. 2020 Table 2.1; Narayanan 2021 Table 1)"),
}


def model_from_template(t: Template, hidden: int) -> ModelSpec:
    """A dense model of hidden size ``hidden`` in the shape of template ``t``."""
    layers = max(1, round(hidden / t.hidden_per_layer))
    heads = max(1, hidden // t.head_dim)
    kv = t.kv_heads_large if (hidden >= t.gqa_from and heads % t.kv_heads_large == 0) else heads
    ffn = int(round(t.ffn_ratio * hidden / 256.0)) * 256
    return ModelSpec(name=f"{t.name}-h{hidden}", layers=layers, hidden_size=hidden, heads=heads, kv_heads=kv,
                     ffn_hidden_size=ffn, ffn_type=t.ffn_type, vocab_size=t.vocab_size, seq_length=t.seq_length,
                     tied_embeddings=t.tied_embeddings, position_embedding=t.position_embedding,
                     linear_biases=t.name == "gpt", norm=t.norm, description=f"{t.name}-style dense model",
                     source=t.source, origin=f"template {t.name}")


def largest_model_in(req: Request, days: Optional[float], template: Template,
                     progress: Optional[Callable[[str], None]] = None,
                     max_gpu_hours: Optional[float] = None) -> Optional[Result]:
    """The largest compute-optimal (20 tokens per parameter) dense model trainable within ``days``
    and/or ``max_gpu_hours`` (a budget: GPU-hours, or dollars divided by the price).

    Bisects the hidden size (multiples of 1024, so heads and KV groups divide evenly) of the family
    template: a larger model needs more tokens and more FLOPs per token, so training time and GPU-hours
    rise with size (Hoffmann et al. 2022: compute-optimal C ≈ 6·N·20N grows as N²).
    """
    sizes = list(range(1024, 65536 + 1, 1024))

    def at(h: int) -> Optional[Result]:
        if progress:
            progress(f"trying hidden size {h:,}…")
        m = model_from_template(template, h)
        try:
            r = estimate(replace(req, model=m, tokens=None, seq_length=None))
        except EstimateError:
            return None
        ok = (days is None or r.days <= days) and (max_gpu_hours is None or r.gpu_hours <= max_gpu_hours)
        return r if (ok and r.memory.fits) else None

    lo, hi = -1, len(sizes)  # sizes[lo] fits (or none), sizes[hi] does not (or beyond)
    best: Optional[Result] = None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        r = at(sizes[mid])
        if r is not None:
            lo, best = mid, r
        else:
            hi = mid
    return best
