"""Predict the published runs shipped in mpg_cli/data/runs.yaml and compare with what was measured.

For each run, the published layout is fixed (tp, pp, cp, ep, ZeRO/FSDP, recompute, micro-batch and
virtual stages where the source gives them); what the source does not give is searched, as an
expert would tune it, under the memory model. Tokens/s per GPU is compared because it does not
depend on how a source counts FLOPs (docs/modeling-notes.md 8).

Two figures are reported for every run: **in-sample** (the shipped constants, fitted on all runs) and
**cross-validated** (leave one source out: the constants fitted without the run's benchmark family,
stored per fold in ``mpg_cli/data/perf_constants.json`` by ``scripts/fit_perf.py``). The cross-validated
figure is the one to trust for runs mpg has never seen.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from .core.estimate import Request, hardware_of
from .core.flops import token_flops
from .core.perf import PerfConstants, PerfOptions, constants_from_document, load_default_constants, step_time
from .core.search import Candidate, Constraints, search
from .core.specs import ClusterSpec, MemoryOptions, ModelSpec
from .errors import PresetError
from .presets import load_cluster, load_gpu, load_yaml_file, model_from_dict

DATA = Path(__file__).resolve().parent / "data"
RUNS_FILE = DATA / "runs.yaml"
CONSTANTS_FILE = DATA / "perf_constants.json"


@dataclass(frozen=True)
class PublishedRun:
    """One published benchmark point, as mpg's inputs."""

    id: str
    group: str  # the source (paper, README, benchmark page)
    family: str  # the leave-one-out unit: one source's benchmark family
    classes: tuple[str, ...]  # dense-bf16 | moe | fp8, the GPU generation, fsdp
    request: Request
    measured_tokens_s_gpu: float
    unmodelled: tuple[str, ...]
    source: str
    search_space: tuple[tuple[str, Any], ...] = ()  # what the source's framework can do (fixed for the layout check)

    @property
    def document(self) -> str:
        """The source document the run's group comes from, the unit of the stricter leave-one-out check: one
        paper, one README or one vendor's pages (llm-foundry's A100 and H100 FP8 tables are one README)."""
        return "llm-foundry-benchmarking-readme" if self.group.startswith("llm-foundry") else self.group


@dataclass(frozen=True)
class RunResult:
    id: str
    group: str
    family: str
    classes: tuple[str, ...]
    gpus: int
    measured_tokens_s_gpu: float
    predicted_tokens_s_gpu: Optional[float]
    predicted_mfu: Optional[float]  # model FLOPs (mpg convention, full s²) / dense peak at the run's precision
    measured_mfu: Optional[float]  # the measured tokens/s converted to the same definition
    layout: str
    source: str
    memory_fraction: Optional[float] = None  # predicted memory / capacity for the layout used
    memory_fits: Optional[bool] = None
    unmodelled: tuple[str, ...] = ()
    generation: str = ""  # the GPU generation: the class an uncertainty range is drawn for (core.intervals)

    @property
    def error(self) -> Optional[float]:
        if self.predicted_tokens_s_gpu is None:
            return None
        return self.predicted_tokens_s_gpu / self.measured_tokens_s_gpu - 1.0


def runs_file_hash(path: Path = RUNS_FILE) -> str:
    """sha256 of the runs file: the fitted constants record the runs they were fitted on."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_runs(path: Path = RUNS_FILE) -> list[dict]:
    runs = load_yaml_file(path)
    if not isinstance(runs, list):
        raise PresetError(f"{path}: expected a list of runs")
    return runs


def _classes(model: ModelSpec, precision: str, generation: str, zero: Optional[int]) -> tuple[str, ...]:
    out = ["moe" if model.moe is not None else ("dense-bf16" if precision != "fp8" else "dense-fp8")]
    if precision == "fp8":
        out.append("fp8")
    out.append(generation)
    if generation.startswith("blackwell") and generation != "blackwell":
        out.append("blackwell")  # Blackwell Ultra (B300, GB300) counts in the Blackwell class too
    if zero == 3:
        out.append("fsdp")
    return tuple(out)


def build_run(run: dict) -> PublishedRun:
    """A runs.yaml entry as an mpg request (what the source gives fixed; the rest left to the search)."""
    where = f"runs.yaml:{run['id']}"
    model = model_from_dict(run["model"], where)
    if "cluster" in run:
        cluster = replace(load_cluster(run["cluster"]), nodes=10**6)
    else:
        gpu = load_gpu(run["gpu"])
        cluster = ClusterSpec(name=run["id"], gpu=gpu, gpus_per_node=run["gpus_per_node"], nodes=10**6,
                              intra_node_gb_s=run["intra_node_gb_s"], inter_node_gb_s=run["inter_node_gb_s"])
    lay = run["layout"]
    fw = run.get("framework", {})
    precision = run.get("precision", "bf16")
    cons = Constraints(tp=lay["tp"], pp=lay["pp"], dp=lay.get("dp"), ep=lay.get("ep"), cp=lay.get("cp"),
                       micro_batch=lay.get("micro_batch"), virtual_stages=lay.get("virtual_stages"),
                       zero=lay.get("zero"), recompute=lay.get("recompute"),
                       sequence_parallel=lay.get("sequence_parallel"), flash_attention=lay.get("flash_attention", True))
    impl = fw.get("sharded_impl", "fsdp")
    gb = lay.get("grad_reduce_bytes")
    popts = PerfOptions(grad_reduce_bytes=gb, overlap_grad_reduce=fw.get("overlap_grad_reduce", True),
                        tp_comm_overlap=fw.get("tp_comm_overlap", False), sharded_impl=impl,
                        attention_kernel=fw.get("attention_kernel", "auto"))
    mopts = MemoryOptions(sharded_impl=impl, grad_reduce_bytes=gb)
    req = Request(model=model, cluster=cluster, gpus=run["gpus"], global_batch=run["global_batch"],
                  precision=precision, constraints=cons, perf=popts, memory=mopts)
    return PublishedRun(id=run["id"], group=run["group"], family=run.get("family", run["group"]),
                        classes=_classes(model, precision, cluster.gpu.generation, lay.get("zero")), request=req,
                        measured_tokens_s_gpu=float(run["measured"]["tokens_per_s_per_gpu"]),
                        unmodelled=tuple(run.get("unmodelled") or ()), source=run.get("source", ""),
                        search_space=tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                                                  for k, v in (run.get("search_space") or {}).items())))


@lru_cache(maxsize=1)
def published_runs() -> tuple[PublishedRun, ...]:
    return tuple(build_run(r) for r in load_runs())


@lru_cache(maxsize=512)
def run_candidates(run: PublishedRun) -> tuple[tuple[Candidate, ...], bool]:
    """The layouts the search may pick for a run (memory only: independent of the step-time constants).

    Returns (candidates, fits): the fitting layouts, or every layout when the memory model says none fits
    (the run happened, so it is timed anyway and the miss is reported).
    """
    req = run.request
    seq = req.model.seq_length
    hw = hardware_of(req.cluster, req.precision)
    common = (req.model, hw, req.gpus, seq, req.global_batch, req.precision, req.cluster.gpu.memory_gib,
              req.constraints, req.memory, req.perf)
    res = search(*common, keep=10**6, time_layouts=False)
    if res.candidates:
        return tuple(res.candidates), True
    res = search(*common, keep=10**6, require_fit=False, time_layouts=False)
    return tuple(res.candidates), False


def predict(run: PublishedRun, consts: PerfConstants) -> RunResult:
    """Predict one published run with ``consts``: the fastest of its candidate layouts."""
    req = run.request
    m, seq, gbs = req.model, req.model.seq_length, req.global_batch or 1
    cands, fits = run_candidates(run)
    peak = req.cluster.gpu.peak(req.precision) or 0.0
    per_token = token_flops(m, seq).model
    measured_mfu = run.measured_tokens_s_gpu * per_token / (peak * 1e12) if peak else None
    if not cands:
        return RunResult(run.id, run.group, run.family, run.classes, req.gpus, run.measured_tokens_s_gpu, None, None,
                         measured_mfu, "no layout", run.source, unmodelled=run.unmodelled,
                         generation=req.cluster.gpu.generation)
    hw = hardware_of(req.cluster, req.precision)
    best, best_t = None, math.inf
    for cand in cands:
        t = step_time(m, cand.layout, seq, gbs, hw, req.perf, consts).total
        if t < best_t:
            best, best_t = cand, t
    assert best is not None
    pred = gbs * seq / (best_t * req.gpus)
    b = best.layout
    desc = f"tp{b.tp} pp{b.pp} dp{b.dp} cp{b.cp} ep{b.ep} mb{b.micro_batch} v{b.virtual_stages} z{b.zero} {b.recompute}"
    return RunResult(run.id, run.group, run.family, run.classes, req.gpus, run.measured_tokens_s_gpu, pred,
                     pred * per_token / (peak * 1e12), measured_mfu, desc, run.source,
                     best.memory.fraction_of_capacity, fits and best.memory.fits, run.unmodelled,
                     req.cluster.gpu.generation)


@dataclass(frozen=True)
class LayoutGap:
    """How much faster the best layout ``mpg fit`` finds is than mpg's prediction of the published one."""

    id: str
    gain: Optional[float]  # best / published predicted throughput − 1 (None: the search found no fitting layout)
    best: str


def layout_gap(run: PublishedRun, consts: Optional[PerfConstants] = None) -> LayoutGap:
    """Search the run's GPUs and global batch within what its framework can do (``search_space``).

    Vendors tune their recipes: a model that finds layouts much faster than the published one is too
    cheap about some cost (the issue's check: at most 15 % faster for 90 % of runs).
    """
    c = consts or load_default_constants()
    req = run.request
    published = predict(run, c)
    space = dict(run.search_space)
    fixed = {k: v for k, v in space.items() if not isinstance(v, (list, tuple))}
    choices = {k: list(v) for k, v in space.items() if isinstance(v, (list, tuple))}
    found = []
    for combo in itertools.product(*choices.values()):  # a list in search_space is the framework's set of choices
        picked = dict(zip(choices, combo))
        cons = Constraints(flash_attention=req.constraints.flash_attention, **fixed, **picked)
        res = search(req.model, hardware_of(req.cluster, req.precision), req.gpus, req.model.seq_length,
                     req.global_batch, req.precision, req.cluster.gpu.memory_gib, cons, req.memory, req.perf,
                     c, keep=1)
        found += res.candidates
    if not found or published.predicted_tokens_s_gpu is None:
        return LayoutGap(run.id, None, "nothing fits")
    best = min(found, key=lambda cand: cand.seconds_per_sequence)
    assert best.step is not None
    tps = (req.global_batch or 1) * req.model.seq_length / (best.step.total * req.gpus)
    b = best.layout
    desc = f"tp{b.tp} pp{b.pp} dp{b.dp} cp{b.cp} ep{b.ep} mb{b.micro_batch} v{b.virtual_stages} z{b.zero} {b.recompute}"
    return LayoutGap(run.id, tps / published.predicted_tokens_s_gpu - 1.0, desc)


def load_constants_document(path: Path = CONSTANTS_FILE) -> dict[str, Any]:
    import json

    return json.loads(path.read_text(encoding="utf-8"))


def fold_constants(doc: Optional[dict[str, Any]] = None, unit: str = "family") -> dict[str, PerfConstants]:
    """Each leave-one-out fold's constants, keyed by the family (``unit`` 'family') or the source document
    (``unit`` 'document', ``PublishedRun.document``) it left out."""
    doc = doc if doc is not None else load_constants_document()
    key = "folds" if unit == "family" else "document_folds"
    return {name: constants_from_document({"constants": vals}) for name, vals in doc.get(key, {}).items()}


def validate_all(consts: Optional[PerfConstants] = None) -> list[RunResult]:
    """In-sample predictions: every run with the shipped (or given) constants."""
    c = consts or load_default_constants()
    return [predict(r, c) for r in published_runs()]


def cross_validate(unit: str = "family") -> list[RunResult]:
    """Leave-one-source-out predictions: each run with the constants fitted without its benchmark family, or
    (``unit`` 'document', stricter) without every family of its source document."""
    folds = fold_constants(unit=unit)
    out = []
    for r in published_runs():
        name = r.family if unit == "family" else r.document
        c = folds.get(name)
        if c is None:
            raise PresetError(f"{CONSTANTS_FILE.name}: no fold for {unit} {name!r}",
                              hint="re-run scripts/fit_perf.py after changing the runs")
        out.append(predict(r, c))
    return out


def summary(results: list[RunResult]) -> dict[str, float]:
    """Median and 90th percentile of |error|, and the share within ±20 %."""
    errs = sorted(abs(r.error) for r in results if r.error is not None)
    if not errs:
        return {"runs": 0, "median_abs_error": float("nan"), "p90_abs_error": float("nan"), "within_20pct": 0.0,
                "unpredicted": len(results)}
    n = len(errs)

    def pct(q: float) -> float:
        k = q * (n - 1)
        lo = int(k)
        hi = min(lo + 1, n - 1)
        return errs[lo] + (errs[hi] - errs[lo]) * (k - lo)

    return {"runs": n, "median_abs_error": pct(0.5), "p90_abs_error": pct(0.9),
            "within_20pct": sum(e <= 0.20 for e in errs) / n, "unpredicted": len(results) - n}


CLASSES = ("dense-bf16", "dense-fp8", "moe", "fp8", "fsdp", "ampere", "hopper", "blackwell")


def by_class(results: list[RunResult]) -> dict[str, dict[str, float]]:
    """The summary overall and for each class of run."""
    out = {"all": summary(results)}
    for cls in CLASSES:
        sel = [r for r in results if cls in r.classes]
        if sel:
            out[cls] = summary(sel)
    return out


CLASS_LABELS = {"all": "**all**", "dense-bf16": "dense bf16", "dense-fp8": "dense FP8", "moe": "MoE",
                "fp8": "FP8 (dense and MoE)", "fsdp": "FSDP / ZeRO-3", "ampere": "Ampere (A100)",
                "hopper": "Hopper (H100)", "blackwell": "Blackwell (B200, B300, GB200, GB300)"}


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def accuracy_tables(ins: list[RunResult], cv: list[RunResult], cv_document: list[RunResult]) -> str:
    """The README's accuracy tables (Markdown): cross-validated first (a family left out, then a whole source
    document left out), by class and by left-out family."""
    ci, cc, cp = by_class(ins), by_class(cv), by_class(cv_document)
    lines = ["| class | runs | CV median | CV p90 | CV within ±20 % | document left out: median, p90 | "
             "in-sample median | in-sample p90 |", "|---|---|---|---|---|---|---|---|"]
    for k, st in cc.items():
        lines.append(f"| {CLASS_LABELS.get(k, k)} | {st['runs']} | {_pct(st['median_abs_error'])} | "
                     f"{_pct(st['p90_abs_error'])} | {_pct(st['within_20pct'])} | "
                     f"{_pct(cp[k]['median_abs_error'])}, {_pct(cp[k]['p90_abs_error'])} | "
                     f"{_pct(ci[k]['median_abs_error'])} | {_pct(ci[k]['p90_abs_error'])} |")
    lines += ["", "| benchmark family (left out in its fold) | runs | CV median | CV p90 | in-sample median | "
                  "worst CV miss |", "|---|---|---|---|---|---|"]
    for fam in sorted({r.family for r in cv}):
        sel = [r for r in cv if r.family == fam]
        s, si = summary(sel), summary([r for r in ins if r.family == fam])
        worst = max(sel, key=lambda r: abs(r.error or 0.0))
        lines.append(f"| {fam} | {s['runs']} | {_pct(s['median_abs_error'])} | {_pct(s['p90_abs_error'])} | "
                     f"{_pct(si['median_abs_error'])} | {worst.id}: {100 * (worst.error or 0.0):+.1f} % |")
    return "\n".join(lines) + "\n"


def constants_table(doc: Optional[dict[str, Any]] = None) -> str:
    """The README's table of fitted constants: value and how many benchmark families inform each."""
    doc = doc if doc is not None else load_constants_document()
    informed = doc.get("provenance", {}).get("informed_by", {})
    lines = ["| constant | value | informed by |", "|---|---|---|"]
    for k, v in doc["constants"].items():
        fams = informed.get(k, [])
        lines.append(f"| `{k}` | {v:.4g} | {len(fams)} famil{'y' if len(fams) == 1 else 'ies'} |")
    return "\n".join(lines) + "\n"
