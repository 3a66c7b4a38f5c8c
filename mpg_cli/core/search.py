"""Layout search: enumerate valid parallel layouts, keep those that fit, rank by step time.

Rules (Megatron-LM conventions; docs/formulas.md notation):
- tp divides the attention heads and the KV heads (Megatron requires num_query_groups % tp == 0);
- pp divides the layers (even split) or is a power of two (uneven split: the stages hold ⌈l/p⌉ or
  fewer layers, as Megatron's --decoder-first/last-pipeline-num-layers allow; the slowest, fullest stage
  sets the time and memory); v virtual stages divide the layers per stage and need at least p micro-batches
  (Narayanan 2021 §2.2.2 asks m % p == 0; Llama 3 §3.3.2's schedule, as Megatron-Core's
  ``microbatch_group_size_per_vp_stage``, lifts the multiple: any m ≥ p);
- dp = gpus / (tp·pp·cp) and divides the global batch; the micro-batch is any divisor of the per-replica
  batch (up to MAX_MICRO_BATCH);
- ep divides the experts and dp·cp (Megatron carves EP out of the data-parallel group);
- cp (context parallel) is searched only for sequences of 16k tokens and more;
- without --global-batch the batch is ~4M tokens (GPT-3 3.2M, Llama 3 4M), the same for every layout: layouts
  are ranked at one global batch, and a dp that does not divide it is not a layout of this question;
- sequence parallelism is on whenever tp > 1 (same communication volume, less memory: Korthikanti §4.2.2).
Dominated layouts are pruned: for each shape and ZeRO stage, recompute is only made heavier (none →
selective → full) when the lighter policy does not fit, because at the same ZeRO stage the heavier policy is
never faster (across ZeRO stages it can be: selective at ZeRO 1 beats none at ZeRO 3 when the gathers cost more
than the recomputation).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, replace
from typing import Iterator, Optional

from .memory import MemoryBreakdown, combine, stage_activations, stage_states
from .params import model_stages
from .perf import Hardware, PerfConstants, PerfOptions, StepTime, compute_bound, pipeline_bound, step_time
from .specs import GiB, Layout, MemoryOptions, ModelSpec

RECOMPUTE_ORDER = ("none", "selective", "full")
DEFAULT_BATCH_TOKENS = 4 * 1024 * 1024  # ~4M tokens per batch: GPT-3 used 3.2M (1536×2048), Llama 3 4M-16M
MAX_MICRO_BATCH = 128  # sequences per micro-batch searched (llm-foundry's short-sequence runs use up to 56)
MAX_VIRTUAL = 8
CP_MIN_SEQ = 16384  # context parallelism is searched from 16k tokens (Megatron-Core's long-context recipes)
# mpg's choice, stated in the output: a GPU count that splits the default batch poorly may use a batch up to 1/8
# (12.5 %) away, as a practitioner rounds the batch to the cluster; the two such batches admitting most layouts
# are searched besides the default (more would multiply the search time for little gain)
BATCH_TOLERANCE = 1 / 8
BATCH_ALTERNATIVES = 2


@dataclass(frozen=True)
class Constraints:
    """Dimensions the user fixed; None means 'search it'."""

    tp: Optional[int] = None
    pp: Optional[int] = None
    dp: Optional[int] = None
    ep: Optional[int] = None
    cp: Optional[int] = None
    micro_batch: Optional[int] = None
    virtual_stages: Optional[int] = None
    zero: Optional[int] = None
    recompute: Optional[str] = None
    sequence_parallel: Optional[bool] = None
    flash_attention: bool = True

    @property
    def is_empty(self) -> bool:
        return all(getattr(self, f) is None for f in self.__dataclass_fields__ if f != "flash_attention")


@dataclass(frozen=True)
class Candidate:
    layout: Layout
    memory: MemoryBreakdown
    step: Optional[StepTime]  # None for a layout that does not fit (not timed)
    global_batch: int

    @property
    def seconds_per_sequence(self) -> float:
        return self.step.total / self.global_batch if self.step else float("inf")


def default_global_batch(seq_length: int, target_tokens: Optional[float] = None) -> int:
    """The model's published batch (``target_tokens``) in sequences, or ~4M tokens rounded to a power of two:
    the same for every layout and GPU count."""
    if target_tokens:
        return max(1, round(target_tokens / seq_length))
    seqs = max(1.0, DEFAULT_BATCH_TOKENS / seq_length)
    return 1 << max(0, round(math.log2(seqs)))


@dataclass
class SearchResult:
    candidates: list[Candidate]  # fitting layouts, fastest first
    evaluated: int = 0  # layouts considered: memory sized, or ruled out by a time bound before sizing
    shapes: int = 0  # structural layouts enumerated
    skipped: int = 0  # layouts not timed (most not sized): a lower bound of their time is slower than the kept ones
    smallest_misfit: Optional[Candidate] = None  # the non-fitting layout closest to fitting (not timed)


def divisors(n: int) -> list[int]:
    """All divisors of n, in order (O(√n))."""
    small = [d for d in range(1, int(n**0.5) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def _choices(fixed: Optional[int], options: list[int]) -> list[int]:
    return [fixed] if fixed is not None else options


def _layout(base: Layout, micro_batch: int, virtual_stages: int, zero: int, recompute: str) -> Layout:
    """``replace(base, micro_batch=..., virtual_stages=..., zero=..., recompute=...)``, built directly: the search
    builds thousands and ``dataclasses.replace`` walks every field each time (a fifth of the search's time under
    cProfile); ``tests/test_fit.py`` checks that the two agree on every field."""
    return Layout(tp=base.tp, pp=base.pp, dp=base.dp, ep=base.ep, cp=base.cp, micro_batch=micro_batch,
                  virtual_stages=virtual_stages, zero=zero, recompute=recompute,
                  sequence_parallel=base.sequence_parallel, flash_attention=base.flash_attention)


def shapes(m: ModelSpec, gpus: int, global_batch: Optional[int], seq_length: int,
           c: Constraints) -> Iterator[tuple[int, int, int, int, int]]:
    """Yield (tp, pp, cp, dp, ep) that satisfy the divisibility rules and the constraints."""
    head_div = [d for d in divisors(m.heads) if m.n_kv % d == 0 and d <= gpus]
    layer_div = sorted({d for d in divisors(m.layers) if d <= gpus}
                       | {1 << k for k in range(1, 11) if (1 << k) < m.layers and (1 << k) <= gpus})
    cp_opts = [d for d in (1, 2, 4, 8, 16) if seq_length % d == 0 and (d == 1 or seq_length >= CP_MIN_SEQ)]
    for tp in _choices(c.tp, head_div):
        for pp in _choices(c.pp, layer_div):
            for cp in _choices(c.cp, cp_opts):
                mp = tp * pp * cp
                if gpus % mp:
                    continue
                dp = gpus // mp
                if c.dp is not None and dp != c.dp:
                    continue
                if global_batch is not None and global_batch % dp:
                    continue
                if m.moe is None:
                    ep_opts = [1]
                else:
                    ep_opts = [e for e in divisors(m.moe.experts) if (dp * cp) % e == 0]
                for ep in _choices(c.ep, ep_opts):
                    yield tp, pp, cp, dp, ep


def search(
    m: ModelSpec,
    hw: Hardware,
    gpus: int,
    seq_length: int,
    global_batch: Optional[int],
    precision: str,
    memory_gib: float,
    constraints: Constraints = Constraints(),
    mem_opts: MemoryOptions = MemoryOptions(),
    perf_opts: PerfOptions = PerfOptions(),
    consts: Optional[PerfConstants] = None,
    keep: int = 50,
    require_fit: bool = True,
    time_layouts: bool = True,
    batch_alternatives: bool = True,
) -> SearchResult:
    """Find the fitting layouts, fastest per sequence first (keeps the best ``keep``).

    With ``global_batch=None`` every layout gets the default batch (``default_global_batch``).

    ``require_fit=False`` ranks every layout whatever its memory (used to time a published layout
    that the memory model, which is conservative, says does not fit). ``time_layouts=False`` returns the
    fitting layouts untimed (validation times them with other constants).

    Three steps: ``shapes`` and ``_stage_options`` enumerate the layouts, ``_MemoryGrid`` sizes each one's
    stages, and ``_Ranker`` times the fitting ones and keeps the fastest. Without a given batch, a GPU count
    whose odd factor the default batch lacks (14,336 = 7·2,048 GPUs for 2,048 sequences) is also searched at
    the batches within 1/8 of the default that its data-parallel sizes divide (``_question_batches``); the
    batch whose fastest layout is fastest per sequence answers, one batch for every layout returned.
    ``batch_alternatives=False`` keeps the default batch whenever it has a layout (the throughput is given, so
    the batch does not change the time).
    """
    def at(gbs: int, k: int, ceiling: float = math.inf) -> SearchResult:
        return _search_at(m, hw, gpus, seq_length, gbs, precision, memory_gib, constraints, mem_opts, perf_opts,
                          consts, k, require_fit, time_layouts, ceiling)

    def fastest(r: SearchResult) -> float:
        return r.candidates[0].seconds_per_sequence if r.candidates else math.inf

    first, *others = _question_batches(m, gpus, seq_length, global_batch, constraints, batch_alternatives)
    best = at(first, keep)
    if not others:
        return best
    counts = [best.evaluated, best.shapes, best.skipped]
    for gbs in others:
        # a probe keeping one layout, pruned against the best time so far: only a faster batch is searched in full
        probe = at(gbs, 1, fastest(best))
        counts = [a + b for a, b in zip(counts, (probe.evaluated, probe.shapes, probe.skipped))]
        if fastest(probe) < fastest(best):
            best = at(gbs, keep) if keep > 1 else probe
            if keep > 1:  # the full search of the faster batch is work done too
                counts = [a + b for a, b in zip(counts, (best.evaluated, best.shapes, best.skipped))]
    # the counts are the work of every search run: shapes and layouts of each batch tried
    return replace(best, evaluated=counts[0], shapes=counts[1], skipped=counts[2])


def _search_at(m: ModelSpec, hw: Hardware, gpus: int, seq_length: int, gbs: int, precision: str, memory_gib: float,
               c: Constraints, mem_opts: MemoryOptions, perf_opts: PerfOptions, consts: Optional[PerfConstants],
               keep: int, require_fit: bool, time_layouts: bool, ceiling: float = math.inf) -> SearchResult:
    """``search`` at one global batch; layouts whose lower bound takes ``ceiling`` seconds per sequence or more
    are not timed."""
    res = SearchResult(candidates=[])
    recomputes = [c.recompute] if c.recompute else list(RECOMPUTE_ORDER)
    ranker = _Ranker(m, hw, seq_length, gbs, perf_opts, consts, keep, ceiling)
    misfit: Optional[Candidate] = None
    for tp, pp, cp, dp, ep in shapes(m, gpus, gbs, seq_length, c):
        res.shapes += 1
        # ZeRO shards over dp·cp: with one replica every stage is the same layout (keep 0 unless given)
        zeros = _choices(c.zero, [0, 1, 2, 3] if dp * cp > 1 else [0])
        sp = c.sequence_parallel if c.sequence_parallel is not None else tp > 1
        base = Layout(tp=tp, pp=pp, dp=dp, ep=ep, cp=cp, sequence_parallel=sp, flash_attention=c.flash_attention)
        grid = _MemoryGrid(m, base, zeros, seq_length, gbs, precision, memory_gib, mem_opts)
        for mb, v in _stage_options(m, c, base, gbs):
            pending = list(zeros)  # ZeRO stages still without a fitting recompute policy
            for rc in recomputes:
                shaped = _layout(base, mb, v, 1, rc)
                ranker.new_layout()
                if time_layouts and ranker.prunes_all(shaped):
                    # no ZeRO stage of it can be among the fastest, nor with heavier recompute (a slower bound)
                    res.evaluated += len(pending)
                    res.skipped += len(pending)
                    break
                acts = grid.activations(shaped)
                for z in list(pending):
                    res.evaluated += 1
                    total, worst = grid.worst_stage(z, acts)
                    if require_fit and not total <= grid.usable:
                        if misfit is None or total < misfit.memory.total:
                            misfit = Candidate(_layout(base, mb, v, z, rc), grid.breakdown(z, worst, acts), None, gbs)
                        continue
                    pending.remove(z)  # heavier recompute at this ZeRO stage is never faster (module docstring)
                    lay = _layout(base, mb, v, z, rc)
                    key = 1 if (z == 2 and gbs // dp // mb == 1) else z
                    if time_layouts and ranker.prunes(lay, key):
                        res.skipped += 1  # not timed, so its memory breakdown is not needed either
                        continue
                    cand = Candidate(lay, grid.breakdown(z, worst, acts), None, gbs)
                    if not time_layouts:
                        ranker.found.append(cand)
                    else:
                        ranker.offer(cand, key)
                if not pending:
                    break
    found = sorted(ranker.found, key=lambda cand: (cand.seconds_per_sequence, cand.memory.total))
    res.candidates = found[:keep]
    res.smallest_misfit = misfit
    return res


def _odd_part(n: int) -> int:
    """n without its factors of two (the default batches are powers of two or published sizes)."""
    while n > 1 and n % 2 == 0:
        n //= 2
    return n


def _question_batches(m: ModelSpec, gpus: int, seq_length: int, global_batch: Optional[int],
                      c: Constraints, alternatives: bool = True) -> list[int]:
    """The global batches a question is searched at: the given one; else the default, plus, when the default
    cannot use every data-parallel size of this GPU count (an odd factor of the count it lacks, or no dp
    divides it), the two batches within 1/8 of it that admit the most layouts (then the nearest: e.g. 2,080
    sequences for 2,048 on 13,312 GPUs, 2,016 on 14,336); with no layout at the default and none within 1/8,
    the nearest batch some layout's dp divides."""
    if global_batch is not None:
        return [global_batch]
    gbs = default_global_batch(seq_length, m.batch_tokens)
    has_default = next(shapes(m, gpus, gbs, seq_length, c), None) is not None
    if has_default and (gbs % _odd_part(gpus) == 0 or not alternatives):
        return [gbs]
    dps = [dp for _, _, _, dp, _ in shapes(m, gpus, None, seq_length, c)]
    options = {max(1, round(gbs / dp)) * dp for dp in set(dps)} - {gbs}
    near = [b for b in options if abs(b - gbs) <= gbs * BATCH_TOLERANCE]
    if not near and not has_default and options:
        return [min(options, key=lambda b: (abs(b - gbs), b))]  # none within 1/8: the nearest one
    ranked = sorted(near, key=lambda b: (-sum(1 for dp in dps if b % dp == 0), abs(b - gbs), b))[:BATCH_ALTERNATIVES]
    batches = ([gbs] if has_default else []) + ranked
    return batches or [max(1, round(gbs / gpus)) * gpus]


def _stage_options(m: ModelSpec, c: Constraints, base: Layout, gbs: int) -> Iterator[tuple[int, int]]:
    """Enumerate: (micro-batch, virtual stages) of one shape, in search order."""
    per_replica = gbs // base.dp
    small = [d for d in range(1, min(per_replica, MAX_MICRO_BATCH) + 1) if per_replica % d == 0]
    per_stage = -(-m.layers // base.pp)
    for mb in (b for b in _choices(c.micro_batch, small) if per_replica % b == 0):
        micro = per_replica // mb
        if base.pp == 1:
            vs = _choices(c.virtual_stages, [1])
        else:
            vs = _choices(c.virtual_stages, [v for v in range(1, MAX_VIRTUAL + 1)
                                             if per_stage % v == 0 and (v == 1 or micro >= base.pp)])
        for v in vs:
            yield mb, v


class _MemoryGrid:
    """Memory of one shape's pipeline stages: model states once per (ZeRO stage, pipeline stage), activations
    per micro-batch/recompute choice, and the usable capacity they are held against."""

    def __init__(self, m: ModelSpec, base: Layout, zeros: list[int], seq_length: int, gbs: int, precision: str,
                 memory_gib: float, mem_opts: MemoryOptions) -> None:
        self.m, self.seq_length, self.gbs, self.precision = m, seq_length, gbs, precision
        self.memory_gib, self.mem_opts = memory_gib, mem_opts
        self.stages = model_stages(m, base.pp)
        self.overhead = mem_opts.reserved_gib * GiB
        self.usable = memory_gib * GiB * (1.0 - mem_opts.headroom_fraction)
        # model states depend on the shape and ZeRO stage only: compute them once per shape
        self.states = {(z, st): stage_states(m, replace(base, zero=z, recompute="none"), st, precision, mem_opts)
                       for z in zeros for st in self.stages}
        self.state_sum = {k: sum(v) for k, v in self.states.items()}

    def activations(self, shaped: Layout) -> dict[str, float]:
        return {st: stage_activations(self.m, shaped, st, self.seq_length, self.gbs, self.mem_opts, self.precision)
                for st in self.stages}

    def worst_stage(self, z: int, acts: dict[str, float]) -> tuple[float, str]:
        """(bytes per GPU, stage) of the fullest pipeline stage at ZeRO stage ``z``."""
        return max((self.state_sum[(z, st)] + acts[st] + self.overhead, st) for st in self.stages)

    def breakdown(self, z: int, stage: str, acts: dict[str, float]) -> MemoryBreakdown:
        return combine(self.states[(z, stage)], acts[stage], stage, self.memory_gib, self.mem_opts)


class _Ranker:
    """Rank: time the fitting layouts and keep the fastest ``keep`` per sequence (a max-heap of negated times);
    a layout whose lower bound (compute only, then ZeRO-independent: ``prunes_all``) is already slower than all of
    them, or than a caller's ``ceiling``, is skipped untimed."""

    def __init__(self, m: ModelSpec, hw: Hardware, seq_length: int, gbs: int, perf_opts: PerfOptions,
                 consts: Optional[PerfConstants], keep: int, ceiling: float = math.inf) -> None:
        self.m, self.hw, self.seq_length, self.gbs = m, hw, seq_length, gbs
        self.perf_opts, self.consts, self.keep, self.ceiling = perf_opts, consts, keep, ceiling
        self.best: list[float] = []
        self.found: list[Candidate] = []
        self.new_layout()

    def new_layout(self) -> None:
        """A new (micro-batch, virtual stages, recompute) choice: ZeRO 1 and 2 take the same time with one
        micro-batch (the cache), and one compute bound serves all its ZeRO stages."""
        self.timed: dict[int, StepTime] = {}
        self.bound: Optional[float] = None

    def prunes_all(self, shaped: Layout) -> bool:
        """True when no ZeRO stage of ``shaped`` can be among the fastest ``keep``: checked before its memory is
        sized, with the compute bound and then the tighter ZeRO-independent pipeline bound (which ``prunes``
        then reuses for each ZeRO stage)."""
        full = len(self.best) >= self.keep
        if not full and self.ceiling == math.inf:
            return False
        limit = min(-self.best[0] if full else math.inf, self.ceiling)
        if self.bound is None:
            self.bound = compute_bound(self.m, shaped, self.seq_length, self.gbs, self.hw, self.perf_opts,
                                       self.consts) / self.gbs
        if self.bound >= limit:
            return True
        self.bound = pipeline_bound(self.m, shaped, self.seq_length, self.gbs, self.hw, self.perf_opts,
                                    self.consts) / self.gbs
        return self.bound >= limit

    def prunes(self, layout: Layout, key: int) -> bool:
        """True when ``layout`` cannot be among the fastest ``keep``: not timed yet (no time of the same ``key``),
        the list is full and the compute-only lower bound is already no faster than its slowest (or than the
        ``ceiling`` a caller already has)."""
        full = len(self.best) >= self.keep
        if key in self.timed or (not full and self.ceiling == math.inf):
            return False
        if self.bound is None:
            self.bound = compute_bound(self.m, layout, self.seq_length, self.gbs, self.hw, self.perf_opts,
                                       self.consts) / self.gbs
        return self.bound >= min(-self.best[0] if full else math.inf, self.ceiling)

    def offer(self, cand: Candidate, key: int) -> None:
        """Time ``cand`` (or reuse the time of the same ``key``) and keep it (``prunes`` said it may be kept)."""
        if key not in self.timed:
            self.timed[key] = step_time(self.m, cand.layout, self.seq_length, self.gbs, self.hw, self.perf_opts,
                                        self.consts)
        timed = Candidate(cand.layout, cand.memory, self.timed[key], cand.global_batch)
        self.found.append(timed)
        t_seq = timed.seconds_per_sequence
        if len(self.best) < self.keep:
            heapq.heappush(self.best, -t_seq)
        elif t_seq < -self.best[0]:
            heapq.heapreplace(self.best, -t_seq)
