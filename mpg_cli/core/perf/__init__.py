"""Step-time performance model: predict one training iteration's time from the layout.

Rooms: ``constants`` (fitted numbers as data, named physical numbers), ``hardware`` (what the model needs
of the cluster and the framework), ``kernels`` (per-layer GEMM, attention, element-wise and logits times),
``comm`` (collectives, latency, overlap), ``step`` (the iteration, one function per term).
"""

from .comm import all_to_all_time, collective_time, exposed, ring_latency
from .constants import STAND_IN, PerfConstants, constants_from_document, load_default_constants
from .hardware import SHARDED_IMPLS, Hardware, PerfOptions
from .kernels import LayerKernels, layer_kernels
from .step import StepTime, compute_bound, step_time

__all__ = [
    "SHARDED_IMPLS", "STAND_IN", "Hardware", "LayerKernels", "PerfConstants", "PerfOptions", "StepTime",
    "all_to_all_time", "collective_time", "compute_bound", "constants_from_document", "exposed", "layer_kernels",
    "load_default_constants", "ring_latency", "step_time",
]
