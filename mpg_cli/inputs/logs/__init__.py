"""Read a (partial) training log and extract the measured steady-state throughput.

This backs ``mpg calibrate train.log``: a short real run of the job is used to
calibrate the estimate. Five log dialects are understood (``SUPPORTED_FORMATS``):

* ``megatron``   Megatron-LM (and Megatron-DeepSpeed) ``iteration N/M | ...`` lines.
* ``nemo``       NeMo 1.x Lightning progress bar (``train_step_timing in s=...``)
                 and NeMo 2.x ``Training epoch 0, iteration N/M | ...`` lines.
* ``torchtitan`` ``step: N  loss: ...  memory: ...GiB(..%)  tps: ...  tflops: ...  mfu: ..%``
                 (older versions: ``wps:`` and ANSI colour codes).
* ``hf-trainer`` Hugging Face Trainer: the final ``{'train_runtime': ...}`` summary, or,
                 for a run killed before it, tqdm's ``s/it`` rate.
* ``deepspeed``  DeepSpeed ThroughputTimer ``CurrSamplesPerSec=`` lines, plus the
                 ``train_batch_size`` config line and the flops profiler summary.

Warm-up: by default the first ``max(2, 10% of records)`` records are skipped, then
any leading records whose cost (step time, or inverse throughput) is more than
1.5x the median of the records after the counted skip. An explicit ``warmup=N``
skips exactly N records and nothing more. The medians of the remaining records
are reported; fewer than 3 remaining records is an error.

One module per dialect (``megatron``, ``nemo``, ``torchtitan``, ``hf_trainer``, ``deepspeed``); ``formats``
detects which wrote a log and ``summary`` turns the records into a ``LogSummary``. Only the standard library,
:mod:`mpg_cli.errors` and the Megatron argument reader are used. Nothing here asserts;
every failure is a :class:`~mpg_cli.errors.LogFormatError` (or ``InputError`` for a
bad ``warmup``/``fmt`` argument).
"""

from __future__ import annotations

from .base import MAX_LINE, SUPPORTED_FORMATS, LogSummary, _to_bytes
from .formats import detect_format
from .summary import parse_log

__all__ = ["MAX_LINE", "SUPPORTED_FORMATS", "LogSummary", "_to_bytes", "detect_format", "parse_log"]
