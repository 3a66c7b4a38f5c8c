"""Step-time performance model: predict one training iteration's time from the layout.

Rooms: ``constants`` (fitted numbers as data, named physical numbers), ``hardware`` (what the model needs
of the cluster and the framework), ``kernels`` (per-layer GEMM, attention, element-wise and logits times),
``comm`` (collectives, latency, overlap), ``step`` (the iteration, one function per term).
"""

from __future__ import annotations

import importlib
from typing import Any

# Attributes load their room on first use (PEP 562): the CLI's option defaults import ``perf.hardware`` at
# start-up, and ``mpg --help`` should not pay for the kernels, the collectives and the constants file.
_ROOMS = {
    "all_to_all_time": "comm", "collective_time": "comm", "exposed": "comm", "ring_latency": "comm",
    "STAND_IN": "constants", "PerfConstants": "constants", "constants_from_document": "constants",
    "load_default_constants": "constants", "SHARDED_IMPLS": "hardware", "Hardware": "hardware",
    "PerfOptions": "hardware", "LayerKernels": "kernels", "layer_kernels": "kernels", "StepTime": "step",
    "compute_bound": "step", "pipeline_bound": "step", "step_time": "step",
}


def __getattr__(name: str) -> Any:
    room = _ROOMS.get(name)
    if room is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{room}", __name__), name)


__all__ = [
    "SHARDED_IMPLS", "STAND_IN", "Hardware", "LayerKernels", "PerfConstants", "PerfOptions", "StepTime",
    "all_to_all_time", "collective_time", "compute_bound", "pipeline_bound", "constants_from_document", "exposed", "layer_kernels",
    "load_default_constants", "ring_latency", "step_time",
]
