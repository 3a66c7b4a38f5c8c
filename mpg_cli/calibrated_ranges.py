"""How well calibrated projections hold on the published runs: the residuals behind calibrated ranges.

``mpg calibrate`` measures one run and scales the step-time model by measured/predicted. To know how far
such a projection can be trusted, the same is done on the public runs: within each source's benchmark family
(the leave-one-source-out unit of ``mpg validate``), the family's first run calibrates (ratio =
measured / cross-validated predicted tokens/s), and every other run of the family is projected with that
ratio. The log errors ``log(projected / measured)`` of those projections are the residuals of a calibrated
estimate's range. Families with one run project nothing. Cross-validated predictions are used because a
user's cluster is a source the constants were not fitted on.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence


def projection_residuals(runs: Sequence) -> list[float]:
    """Log errors of calibrate-on-first, project-the-rest, within each family (module docstring).

    ``runs``: objects with ``family``, ``measured_tokens_s_gpu`` and ``predicted_tokens_s_gpu`` (RunResult)."""
    first: dict[str, float] = {}
    out: list[float] = []
    for r in runs:
        if r.predicted_tokens_s_gpu is None or not r.measured_tokens_s_gpu:
            continue
        if r.family not in first:
            first[r.family] = r.measured_tokens_s_gpu / r.predicted_tokens_s_gpu
            continue
        out.append(math.log(r.predicted_tokens_s_gpu * first[r.family] / r.measured_tokens_s_gpu))
    return sorted(out)


@lru_cache(maxsize=1)
def calibrated_log_residuals() -> tuple[tuple[float, ...], str]:
    """(residuals, description) over all published runs, cross-validated predictions."""
    from .validation import cross_validate

    runs = cross_validate()
    res = projection_residuals(runs)
    fams = len({r.family for r in runs})
    return tuple(res), (f"calibrated projections on the public runs ({len(res)} runs projected from the first run "
                        f"of their source family, {fams} families)")
