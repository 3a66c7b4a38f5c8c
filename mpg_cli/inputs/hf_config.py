"""Convert a local Hugging Face ``config.json`` into an mpg model preset dict.

Only the standard library is used: no ``transformers`` import and no network.
The caller parses the JSON file; :func:`convert_hf_config` maps the parsed
dict onto mpg's model preset schema and raises :class:`PresetError` (naming
the file and the offending key) for anything it cannot map.

Supported ``model_type`` families: llama, mistral, mixtral, qwen2, qwen2_moe,
qwen3, qwen3_moe, phi3, olmo2, granite, gemma2, gemma3_text (also the text config
inside a multimodal config, e.g. gemma3), gpt_oss, gpt2, gpt_neox, falcon (also the
old ``RefinedWebModel`` / ``RefinedWeb`` names), deepseek_v2 and deepseek_v3.
Attention and FFN layouts follow the families' ``modeling_*.py`` in transformers
(v4.55): Qwen2/Qwen2-MoE put biases on Q, K and V only; Gemma 2/3 use a gated GeLU
FFN (three matrices, counted like SwiGLU) and tie the embeddings; gpt-oss has biases
on every projection and expert.

Sequence length: the pre-training context. When ``rope_scaling`` extends the context
(Llama 3.1, Qwen YaRN, Phi-3 LongRoPE, gpt-oss), ``original_max_position_embeddings``
(in ``rope_scaling``, or top-level as Phi-3 writes it) is taken; the preset's
``seq_length_source`` says where the value came from, and ``assumptions`` lists the
approximations (sliding-window layers modelled as full attention).

The per-family readers are in ``hf_families.py``; the typed key access they share is ``hf_reader.py``.
"""

from __future__ import annotations

from pathlib import Path, PurePath

from mpg_cli.errors import PresetError, did_you_mean
from mpg_cli.inputs.hf_families import CONVERTERS, DEEPSEEK, FALCON, LLAMA_LIKE
from mpg_cli.inputs.hf_reader import Reader

SUPPORTED_MODEL_TYPES: tuple[str, ...] = LLAMA_LIKE + ("gpt2", "gpt_neox") + FALCON + DEEPSEEK


def _name(raw: dict, source: str, model_type: str) -> str:
    """Model name: ``_name_or_path`` basename, else the file's dir (or stem), else model_type."""
    name_or_path = raw.get("_name_or_path")
    if isinstance(name_or_path, str):
        base = name_or_path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        if base:
            return base
    path = PurePath(source)
    if path.name == "config.json":
        parent = path.parent.name
        if not parent:
            try:
                parent = Path(source).absolute().parent.name
            except OSError:  # pragma: no cover - cwd vanished
                parent = ""
        if parent:
            return parent
    elif path.stem:
        # A config saved under its own name (e.g. ``llama3-8b.json``) names itself.
        return path.stem
    return model_type


_FAMILY = {"RefinedWebModel": "falcon", "RefinedWeb": "falcon"}
_TEXT_OF = {"gemma3": "gemma3_text"}


def convert_hf_config(raw: dict, source: str) -> dict:
    """Map a parsed Hugging Face ``config.json`` onto an mpg model preset dict.

    Raises :class:`PresetError` naming ``source`` and the offending key when
    the model family is unknown or a needed key is missing or malformed.
    """
    supported = ", ".join(SUPPORTED_MODEL_TYPES)
    if not isinstance(raw, dict):
        raise PresetError(
            f"{source}: expected a JSON object, got {type(raw).__name__}",
            hint="pass a Hugging Face config.json file",
        )
    model_type = raw.get("model_type")
    if model_type is None:
        raise PresetError(
            f"{source}: model_type: missing key in config.json; supported families: {supported}",
            hint="add a 'model_type' key naming one of the supported families",
        )
    if not isinstance(model_type, str):
        raise PresetError(
            f"{source}: model_type: expected a string, got {model_type!r} "
            f"({type(model_type).__name__})",
            hint=f"supported families: {supported}",
        )
    if model_type not in CONVERTERS and isinstance(raw.get("text_config"), dict):
        inner = dict(raw["text_config"])
        inner.setdefault("model_type", _TEXT_OF.get(model_type, f"{model_type}_text"))
        if "_name_or_path" in raw:
            inner.setdefault("_name_or_path", raw["_name_or_path"])
        preset = convert_hf_config(inner, source)
        preset["description"] += f"; the text model (text_config) of a {model_type} multimodal config"
        preset["assumptions"] = list(preset.get("assumptions", [])) + [
            f"{model_type}: only the language model (text_config) is counted; the vision tower is not"]
        return preset
    if model_type not in CONVERTERS:
        by_lower = {t.lower(): t for t in SUPPORTED_MODEL_TYPES}
        if model_type.lower() in by_lower:
            suggestion: str | None = f"did you mean {by_lower[model_type.lower()]!r}?"
        else:
            suggestion = did_you_mean(model_type, SUPPORTED_MODEL_TYPES)
        hint = f"supported families: {supported}"
        if suggestion:
            hint = f"{suggestion} {hint}"
        raise PresetError(
            f"{source}: model_type: unsupported model family {model_type!r}",
            hint=hint,
        )

    reader = Reader(raw, source)
    body = CONVERTERS[model_type](reader, model_type)
    family = _FAMILY.get(model_type, model_type)
    description = f"from Hugging Face config.json ({family})"
    if family == "falcon" and reader.get_bool("parallel_attn", True):
        description += "; parallel attention and MLP"
    preset = {"name": _name(raw, source, model_type), "description": description, "source": source}
    preset.update(body)
    return preset
