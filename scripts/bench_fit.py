"""Time the layout search (mpg fit) on large cases; prints layouts searched and seconds.

Usage: python scripts/bench_fit.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mpg_cli.core.perf import layer_kernels  # noqa: E402
from mpg_cli.core.planning import run_search  # noqa: E402
from mpg_cli.scenario import build_requests  # noqa: E402

CASES = [("gpt-1t", "dgx-a100", 3072), ("gpt3-175b", "dgx-a100", 1024), ("llama3-405b", "dgx-h100", 16384),
         ("deepseek-v3", "dgx-h100", 2048), ("mixtral-8x7b", "dgx-h100", 512), ("llama2-7b", "dgx-a100", 8)]


def main() -> None:
    for model, cluster, gpus in CASES:
        req = build_requests({"model": model, "cluster": cluster, "gpus": str(gpus)})[0]
        best = None
        for _ in range(3):
            layer_kernels.cache_clear()  # time a cold search, as one 'mpg fit' process runs it
            t0 = time.perf_counter()
            res = run_search(req, keep=10)
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        top = res.candidates[0].layout if res.candidates else None
        desc = (f"tp{top.tp} pp{top.pp} dp{top.dp} ep{top.ep} mb{top.micro_batch} v{top.virtual_stages} "
                f"z{top.zero} {top.recompute}") if top else "nothing fits"
        print(f"{model:>13} on {gpus:>6} GPUs: {res.evaluated:>6,} layouts ({res.shapes} shapes) in {best:.3f} s; "
              f"best {desc}")


if __name__ == "__main__":
    main()
