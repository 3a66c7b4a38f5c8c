"""Training configs people already have: ``--from FILE`` readers.

One module per format, each returning a :class:`~mpg_cli.inputs.base.TrainConfig`:

* ``megatron``   Megatron-LM argument lists and launch scripts      (:mod:`.megatron_args`)
* ``torchtitan`` torchtitan JobConfig TOML                           (:mod:`.torchtitan`)
* ``composer``   llm-foundry / Composer training YAML               (:mod:`.composer`)
* ``deepspeed``  DeepSpeed JSON config                               (:mod:`.deepspeed`)
* ``nemo``       NeMo 1.x Megatron GPT YAML                          (:mod:`.nemo`)
* ``hf``         a Hugging Face config.json or a model directory     (:mod:`.hf`)

:func:`read_config` detects the format from the content (and the extension) unless it is forced.
The CLI merges the result with the flags in :mod:`.merge`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ..errors import InputError, PresetError, did_you_mean

if TYPE_CHECKING:  # the readers' base module loads with the first --from file (presets and files import this package)
    from .base import TrainConfig

FORMATS = ("megatron", "torchtitan", "composer", "deepspeed", "nemo", "hf")
ALIASES = {"megatron-lm": "megatron", "titan": "torchtitan", "llm-foundry": "composer", "llmfoundry": "composer",
           "mosaic": "composer", "ds": "deepspeed", "huggingface": "hf", "hf-config": "hf", "config.json": "hf"}

__all__ = ["FORMATS", "detect", "read_config"]


def _format_name(fmt: str) -> str:
    key = fmt.strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in FORMATS:
        raise InputError(f"--from-format {fmt!r} is not one of {', '.join(FORMATS)}", hint=did_you_mean(key, FORMATS))
    return key


def _load_structured(path: Path, text: str) -> Any:
    """Parse JSON, TOML or YAML by extension (content decides when the extension says nothing)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        from .deepspeed import parse

        return parse(text, str(path))
    if suffix == ".toml":
        from .torchtitan import parse

        return parse(text, str(path))
    if suffix in (".yaml", ".yml"):
        from .files import load_yaml_file

        return load_yaml_file(path)
    return None


def detect(path: Path, text: str, data: Any) -> str:
    """The format of a file: structured content first, then the Megatron argument fingerprint."""
    from . import composer, deepspeed, megatron_args, nemo, torchtitan

    if isinstance(data, dict):
        if path.suffix.lower() == ".json" and ("model_type" in data or "architectures" in data):
            return "hf"
        if path.suffix.lower() == ".json" and deepspeed.looks_like(data):
            return "deepspeed"
        if path.suffix.lower() == ".toml" and torchtitan.looks_like(data):
            return "torchtitan"
        if nemo.looks_like(data):
            return "nemo"
        if composer.looks_like(data):
            return "composer"
    if data is None and megatron_args.looks_like(text):
        return "megatron"
    raise PresetError(f"{path}: cannot tell which trainer wrote this file",
                      hint=f"force it with --from-format ({', '.join(FORMATS)})")


def read_config(ref: str, fmt: Optional[str] = None) -> TrainConfig:
    """Read one ``--from`` file (or Hugging Face model directory) into a TrainConfig."""
    from .files import read_text

    forced = _format_name(fmt) if fmt else None
    path = Path(ref).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file() and forced in (None, "hf"):
            from .hf import read

            return read(path / "config.json")
        raise PresetError(f"{ref}: a directory without a config.json", hint="give a training config file")
    if not path.exists():
        raise PresetError(f"{ref}: file not found", hint="--from takes a training config file (or a model directory)")
    text = read_text(path, "training config")
    if not text.strip():
        raise PresetError(f"{path}: file is empty", hint="give a training config file")
    if forced == "megatron":
        data = None
    elif forced is not None:
        data = _parse_as(forced, path, text)
    else:
        data = _load_structured(path, text)
    name = forced or detect(path, text, data)
    if name != "megatron" and not isinstance(data, dict):
        raise PresetError(f"{path}: expected a mapping of keys at the top level for a {name} config")
    if name == "megatron":
        from .megatron_args import read as read_megatron

        return read_megatron(text, str(path))
    if name == "hf":
        from .hf import read

        return read(path, data)
    module = __import__(f"{__name__}.{name}", fromlist=["from_dict"])
    return module.from_dict(data, str(path))


def _parse_as(fmt: str, path: Path, text: str) -> Any:
    if fmt in ("deepspeed", "hf"):
        from .deepspeed import parse

        return parse(text, str(path))
    if fmt == "torchtitan":
        from .torchtitan import parse

        return parse(text, str(path))
    from .files import load_yaml_file

    return load_yaml_file(path)
