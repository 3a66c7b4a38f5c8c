"""Questions asked backwards: the fewest GPUs that hold a model, the smallest change that makes it fit."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterable, Optional

from .assumptions import Assumption
from .estimate import SECONDS_PER_DAY, TOKENS_PER_PARAM, Result, estimate
from .layout_choice import run_search
from .request import EstimateError, Request
from .wall_time import days_at_confidence
from .flops import token_flops
from .params import param_breakdown
from .search import CP_MIN_SEQ, Candidate, default_global_batch, divisors
from .specs import GpuSpec, ModelSpec


def candidate_gpu_counts(req: Request, limit: int = 1 << 20) -> list[int]:
    """The GPU counts that have at least one layout for this model and batch, in order.

    A count is tp·pp·cp·dp with tp dividing the heads and KV heads, pp dividing the layers or a power of
    two, cp from the searched set, and dp dividing the global batch (the default batch when none is given,
    the same for every count); only whole nodes, or single GPUs below one node. Other counts have no
    layout at this batch: the solvers never answer one, so more GPUs never means a worse layout.
    """
    m, c = req.model, req.constraints
    seq = req.seq_length or m.seq_length
    gbs = req.global_batch or default_global_batch(seq, m.batch_tokens)
    gpn = req.cluster.gpus_per_node
    tps = [c.tp] if c.tp else [d for d in divisors(m.heads) if m.n_kv % d == 0]
    pps = [c.pp] if c.pp else sorted(set(divisors(m.layers)) | {1 << k for k in range(1, 11) if (1 << k) < m.layers})
    cps = [c.cp] if c.cp else [d for d in (1, 2, 4, 8, 16) if seq % d == 0 and (d == 1 or seq >= CP_MIN_SEQ)]
    dps = [c.dp] if c.dp else [d for d in range(1, min(gbs, limit) + 1) if gbs % d == 0]  # O(limit), not O(√gbs)
    counts: set[int] = set()
    for tp in tps:
        for pp in pps:
            for cp in cps:
                mp = tp * pp * cp
                if mp > limit:
                    continue
                for dp in dps:
                    n = mp * dp
                    if n <= limit and (n < gpn or n % gpn == 0):
                        counts.add(n)
    return sorted(counts)


def _first(counts: list[int], ok: Callable[[int], bool]) -> Optional[int]:
    """Index of the first count where ``ok`` holds, by bisection (``ok`` is monotone in the count)."""
    lo, hi = 0, len(counts)
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(counts[mid]):
            hi = mid
        else:
            lo = mid + 1
    return lo if lo < len(counts) else None


def min_gpus(req: Request, limit: int = 1 << 20,
             progress: Optional[Callable[[str], None]] = None) -> Optional[tuple[int, Candidate]]:
    """The smallest GPU count with a fitting layout, among the counts that have a layout at this batch.

    Bisection over ``candidate_gpu_counts`` (adding GPUs never stops a model from fitting: every state
    shrinks or stays as dp grows), then a look at the few counts just below for divisibility gaps.
    """
    counts = candidate_gpu_counts(req, limit)
    found: dict[int, Optional[Candidate]] = {}

    def at(n: int) -> Optional[Candidate]:
        if n not in found:
            if progress:
                progress(f"trying {n:,} GPUs…")
            r = run_search(req, n, keep=1)
            found[n] = r.candidates[0] if r.candidates else None
        return found[n]

    i = _first(counts, lambda n: at(n) is not None)
    if i is None:
        return None
    for j in range(max(0, i - 3), i):
        cand = at(counts[j])
        if cand is not None:
            return counts[j], cand
    cand = at(counts[i])
    assert cand is not None
    return counts[i], cand


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

@dataclass
class DaysSolution:
    """The answer of ``gpus_for_days`` with what the solver looked at."""

    result: Optional[Result]
    evaluated: dict[int, float]  # GPU count → days (inf: no fitting layout) for every count evaluated
    candidates: int  # counts with a layout at this batch, up to the limit

    def envelope(self) -> dict[int, float]:
        """Days with at most k GPUs: a cluster of k GPUs can always run the fastest smaller count it looked at.

        This is what the solver treats as the time of a count, so a larger count never takes longer; where a
        count's own best layout is slower than a smaller count's (few micro-batches per pipeline at this batch),
        ``dominated`` lists it."""
        out, best = {}, float("inf")
        for k in sorted(self.evaluated):
            best = min(best, self.evaluated[k])
            out[k] = best
        return out

    @property
    def dominated(self) -> list[int]:
        """Evaluated counts slower than a smaller evaluated count: more GPUs that would not help at this batch."""
        env = self.envelope()
        return [k for k in sorted(self.evaluated) if self.evaluated[k] > env[k]]


def gpus_for_days(req: Request, days: float, limit: int = 1 << 20,
                  progress: Optional[Callable[[str], None]] = None,
                  confidence: Optional[float] = None) -> Optional[Result]:
    """The fewest GPUs whose estimate finishes within ``days`` (see ``solve_days``)."""
    return solve_days(req, days, limit, progress, confidence=confidence).result


def solve_days(req: Request, days: float, limit: int = 1 << 20,
               progress: Optional[Callable[[str], None]] = None, look_past: int = 2,
               confidence: Optional[float] = None) -> DaysSolution:
    """The fewest GPUs whose estimate finishes within ``days``, among counts that have a layout at this batch.

    Days are the wall time (goodput losses included). With ``confidence``, a count qualifies when the run
    finishes within ``days`` with that probability (``estimate.days_at_confidence``: the one-sided quantile
    of the cross-validated errors).

    At one global batch the best time is not monotone in the GPU count: a count whose layouts leave few
    micro-batches per pipeline can be slower than a smaller one. So the solver scans the candidate counts in
    order, skipping those that could not finish even at 100 % of the peak (a lower bound, no search), and
    answers the first that finishes: every smaller count it looked at takes longer. It also times the next
    ``look_past`` counts, so the answer can say when more GPUs would not help.
    """
    counts = candidate_gpu_counts(req, limit)
    seen: dict[int, Optional[Result]] = {}
    m = req.model
    seq = req.seq_length or m.seq_length
    tokens = req.tokens if req.tokens is not None else TOKENS_PER_PARAM * param_breakdown(m).total
    peak = (req.cluster.gpu.peak(req.precision) or 0.0) * 1e12
    work = token_flops(m, seq).model * tokens

    def at(n: int) -> Optional[Result]:
        if n not in seen:
            if progress:
                progress(f"trying {n:,} GPUs…")
            try:
                r = estimate(replace(req, gpus=n))
            except EstimateError:
                r = None
            seen[n] = r if (r is not None and r.memory.fits) else None
        return seen[n]

    answer: Optional[Result] = None
    past = 0
    for n in counts:
        if answer is None and peak > 0 and work / (n * peak) / SECONDS_PER_DAY > days * (req.goodput or 1.0):
            continue  # not even at 100 % of the peak
        r = at(n)
        if answer is None:
            if r is not None and days_at_confidence(r, confidence) <= days:
                answer = r
        else:
            past += 1
            if past >= look_past:
                break
    evaluated = {n: (r.days if r is not None else float("inf")) for n, r in seen.items()}
    sol = DaysSolution(answer, evaluated, len(counts))
    if answer is not None:
        worse = [k for k in sol.dominated if k > answer.request.gpus and evaluated[k] != float("inf")]
        more = ("more GPUs would not help at this global batch: " + ", ".join(
            f"{k:,} GPUs take {evaluated[k]:.1f} days" for k in worse) + " (too few micro-batches per "
            "pipeline for their layouts); set --global-batch to scale further",) if worse else ()
        scan = Assumption("gpu_count_scan", answer.request.gpus, "scan", ("--days",),
                          {"days": days, "candidates": sol.candidates})
        sol = replace(sol, result=replace(answer, warnings=answer.warnings + more,
                                          assumptions=answer.assumptions + (scan,)))
    return sol


def tokens_for_budget(req: Request, gpu_hours: float, confidence: Optional[float] = None) -> Result:
    """How many tokens ``gpu_hours`` buy: the inverse of estimate's GPU-hours (wall time, goodput included).

    Wall time is linear in tokens at a fixed checkpoint interval (core.goodput: the run is T/τ segments), so a
    probe and one rescale are exact, up to a run shorter than one interval. With ``confidence``, the tokens
    that stay within the budget with that probability (GPU-hours scale as days: ``days_at_confidence``)."""
    probe = estimate(replace(req, tokens=1e12))
    hours = probe.gpu_hours * days_at_confidence(probe, confidence) / probe.days
    tokens = 1e12 * gpu_hours / hours
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
