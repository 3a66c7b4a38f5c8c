"""Fit the step-time model's few constants across the published runs, with leave-one-source-out folds.

Usage: python scripts/fit_perf.py            (needs scipy and numpy: development tools, not runtime dependencies)
       python scripts/fit_perf.py --check    (exit 1 when the shipped file's runs hash is stale)
       python scripts/fit_perf.py --residuals-only
                                             (keep the stored constants and folds; recompute only the stored
                                              cross-validated errors, e.g. after a change to what is stored)

One set of constants for every run, never one per run. The loss is a robust (soft-L1) least squares on
log(predicted / measured) tokens/s per GPU, each benchmark family weighted equally (a family of 61 runs
counts as much as one of 5). Then, for every family, the constants are fitted again without it and that
family is predicted: the cross-validated error. A constant that no run of a fold informs falls back to
its stand-in rule (constants.PerfConstants.eta/attention), exactly as a user's unseen GPU generation would.

Then, stricter, for every source document (a paper, a README, a vendor's pages: ``PublishedRun.document``),
fitted without all of its families: a held-out document may take every run of a GPU generation with it, which then
uses its stand-in curve.

Writes mpg_cli/data/perf_constants.json: the constants, each fold's constants (families and documents), and the
provenance (runs-file
sha256, loss, in-sample and cross-validated errors per family and class, which sources inform each constant,
every run's cross-validated log error with its family and GPU generation (``cv_runs``: what an estimate's
uncertainty range is built from, mpg_cli/core/intervals.py), the date).
"""

from __future__ import annotations

import datetime
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from scipy.optimize import least_squares  # noqa: E402

from mpg_cli.core.perf import PerfConstants  # noqa: E402
from mpg_cli.validation import (  # noqa: E402
    CLASSES,
    CONSTANTS_FILE,
    PublishedRun,
    by_class,
    predict,
    published_runs,
    runs_file_hash,
    summary,
)

START = {
    "gemm_eta.ampere": 0.80, "gemm_eta.hopper": 0.65, "gemm_eta.blackwell": 0.60, "gemm_eta.blackwell-ultra": 0.6,
    "fp8_ratio": 1.0,
    "attention_eta.ampere": 0.35, "attention_eta.hopper-fa3": 0.45,
    "attention_eta.blackwell-fa3": 0.45,
    "gemm_m0": 300.0, "gemm_k0": 10.0, "elementwise_passes": 8.0, "overlap": 0.8,
}
BOUNDS = {
    "gemm_eta.ampere": (0.3, 0.98), "gemm_eta.hopper": (0.3, 0.98), "gemm_eta.blackwell": (0.3, 0.98),
    "gemm_eta.blackwell-ultra": (0.3, 0.98),
    "fp8_ratio": (0.8, 1.1),  # FP8 GEMMs reach at most about the fraction of their (2×) peak that bf16 reaches
    "attention_eta.ampere": (0.05, 0.9), "attention_eta.hopper-fa3": (0.05, 0.9),
    "attention_eta.blackwell-fa3": (0.05, 0.9),
    "gemm_m0": (1.0, 4096.0), "gemm_k0": (0.5, 1024.0), "elementwise_passes": (0.5, 40.0), "overlap": (0.0, 0.99),
}


def generation(run: PublishedRun) -> str:
    return run.request.cluster.gpu.generation


def informs(name: str, run: PublishedRun) -> bool:
    """Whether a run's prediction depends on this constant."""
    table, _, gen = name.partition(".")
    fp8 = run.request.precision == "fp8"
    if name == "fp8_ratio":
        return fp8
    if not gen:
        return True
    if table == "gemm_eta":
        return generation(run) == gen
    req = run.request
    if not req.constraints.flash_attention:
        return False
    consts = PerfConstants(gemm_eta={"ampere": 1, "hopper": 1, "blackwell": 1})
    return consts.attention_key(generation(run), req.perf.attention_kernel) == gen


def fit(runs: list[PublishedRun], x0: dict[str, float]) -> tuple[dict[str, float], float]:
    """Fit the constants that ``runs`` inform; return them and the loss (family-weighted soft-L1 of log errors)."""
    names = [n for n in START if any(informs(n, r) for r in runs)]
    fams: dict[str, int] = defaultdict(int)
    for r in runs:
        fams[r.family] += 1
    w = np.array([1.0 / math.sqrt(fams[r.family]) for r in runs])
    lo = np.array([BOUNDS[n][0] for n in names])
    hi = np.array([BOUNDS[n][1] for n in names])
    base = PerfConstants(gemm_eta={}, fp8_gemm_eta={}, attention_eta={})

    def consts(x: np.ndarray) -> PerfConstants:
        return base.with_values(dict(zip(names, x)))

    def resid(x: np.ndarray) -> np.ndarray:
        c = consts(x)
        out = []
        for r in runs:
            p = predict(r, c).predicted_tokens_s_gpu
            out.append(math.log(p / r.measured_tokens_s_gpu) if p else 3.0)
        return w * np.array(out)

    start = np.clip(np.array([x0.get(n, START[n]) for n in names]), lo * 1.0001, hi * 0.9999)
    res = least_squares(resid, start, bounds=(lo, hi), loss="soft_l1", f_scale=0.1, x_scale="jac",
                        diff_step=1e-3, max_nfev=400)
    return dict(zip(names, map(float, res.x))), float(res.cost) / len(fams)


def cv_errors(runs: list[PublishedRun], cv: list) -> dict:
    """The provenance fields of the cross-validated errors: per class (sorted) and per run (with family and
    GPU generation, the input of mpg_cli/core/intervals.py's ranges)."""
    return {
        # log(predicted / measured) of every run under its leave-one-out fold, per class (mpg_cli/validation.py
        # CLASSES): the error distribution in brief, for reading
        "cv_log_residuals": {cls: sorted(round(math.log(x.predicted_tokens_s_gpu / x.measured_tokens_s_gpu), 5)
                                         for x in cv if x.predicted_tokens_s_gpu and (cls == "all" or cls in x.classes))
                             for cls in ("all",) + CLASSES},
        # the same errors per run: the ranges need each run's family (errors are correlated within a family)
        "cv_runs": [{"id": r.id, "family": r.family, "generation": generation(r), "classes": list(x.classes),
                     "log_error": round(math.log(x.predicted_tokens_s_gpu / x.measured_tokens_s_gpu), 6)}
                    for r, x in zip(runs, cv) if x.predicted_tokens_s_gpu],
    }


def main() -> None:
    runs = list(published_runs())
    stored = {}
    if CONSTANTS_FILE.exists():
        stored = json.loads(CONSTANTS_FILE.read_text(encoding="utf-8"))
    if "--residuals-only" in sys.argv:
        from mpg_cli.validation import cross_validate

        if stored.get("provenance", {}).get("runs_sha256") != runs_file_hash():
            sys.exit("runs changed since the constants were fitted: run the full fit instead")
        stored["provenance"].update(cv_errors(runs, cross_validate()))
        CONSTANTS_FILE.write_text(json.dumps(stored, indent=1, sort_keys=False) + "\n", encoding="utf-8")
        print(f"cross-validated errors of {len(stored['provenance']['cv_runs'])} runs stored")
        return
    if "--check" in sys.argv:
        ok = stored.get("provenance", {}).get("runs_sha256") == runs_file_hash()
        print("constants are current" if ok else "runs changed: re-run scripts/fit_perf.py")
        sys.exit(0 if ok else 1)
    # every fit starts from START, never from the stored constants or the full fit: the result depends on the
    # code and the runs only (reproducible), and no fold starts from a point its held-out runs informed
    x0 = START
    full, loss = fit(runs, x0)
    print(f"all runs: loss {loss:.5f}")
    for n, v in full.items():
        print(f"  {n} = {v:.4g}")
    families = sorted({r.family for r in runs})
    folds: dict[str, dict[str, float]] = {}
    for fam in families:
        train = [r for r in runs if r.family != fam]
        folds[fam], _ = fit(train, START)
        print(f"fold without {fam}: done", flush=True)
    # the stricter check: leave one source document out (a paper, a README, a vendor's pages),
    # which can leave a GPU generation with no run to fit (its stand-in curve is used, as for an unseen GPU)
    document_folds: dict[str, dict[str, float]] = {}
    for doc_name in sorted({r.document for r in runs}):
        document_folds[doc_name], _ = fit([r for r in runs if r.document != doc_name], START)
        print(f"fold without document {doc_name}: done", flush=True)
    c_full = PerfConstants(gemm_eta={}, fp8_gemm_eta={}, attention_eta={}).with_values(full)
    ins = [predict(r, c_full) for r in runs]
    cv = [predict(r, PerfConstants(gemm_eta={}, fp8_gemm_eta={}, attention_eta={}).with_values(folds[r.family]))
          for r in runs]
    cv_doc = [predict(r, PerfConstants(gemm_eta={}, fp8_gemm_eta={}, attention_eta={})
                      .with_values(document_folds[r.document])) for r in runs]
    per_family = {fam: {"in_sample": summary([x for x in ins if x.family == fam]),
                        "cross_validated": summary([x for x in cv if x.family == fam])} for fam in families}
    informed = {n: sorted({r.family for r in runs if informs(n, r)}) for n in full}
    doc = {
        "description": "Fitted constants of mpg's step-time model (mpg_cli/core/perf). Written by scripts/fit_perf.py;"
                       " do not edit by hand.",
        "constants": full,
        "count": len(full),
        "folds": folds,
        "document_folds": document_folds,
        "provenance": {
            "runs_file": "mpg_cli/data/runs.yaml",
            "runs_sha256": runs_file_hash(),
            "runs": len(runs),
            "families": families,
            "loss": loss,
            "loss_definition": "family-weighted soft-L1 (f_scale 0.1) of log(predicted/measured) tokens/s per GPU",
            "in_sample": by_class(ins),
            "cross_validated": by_class(cv),
            "cross_validated_by_document": by_class(cv_doc),
            "per_family": per_family,
            "informed_by": informed,
            **cv_errors(runs, cv),
            "date": datetime.date.today().isoformat(),
        },
    }
    CONSTANTS_FILE.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(json.dumps({"in_sample": doc["provenance"]["in_sample"]["all"],
                      "cross_validated": doc["provenance"]["cross_validated"]["all"]}, indent=1))
    for cls, st in doc["provenance"]["cross_validated"].items():
        print(f"  CV {cls:12} n={st['runs']:3} median {st['median_abs_error']:.3f} p90 {st['p90_abs_error']:.3f}")


if __name__ == "__main__":
    main()
