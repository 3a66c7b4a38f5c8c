"""Compatibility shim: the Hugging Face ``config.json`` converter moved to :mod:`mpg_cli.inputs.hf_config`."""

from __future__ import annotations

from mpg_cli.inputs.hf_config import SUPPORTED_MODEL_TYPES, convert_hf_config

__all__ = ["SUPPORTED_MODEL_TYPES", "convert_hf_config"]
