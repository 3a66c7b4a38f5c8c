"""Layout search: enumerate valid parallel layouts, keep those that fit, rank by step time.

Rules (Megatron-LM conventions; formulas.md notation):
- tp divides the attention heads and the KV heads (Megatron requires num_query_groups % tp == 0);
- pp divides the layers (even split); v virtual stages divide the layers per stage and need
  m % p == 0 micro-batches (Narayanan 2021 §2.2.2);
- dp = gpus / (tp·pp·cp) and divides the global batch; the micro-batch divides the per-replica batch;
- ep divides the experts and dp·cp (Megatron carves EP out of the data-parallel group);
- cp (context parallel) is searched only for sequences of 16k tokens and more;
- sequence parallelism is on whenever tp > 1 (same communication volume, less memory: Korthikanti §4.2.2).
Dominated layouts are pruned: for each shape, recompute is only made heavier (none → selective → full)
when the lighter policy does not fit, because the heavier policy is never faster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Optional

from .memory import MemoryBreakdown, memory_breakdown
from .perf import DEFAULT_CONSTANTS, Hardware, PerfConstants, PerfOptions, StepTime, step_time
from .specs import Layout, MemoryOptions, ModelSpec

RECOMPUTE_ORDER = ("none", "selective", "full")
MICRO_BATCHES = (1, 2, 4, 8, 16, 32)
MAX_VIRTUAL = 8


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
    step: StepTime


@dataclass
class SearchResult:
    candidates: list[Candidate]  # fitting layouts, fastest first
    evaluated: int = 0  # layouts whose memory was computed
    shapes: int = 0  # structural layouts enumerated
    smallest_misfit: Optional[Candidate] = None  # the non-fitting layout closest to fitting
    notes: list[str] = field(default_factory=list)


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _choices(fixed: Optional[int], options: list[int]) -> list[int]:
    return [fixed] if fixed is not None else options


def shapes(m: ModelSpec, gpus: int, global_batch: int, seq_length: int, c: Constraints) -> Iterator[tuple[int, int, int, int, int]]:
    """Yield (tp, pp, cp, dp, ep) that satisfy the divisibility rules and the constraints."""
    head_div = [d for d in divisors(m.heads) if m.n_kv % d == 0 and d <= gpus]
    layer_div = [d for d in divisors(m.layers) if d <= gpus]
    cp_opts = [d for d in (1, 2, 4, 8, 16) if seq_length % d == 0 and (d == 1 or seq_length >= 16384)]
    for tp in _choices(c.tp, head_div):
        for pp in _choices(c.pp, layer_div):
            for cp in _choices(c.cp, cp_opts):
                mp = tp * pp * cp
                if gpus % mp:
                    continue
                dp = gpus // mp
                if c.dp is not None and dp != c.dp:
                    continue
                if global_batch % dp:
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
    global_batch: int,
    precision: str,
    memory_gib: float,
    constraints: Constraints = Constraints(),
    mem_opts: MemoryOptions = MemoryOptions(),
    perf_opts: PerfOptions = PerfOptions(),
    consts: PerfConstants = DEFAULT_CONSTANTS,
    keep: int = 50,
    require_fit: bool = True,
) -> SearchResult:
    """Find the fitting layouts, fastest first (keeps the best ``keep``).

    ``require_fit=False`` ranks every layout whatever its memory (used to time a published layout
    that the memory model, which is conservative, says does not fit).
    """
    res = SearchResult(candidates=[])
    c = constraints
    zeros = _choices(c.zero, [0, 1, 2, 3])
    recomputes = [c.recompute] if c.recompute else list(RECOMPUTE_ORDER)
    found: list[Candidate] = []
    misfit: Optional[Candidate] = None
    for tp, pp, cp, dp, ep in shapes(m, gpus, global_batch, seq_length, c):
        res.shapes += 1
        per_replica = global_batch // dp
        mbs = _choices(c.micro_batch, [b for b in MICRO_BATCHES if per_replica % b == 0])
        sp = c.sequence_parallel if c.sequence_parallel is not None else tp > 1
        per_stage = m.layers // pp
        for mb in mbs:
            micro = per_replica // mb
            if pp == 1:
                vs = _choices(c.virtual_stages, [1])
            else:
                vs = _choices(c.virtual_stages, [v for v in range(1, MAX_VIRTUAL + 1)
                                                 if per_stage % v == 0 and (v == 1 or micro % pp == 0)])
            for v in vs:
                for rc in recomputes:
                    fitted_here = False
                    for z in zeros:
                        lay = Layout(tp=tp, pp=pp, dp=dp, ep=ep, cp=cp, micro_batch=mb, virtual_stages=v,
                                     zero=z, recompute=rc, sequence_parallel=sp,
                                     flash_attention=c.flash_attention)
                        mem = memory_breakdown(m, lay, seq_length, global_batch, precision, memory_gib, mem_opts)
                        res.evaluated += 1
                        if require_fit and not mem.fits:
                            if misfit is None or mem.total < misfit.memory.total:
                                misfit = Candidate(lay, mem, StepTime(0, 0, 0, 0, 0, 0, 0, 0, 0, micro))
                            continue
                        fitted_here = True
                        st = step_time(m, lay, seq_length, global_batch, hw, perf_opts, consts)
                        found.append(Candidate(lay, mem, st))
                    if fitted_here:
                        break  # heavier recompute is never faster (module docstring)
    found.sort(key=lambda cand: (cand.step.total, cand.memory.total))
    res.candidates = found[:keep]
    res.smallest_misfit = misfit
    return res
