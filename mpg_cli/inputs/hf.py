"""A Hugging Face ``config.json`` (or a model directory holding one) as a ``--from`` source.

The model shape comes from :func:`mpg_cli.hf_config.convert_hf_config`; the sequence length from the
pre-training context it reports (``seq_length_source``). A config.json says nothing about the
layout, batch or tokens: combine it with a trainer config (e.g. a DeepSpeed JSON) or the flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from .base import Collector, Note, TrainConfig

NAME = "hf"


def read(path: Path, data: Optional[Any] = None) -> TrainConfig:
    from .hf_config import convert_hf_config
    from .files import load_json_file

    raw = load_json_file(path) if data is None else data
    col = Collector(NAME, str(path))
    if not isinstance(raw, dict):
        raise col.fail("top level", "expected a JSON object (a Hugging Face config.json)")
    preset = convert_hf_config(raw, str(path))
    col.values["model"] = preset
    col.notes.append(Note("from", f"model {preset['name']} {preset['description']}", "model"))
    return col.build()
