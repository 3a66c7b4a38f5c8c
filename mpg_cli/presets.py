"""Load and validate presets: YAML files (built-in, user directory, or a path) and HF config.json.

Every problem becomes a ``PresetError`` whose message names the file and the key path,
with a did-you-mean hint. YAML is read with a safe loader that also refuses aliases
(no alias bombs) and tags.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from .core.specs import ClusterSpec, GpuSpec, MLASpec, ModelSpec, MoESpec
from .errors import PresetError, did_you_mean
# file reading lives in inputs/files.py; these names stay importable from here (re-exported)
from .inputs.files import MAX_FILE_BYTES as MAX_FILE_BYTES
from .inputs.files import _is_dir, _show
from .inputs.files import load_json_file as load_json_file
from .inputs.files import load_yaml_file as load_yaml_file
from .inputs.files import read_text as read_text

KINDS = ("models", "gpus", "clusters")


# ---------------------------------------------------------------- where presets live

def builtin_dir() -> Path:
    """The presets shipped in the wheel (mpg_cli/presets) or, in a checkout, the repo's presets/."""
    here = Path(__file__).resolve().parent
    packaged = here / "presets"
    return packaged if packaged.is_dir() else here.parent / "presets"


def user_dirs(extra: Optional[str] = None) -> list[tuple[str, Path]]:
    """User preset directories, highest priority first: --presets, $MPG_PRESETS, the per-user app dir."""
    out: list[tuple[str, Path]] = []
    if extra is not None:
        if not _is_dir(extra):
            raise PresetError(f"--presets {extra!r}: not a directory", hint="give a folder with models/, gpus/, clusters/")
        out.append(("--presets", Path(extra).expanduser()))
    env = os.environ.get("MPG_PRESETS")
    if env:
        if not _is_dir(env):
            raise PresetError(f"MPG_PRESETS={env!r}: not a directory", hint="unset it or point it at a preset folder")
        out.append(("MPG_PRESETS", Path(env)))
    out.append(("user", Path(_app_dir())))
    return out


def _app_dir() -> str:
    from typer import get_app_dir  # the CLI has imported typer already

    return get_app_dir("mpg")


@dataclass(frozen=True)
class PresetRef:
    name: str
    kind: str
    path: Path
    origin: str  # 'built-in', 'user', 'MPG_PRESETS', '--presets'


def all_refs(kind: str, extra_dir: Optional[str] = None) -> list[PresetRef]:
    """Every preset file of ``kind``, lowest priority first: built-in, user dir, $MPG_PRESETS, --presets."""
    out: list[PresetRef] = []
    sources = [("built-in", builtin_dir())] + list(reversed(user_dirs(extra_dir)))
    for origin, base in sources:
        folder = base / kind
        if not folder.is_dir():
            continue
        for p in sorted(folder.glob("*.y*ml")):
            if p.is_file():
                out.append(PresetRef(p.stem, kind, p, origin))
    return out


def available(kind: str, extra_dir: Optional[str] = None) -> dict[str, PresetRef]:
    """All presets of ``kind`` by name; user directories override built-ins."""
    return {r.name: r for r in all_refs(kind, extra_dir)}


def complete(kind: str) -> Callable[[str], list[str]]:
    """Shell completion of preset names (a directory listing: cheap enough for every Tab)."""

    def names(incomplete: str) -> list[str]:
        extra = os.environ.get("MPG_PRESETS")
        return [n for n in available(kind, extra) if n.startswith(incomplete)]

    return names


# ---------------------------------------------------------------- reading files

# ---------------------------------------------------------------- validation

MAX_COUNT = 10_000_000  # layers, widths, vocabularies, sequence lengths: far above any real model


def _num(where: str, key: str, value: Any, *, integer: bool = False, minimum: float = 0.0, strict: bool = True) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "a whole number" if integer else "a number"
        raise PresetError(f"{where}: {key}: expected {kind}, got {_show(value)}")
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise PresetError(f"{where}: {key}: must be a finite number, got {_show(value)}")
    if integer and (isinstance(value, float) and not value.is_integer()):
        raise PresetError(f"{where}: {key}: expected a whole number, got {_show(value)}")
    if (strict and value <= minimum) or (not strict and value < minimum):
        bound = f"greater than {minimum:g}" if strict else f"at least {minimum:g}"
        raise PresetError(f"{where}: {key}: must be {bound}, got {_show(value)}")
    if value > (MAX_COUNT if integer else 1e30):
        raise PresetError(f"{where}: {key}: {_show(value)} is implausibly large (at most {MAX_COUNT:,} for counts)")
    return int(value) if integer else float(value)


def _str(where: str, key: str, value: Any, choices: tuple[str, ...] = ()) -> str:
    if not isinstance(value, str):
        raise PresetError(f"{where}: {key}: expected text, got {_show(value)}")
    if choices and value not in choices:
        raise PresetError(f"{where}: {key}: {value!r} is not one of {', '.join(choices)}",
                          hint=did_you_mean(value, choices))
    return value


def _bool(where: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise PresetError(f"{where}: {key}: expected true or false, got {_show(value)}")
    return value


Field = tuple[Callable[[str, str, Any], Any], bool]  # (validator, required)


def _texts(where: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise PresetError(f"{where}: {key}: expected a list of text lines, got {_show(value)}")
    return tuple(value)


def _int(minimum: float = 0.0, strict: bool = True) -> Callable[[str, str, Any], Any]:
    return lambda w, k, v: _num(w, k, v, integer=True, minimum=minimum, strict=strict)


def _float(minimum: float = 0.0, strict: bool = True) -> Callable[[str, str, Any], Any]:
    return lambda w, k, v: _num(w, k, v, minimum=minimum, strict=strict)


def _choice(*choices: str) -> Callable[[str, str, Any], Any]:
    return lambda w, k, v: _str(w, k, v, choices)


# Bounds on cluster shape, so every search's work stays bounded: the largest scale-up domain sold is
# 576 GPUs (NVIDIA GB300 NVL576, announced 2025), the largest published clusters ~10^5 GPUs.
MAX_GPUS_PER_NODE = 1024
MAX_NODES = 1_000_000


def _capped(cap: int) -> Callable[[str, str, Any], Any]:
    def check(w: str, k: str, v: Any) -> Any:
        n = _num(w, k, v, integer=True)
        if n > cap:
            raise PresetError(f"{w}: {k}: {n:,} is more than mpg accepts ({cap:,})",
                              hint="a node is one scale-up domain (8 GPUs in a DGX, 72 in an NVL72 rack)")
        return n
    return check


_TEXT = (lambda w, k, v: _str(w, k, v), False)
COMMON = {"name": (lambda w, k, v: _str(w, k, v), False), "description": _TEXT, "source": _TEXT, "notes": _TEXT}

MOE_FIELDS: dict[str, Field] = {
    "experts": (_int(), True), "top_k": (_int(), True), "expert_ffn_hidden_size": (_int(), True),
    "shared_experts": (_int(0, strict=False), False), "shared_expert_ffn_hidden_size": (_int(), False),
    "dense_layers": (_int(0, strict=False), False),
}
MLA_FIELDS: dict[str, Field] = {
    "q_lora_rank": (_int(0, strict=False), True), "kv_lora_rank": (_int(), True),
    "qk_nope_head_dim": (_int(), True), "qk_rope_head_dim": (_int(0, strict=False), True), "v_head_dim": (_int(), True),
}
MODEL_FIELDS: dict[str, Field] = {
    **COMMON,
    "layers": (_int(), True), "hidden_size": (_int(), True), "heads": (_int(), True), "kv_heads": (_int(), False),
    "head_dim": (_int(), False), "ffn_hidden_size": (_int(), False), "ffn_type": (_choice("gelu", "swiglu"), False),
    "vocab_size": (_int(), True), "seq_length": (_int(), True),
    "tied_embeddings": (_bool, False), "position_embedding": (_choice("learned", "rope", "alibi", "none"), False),
    "linear_biases": (_bool, False), "norm": (_choice("layernorm", "rmsnorm"), False),
    "dropout": (_bool, False), "batch_tokens": (_float(), False),
    "qkv_bias": (_bool, False), "seq_length_source": _TEXT, "assumptions": (_texts, False),
    "mtp_layers": (_int(0, strict=False), False),
    "moe": (None, False), "mla": (None, False), "params": (_float(), False),  # type: ignore[dict-item]
}
PEAK_FIELDS: dict[str, Field] = {k: (_float(), False) for k in ("bf16", "fp16", "fp8", "tf32")}
GENERATIONS = ("volta", "ampere", "ada", "hopper", "blackwell", "blackwell-ultra", "cdna2", "cdna3", "cdna4", "gaudi", "tpu")
GPU_FIELDS: dict[str, Field] = {
    **COMMON,
    "generation": (_choice(*GENERATIONS), False), "memory_gib": (_float(), True), "peak_tflops": (None, True),  # type: ignore[dict-item]
    "memory_bandwidth_tb_s": (_float(), True), "tdp_watts": (_float(), False), "intra_node_gb_s": (_float(), False),
    "price_usd_per_hour": (_float(), False), "price_as_of": _TEXT, "price_source": _TEXT,
}
CLUSTER_FIELDS: dict[str, Field] = {
    **COMMON,
    "gpu": (lambda w, k, v: _str(w, k, v), True), "gpus_per_node": (_capped(MAX_GPUS_PER_NODE), True),
    "nodes": (_capped(MAX_NODES), True),
    "intra_node_gb_s": (_float(), True), "inter_node_gb_s": (_float(), True),
    "price_usd_per_gpu_hour": (_float(), False), "price_as_of": _TEXT, "price_source": _TEXT,
    "pue": (_float(1.0, strict=False), False),
    "intra_node_topology": (_choice("switch", "mesh"), False),
    # goodput model (core/goodput.py): job interruptions per GPU-hour, or the per-GPU MTBF (hours) it inverts;
    # checkpoint storage bandwidth
    "failures_per_gpu_hour": (_float(0.0, strict=False), False), "mtbf_hours": (_float(), False),
    "storage_tb_s": (_float(), False),
}


def _check_mapping(where: str, data: Any, fields: dict[str, Field], prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        got = "a list" if isinstance(data, list) else _show(data)
        raise PresetError(f"{where}: {prefix or 'top level'}: expected a mapping of keys to values, got {got}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in fields:
            path = f"{prefix}{_show(key)}" if not isinstance(key, str) else path
            raise PresetError(f"{where}: {path}: unknown key", hint=did_you_mean(str(key), fields) or
                              f"allowed keys: {', '.join(sorted(fields))}")
        validator, _ = fields[key]
        if value is None:
            continue  # explicit null = not given
        out[key] = value if validator is None else validator(where, path, value)
    for key, (_, required) in fields.items():
        if required and out.get(key) is None:
            raise PresetError(f"{where}: {prefix}{key}: missing key", hint=f"add '{key}: ...' to the file")
    return out


def model_from_dict(d: Any, where: str, origin: str = "") -> ModelSpec:
    """Validate a model mapping and build a ModelSpec."""
    v = _check_mapping(where, d, MODEL_FIELDS)
    h, heads = v["hidden_size"], v["heads"]
    kv = v.get("kv_heads", heads)
    moe = mla = None
    if "moe" in v:
        x = _check_mapping(where, v["moe"], MOE_FIELDS, "moe.")
        if x["top_k"] > x["experts"]:
            raise PresetError(f"{where}: moe.top_k: {x['top_k']} is more than moe.experts ({x['experts']})")
        if x.get("dense_layers", 0) >= v["layers"]:
            raise PresetError(f"{where}: moe.dense_layers: must be fewer than layers ({v['layers']})")
        moe = MoESpec(**x)
    if "mla" in v:
        mla = MLASpec(**_check_mapping(where, v["mla"], MLA_FIELDS, "mla."))
    if "head_dim" not in v and mla is None and h % heads:
        raise PresetError(f"{where}: heads: {heads} does not divide hidden_size {h}",
                          hint="set head_dim explicitly, or fix heads")
    if heads % kv:
        raise PresetError(f"{where}: kv_heads: {kv} does not divide heads {heads}",
                          hint="grouped-query attention needs heads to be a multiple of kv_heads")
    ffn_type = v.get("ffn_type", "gelu")
    ffn = v.get("ffn_hidden_size", 4 * h if ffn_type == "gelu" else None)
    if ffn is None:
        raise PresetError(f"{where}: ffn_hidden_size: missing key (required for swiglu)",
                          hint="Llama-style SwiGLU models use about 8/3·hidden rounded up; give the exact value")
    return ModelSpec(
        name=v.get("name") or Path(where).stem, layers=v["layers"], hidden_size=h, heads=heads, kv_heads=kv,
        head_dim=v.get("head_dim"), ffn_hidden_size=ffn, ffn_type=ffn_type, vocab_size=v["vocab_size"],
        seq_length=v["seq_length"], tied_embeddings=v.get("tied_embeddings", False),
        position_embedding=v.get("position_embedding", "rope"), linear_biases=v.get("linear_biases", False),
        norm=v.get("norm", "layernorm"), qkv_bias=v.get("qkv_bias", False), moe=moe, mla=mla,
        mtp_layers=v.get("mtp_layers", 0),
        declared_params=v.get("params"), seq_source=v.get("seq_length_source", ""), notes=v.get("assumptions", ()),
        dropout=v.get("dropout", False), batch_tokens=v.get("batch_tokens"),
        description=v.get("description", ""), source=v.get("source", ""), origin=origin or where,
    )


def gpu_from_dict(d: Any, where: str, origin: str = "") -> GpuSpec:
    """Validate a GPU mapping and build a GpuSpec."""
    v = _check_mapping(where, d, GPU_FIELDS)
    peaks = _check_mapping(where, v["peak_tflops"], PEAK_FIELDS, "peak_tflops.")
    if not peaks:
        raise PresetError(f"{where}: peak_tflops: give at least one of bf16, fp16, fp8, tf32")
    return GpuSpec(
        name=v.get("name") or Path(where).stem, memory_gib=v["memory_gib"], peak_tflops=tuple(sorted(peaks.items())),
        memory_bandwidth_tb_s=v["memory_bandwidth_tb_s"], tdp_watts=v.get("tdp_watts"),  # type: ignore[arg-type]
        generation=v.get("generation", "hopper"), intra_node_gb_s=v.get("intra_node_gb_s"),
        price_usd_per_hour=v.get("price_usd_per_hour"), price_as_of=v.get("price_as_of", ""),
        price_source=v.get("price_source", ""), description=v.get("description", ""), source=v.get("source", ""),
        origin=origin or where,
    )


def cluster_from_dict(d: Any, where: str, gpu_loader: Callable[[str], GpuSpec], origin: str = "") -> ClusterSpec:
    """Validate a cluster mapping and build a ClusterSpec (the GPU is resolved by name or path)."""
    v = _check_mapping(where, d, CLUSTER_FIELDS)
    if "failures_per_gpu_hour" in v and "mtbf_hours" in v:
        raise PresetError(f"{where}: failures_per_gpu_hour and mtbf_hours both given",
                          hint="give one: mtbf_hours is one GPU's mean time between failures = 1 / failures_per_gpu_hour")
    if v.get("failures_per_gpu_hour", 0.0) > 1.0:
        raise PresetError(f"{where}: failures_per_gpu_hour: {v['failures_per_gpu_hour']:g} is more than one failure "
                          "per GPU-hour", hint="Llama 3 saw about 2e-5 (419 interruptions in 54 days on 16,384 GPUs)")
    rate = v.get("failures_per_gpu_hour", 1.0 / v["mtbf_hours"] if "mtbf_hours" in v else None)
    try:
        gpu = gpu_loader(v["gpu"])
    except PresetError as exc:
        raise PresetError(f"{where}: gpu: {exc.message}", hint=exc.hint) from None
    return ClusterSpec(
        name=v.get("name") or Path(where).stem, gpu=gpu, gpus_per_node=v["gpus_per_node"], nodes=v["nodes"],
        intra_node_gb_s=v["intra_node_gb_s"], inter_node_gb_s=v["inter_node_gb_s"],
        price_usd_per_gpu_hour=v.get("price_usd_per_gpu_hour"), price_as_of=v.get("price_as_of", ""),
        price_source=v.get("price_source", ""), pue=v.get("pue"), description=v.get("description", ""),
        intra_node_topology=v.get("intra_node_topology", "switch"), source=v.get("source", ""), origin=origin or where,
        failures_per_gpu_hour=rate, storage_tb_s=v.get("storage_tb_s"),
    )


# ---------------------------------------------------------------- resolving names and paths

def _looks_like_path(ref: str) -> bool:
    return os.sep in ref or "/" in ref or ref.endswith((".yaml", ".yml", ".json"))


def find(kind: str, ref: str, extra_dir: Optional[str] = None) -> PresetRef:
    """Resolve a preset name or a path to a file."""
    if not isinstance(ref, str) or not ref.strip():
        raise PresetError(f"{kind[:-1]}: empty name", hint=f"run 'mpg presets list {kind}'")
    from .safeio import user_path

    flag = {"models": "--model", "gpus": "--gpu", "clusters": "--cluster"}.get(kind, kind)
    path = user_path(ref, flag)
    try:
        if kind == "models" and path.is_dir() and (path / "config.json").is_file():
            return PresetRef(path.name, kind, path / "config.json", "path")  # a Hugging Face model directory
        is_file = path.is_file()
        exists = path.exists()
    except (OSError, ValueError):
        is_file = exists = False
    if _looks_like_path(ref) or is_file:
        if not exists:
            raise PresetError(f"{ref}: file not found", hint=f"or use a built-in {kind[:-1]} name (mpg presets list {kind})")
        return PresetRef(path.stem, kind, path, "path")
    table = available(kind, extra_dir)
    if ref in table:
        return table[ref]
    hint = did_you_mean(ref, table) or f"run 'mpg presets list {kind}' to see the {len(table)} available"
    raise PresetError(f"unknown {kind[:-1]} preset {ref!r}", hint=hint)


def load_model(ref: str, extra_dir: Optional[str] = None) -> ModelSpec:
    """A model from a preset name, a YAML file, or a Hugging Face config.json."""
    pr = find("models", ref, extra_dir)
    if pr.path.suffix == ".json":
        from .inputs.hf_config import convert_hf_config

        raw = load_json_file(pr.path)
        if not isinstance(raw, dict):
            raise PresetError(f"{pr.path}: expected a JSON object (a Hugging Face config.json)")
        return model_from_dict(convert_hf_config(raw, str(pr.path)), str(pr.path), origin=f"path {pr.path}")
    return model_from_dict(load_yaml_file(pr.path), str(pr.path), origin=_origin(pr))


def load_gpu(ref: str, extra_dir: Optional[str] = None) -> GpuSpec:
    pr = find("gpus", ref, extra_dir)
    return gpu_from_dict(load_yaml_file(pr.path), str(pr.path), origin=_origin(pr))


def load_cluster(ref: str, extra_dir: Optional[str] = None) -> ClusterSpec:
    pr = find("clusters", ref, extra_dir)
    return cluster_from_dict(load_yaml_file(pr.path), str(pr.path), lambda g: load_gpu(g, extra_dir), origin=_origin(pr))


def _origin(pr: PresetRef) -> str:
    return f"{pr.origin} {pr.path}" if pr.origin != "built-in" else f"built-in {pr.kind}/{pr.name}"
