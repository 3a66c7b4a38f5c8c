"""Fit the step-time model's few constants once, across every published run in mpg_cli/data/runs.yaml.

Usage: python scripts/fit_perf.py   (needs scipy; a development tool, not a runtime dependency)

Minimises the mean absolute log error of predicted vs measured tokens/s per GPU over all runs at
once: one set of constants for every run, never one per run. Prints the constants to paste into
mpg_cli/core/perf.py (PerfConstants) and the resulting summary.
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scipy.optimize import minimize  # noqa: E402

from mpg_cli.core.perf import DEFAULT_CONSTANTS, PerfConstants  # noqa: E402
from mpg_cli.validation import load_runs, predict_run, summary  # noqa: E402

NAMES = ("eta_ampere", "eta_hopper", "gemm_m0", "gemm_k0", "attention_ratio", "elementwise_passes", "overlap")


def build(x) -> PerfConstants:
    d = dict(zip(NAMES, x))
    return replace(DEFAULT_CONSTANTS, gemm_eta_max=(("ampere", d["eta_ampere"]), ("hopper", d["eta_hopper"])),
                   gemm_m0=d["gemm_m0"], gemm_k0=d["gemm_k0"], attention_ratio=d["attention_ratio"],
                   elementwise_passes=d["elementwise_passes"], overlap=d["overlap"])


BOUNDS = [(0.5, 0.98), (0.4, 0.95), (1.0, 4096), (1.0, 1024), (0.2, 1.2), (0.5, 40), (0.0, 0.99)]


def main() -> None:
    runs = load_runs()
    cache: dict = {}

    def loss(x) -> float:
        if any(not lo <= v <= hi for v, (lo, hi) in zip(x, BOUNDS)):
            return 10.0
        c = build(x)
        errs = [abs(math.log(r.predicted_tokens_s_gpu / r.measured_tokens_s_gpu))
                for r in (predict_run(run, c, cache) for run in runs)]
        return sum(errs) / len(errs)

    c0 = DEFAULT_CONSTANTS
    x0 = [dict(c0.gemm_eta_max)["ampere"], dict(c0.gemm_eta_max)["hopper"], c0.gemm_m0, c0.gemm_k0,
          c0.attention_ratio, c0.elementwise_passes, c0.overlap]
    print("start", loss(x0))
    res = minimize(loss, x0, method="Nelder-Mead", options={"maxfev": int(sys.argv[1]) if len(sys.argv) > 1 else 400,
                                                             "xatol": 1e-4, "fatol": 1e-7})
    print("loss", res.fun)
    for n, v in zip(NAMES, res.x):
        print(f"{n} = {v:.4g}")
    best = build(res.x)
    print(summary([predict_run(r, best, cache) for r in runs]))


if __name__ == "__main__":
    main()
