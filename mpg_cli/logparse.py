"""Compatibility shim: the log reader moved to :mod:`mpg_cli.inputs.logs` (one module per dialect)."""

from __future__ import annotations

from mpg_cli.inputs.logs import MAX_LINE, SUPPORTED_FORMATS, LogSummary, _to_bytes, detect_format, parse_log

__all__ = ["MAX_LINE", "SUPPORTED_FORMATS", "LogSummary", "_to_bytes", "detect_format", "parse_log"]
