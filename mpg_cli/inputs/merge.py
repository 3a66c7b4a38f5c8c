"""Merge ``--from`` files with the command-line flags.

Precedence: a flag given on the command line (or a key of a ``--scenarios`` entry) beats every file;
files given together must agree on any value they both give; what no file and no flag gives is left
to mpg's defaults and search. The notes this returns go first in the result's assumptions: each value
taken from a file (``tp 8 from --tensor-model-parallel-size``), each framework default applied, each key
ignored, each approximation, and each flag that overrides a file.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import InputError

if TYPE_CHECKING:  # the readers' module loads only when a --from file is given
    from .base import TrainConfig

# TrainConfig field -> (estimate option, flag shown in messages)
SIMPLE = {
    "tp": "--tp", "pp": "--pp", "dp": "--dp", "cp": "--cp", "ep": "--ep", "virtual_stages": "--virtual-stages",
    "micro_batch": "--micro-batch", "zero": "--zero", "recompute": "--recompute",
    "sequence_parallel": "--[no-]sequence-parallel", "seq_length": "--seq-length", "global_batch": "--global-batch",
    "precision": "--precision", "tokens": "--tokens", "gpus": "--gpus",
}
NOTE_KEYS = ("_from_notes", "_from_warnings", "_from_keys")


def _val(x: Any) -> Any:
    return getattr(x, "value", x)


def _short(source: str) -> str:
    return PurePath(source).name or source


def _combine(cfgs: list[TrainConfig]) -> dict[str, tuple[Any, TrainConfig]]:
    from .base import LABELS, show

    merged: dict[str, tuple[Any, TrainConfig]] = {}
    for cfg in cfgs:
        for f, v in cfg.values().items():
            if f in ("model", "model_ref"):
                other = merged.get("model") or merged.get("model_ref")
                if other is not None:
                    raise InputError(f"{other[1].source} and {cfg.source} both give a model",
                                     hint="pass one model file; a trainer config without a model combines with it")
            elif f in merged and merged[f][0] != v:
                first, src = merged[f]
                raise InputError(f"{src.source} and {cfg.source} disagree on {LABELS[f]}: {show(first)} vs {show(v)}",
                                 hint=f"fix one file, or set it with {SIMPLE.get(f, 'a flag')}")
            merged.setdefault(f, (v, cfg))
    return merged


def apply_from(opts: dict[str, Any], *, use_model: bool = True, extra_explicit: Iterable[str] = (),
               skip: Iterable[str] = (), command: str = "") -> dict[str, Any]:
    """Options with the ``--from`` files' values filled in where no flag gives them (see module docstring)."""
    paths = list(opts.get("from_") or [])
    if not paths:
        return opts
    from . import read_config
    from .base import LABELS

    explicit = set(opts.get("_explicit") or ()) | set(extra_explicit)
    notes: list[str] = []
    cfgs = [read_config(p, opts.get("from_format")) for p in paths]
    merged = _combine(cfgs)
    for f in skip:
        if f in merged:
            value, cfg = merged.pop(f)
            notes.append(f"{_short(cfg.source)} ({cfg.format}): {cfg.origin_of(f) or LABELS[f]}: not used by {command}")
    out = dict(opts)
    out["from_"] = None
    warnings: list[str] = []
    for cfg in cfgs:
        warnings.extend(cfg.warnings)
    _take_model(out, opts, merged, explicit, notes, paths, use_model, command)
    keys = _take_values(out, opts, merged, explicit, notes)
    _take_derived(out, opts, merged, explicit, notes, keys)
    out["_from_warnings"] = list(opts.get("_from_warnings") or []) + warnings
    out["_from_keys"] = {**(opts.get("_from_keys") or {}), **{k: v for k, v in keys.items()}}
    for cfg in cfgs:
        for n in cfg.notes:
            if n.kind in ("ignored", "approx") or (n.kind in ("default", "derived", "from") and not n.field):
                _note(notes, cfg, n.text)
    out["_from_notes"] = list(opts.get("_from_notes") or []) + notes
    return out


def _note(notes: list[str], cfg: TrainConfig, text: str) -> None:
    notes.append(f"{_short(cfg.source)} ({cfg.format}): {text}")


def _take_model(out: dict[str, Any], opts: dict[str, Any], merged: dict[str, tuple[Any, TrainConfig]],
                explicit: set[str], notes: list[str], paths: list[str], use_model: bool, command: str) -> None:
    """The files' model, unless -m gives one or the command chooses it; an error when a model is needed and none is given."""
    mv = merged.get("model") or merged.get("model_ref")
    if mv is not None:
        value, cfg = mv
        origin = cfg.origin_of("model") or cfg.origin_of("model_ref")
        if not use_model:
            _note(notes, cfg, f"{origin}: not used ({command} chooses the model)")
        elif "model" in explicit:
            _note(notes, cfg, f"{origin}; overridden by -m {opts.get('model')}")
        else:
            if isinstance(value, dict):
                from ..presets import model_from_dict

                out["model"] = model_from_dict(value, cfg.source, origin=f"{cfg.format} config {cfg.source}")
            else:
                out["model"] = value
            _note(notes, cfg, origin)
    elif use_model and "model" not in explicit:
        raise InputError(f"{', '.join(paths)}: no model shape in the file(s)",
                         hint="add the model with -m (a preset, a config.json or a model directory) or another "
                              "--from config.json")


def _take_values(out: dict[str, Any], opts: dict[str, Any], merged: dict[str, tuple[Any, TrainConfig]],
                 explicit: set[str], notes: list[str]) -> dict[str, str]:
    """The plain values no flag gives (a flag that overrides one is noted); returns where each taken one came from."""
    from .base import LABELS, show

    keys: dict[str, str] = {}
    for f, flag in SIMPLE.items():
        if f not in merged:
            continue
        value, cfg = merged[f]
        text = cfg.origin_of(f) or f"{LABELS[f]} {show(value)}"
        if f in explicit:
            given = _val(opts.get(f))
            if f == "sequence_parallel":
                if bool(given) != bool(value):
                    _note(notes, cfg, f"{text}; overridden by --{'' if given else 'no-'}sequence-parallel")
            elif f == "tokens" or str(given) != str(value):
                _note(notes, cfg, f"{text}; overridden by {flag} {show(given)}")
            continue
        out[f] = _to_opt(f, value)
        keys[f] = text
        _note(notes, cfg, text)
    moved = [f for f in ("tp", "pp", "cp") if f in explicit and f in merged and str(_val(opts.get(f))) != str(merged[f][0])]
    if moved and "dp" in keys and "dp" not in explicit:
        out["dp"] = None
        notes.append(f"dp {keys.pop('dp').split(' ')[1]} from the file not used: {', '.join('--' + f for f in moved)} "
                     "given, so dp is derived")
    return keys


def _take_derived(out: dict[str, Any], opts: dict[str, Any], merged: dict[str, tuple[Any, TrainConfig]],
                  explicit: set[str], notes: list[str], keys: dict[str, str]) -> None:
    """The values that need the GPU count: the global batch from a per-replica batch, the GPUs a batch implies,
    and tokens from training steps."""
    if "batch_per_replica" in merged and out.get("global_batch") is None:
        bpr, cfg = merged["batch_per_replica"]
        dp, how = _dp(out)
        if dp is not None:
            out["global_batch"] = bpr * dp
            keys["global_batch"] = f"global batch {bpr * dp:,} = {bpr} per replica × dp {dp}"
            _note(notes, cfg, f"{cfg.origin_of('batch_per_replica')}: global batch {bpr * dp:,} ({bpr} × dp {dp}{how})")
        else:
            _note(notes, cfg, f"{cfg.origin_of('batch_per_replica')}: not applied ({how}); global batch left to the default")
    if out.get("gpus") is None and out.get("global_batch") and out.get("micro_batch") and "gpus" not in explicit:
        fitted = _gpus_for_batch(out)
        if fitted is not None:
            n, why = fitted
            out["gpus"] = str(n)
            notes.append(f"GPUs {n:,}: {why}; set --gpus")
    if "train_steps" in merged:
        steps, cfg = merged["train_steps"]
        origin = cfg.origin_of("train_steps")
        gbs = out.get("global_batch")
        seq = out.get("seq_length") or _model_seq(out)
        if "tokens" in explicit:
            _note(notes, cfg, f"{origin}; overridden by --tokens {opts.get('tokens')}")
        elif out.get("tokens") is not None and "tokens" in keys:
            pass
        elif gbs and seq:
            tokens = float(steps) * gbs * seq
            out["tokens"] = f"{tokens:.0f}"
            keys["tokens"] = f"tokens {tokens:.4g}"
            _note(notes, cfg, f"tokens {tokens:.4g} = {origin} × global batch {gbs:,} × sequence length {seq:,}")
        else:
            _note(notes, cfg, f"{origin}: not turned into tokens (global batch unknown); tokens left to the default")


def _to_opt(f: str, value: Any) -> Any:
    if f == "gpus":
        return str(value)
    if f == "tokens":
        return f"{value:.0f}"
    return value


def _model_seq(opts: dict[str, Any]) -> Any:
    m = opts.get("model")
    if not isinstance(m, str):
        return getattr(m, "seq_length", None)
    try:
        from ..presets import load_model

        return load_model(m, opts.get("presets")).seq_length
    except Exception:  # noqa: BLE001 - a bad model is reported by build_requests with its own message
        return None


def _gpus_for_batch(opts: dict[str, Any]) -> Any:
    """When no GPU count is given and the whole cluster cannot run the file's global batch and micro-batch,
    the largest GPU count (within the cluster) whose dp divides global batch / micro-batch."""
    try:
        from ..presets import load_cluster

        total = load_cluster(opts.get("cluster", "dgx-a100"), opts.get("presets")).total_gpus
    except Exception:  # noqa: BLE001 - the cluster error is reported by build_requests
        return None
    gbs, mb = opts["global_batch"], opts["micro_batch"]
    mp = (opts.get("tp") or 1) * (opts.get("pp") or 1) * (opts.get("cp") or 1)
    if gbs % mb or total % mp:
        return None
    if gbs % ((total // mp) * mb) == 0:
        return None  # the whole cluster works
    per = gbs // mb
    dp = max((d for d in range(1, min(per, total // mp) + 1) if per % d == 0), default=None)
    if dp is None:
        return None
    return dp * mp, (f"the file gives no GPU count and the whole cluster ({total:,}) cannot split global batch "
                     f"{gbs:,} into micro-batches of {mb}; the most GPUs that can (dp {dp} × tp·pp·cp {mp})")


def _dp(opts: dict[str, Any]) -> tuple[Any, str]:
    """(dp, how it was found) for the global batch of a per-replica batch, or (None, why not)."""
    from ..parsing import parse_gpus

    if opts.get("dp"):
        return opts["dp"], ""
    counts = parse_gpus(opts.get("gpus"))
    how = ""
    if not counts:
        try:
            from ..presets import load_cluster

            counts = [load_cluster(opts.get("cluster", "dgx-a100"), opts.get("presets")).total_gpus]
            how = f", the whole cluster's {counts[0]:,} GPUs"
        except Exception:  # noqa: BLE001 - the cluster error is reported by build_requests
            return None, "cluster unknown"
    if len(counts) > 1:
        return None, "several --gpus counts"
    mp = (opts.get("tp") or 1) * (opts.get("pp") or 1) * (opts.get("cp") or 1)
    if counts[0] % mp:
        return None, f"tp·pp·cp {mp} does not divide {counts[0]} GPUs"
    return counts[0] // mp, how


def with_file_notes(results: list[Any], opts: dict[str, Any]) -> list[Any]:
    """The results with the --from notes, the sequence length's source and the model's approximations first
    in their assumptions, and the files' warnings added to their warnings (results are frozen: new ones)."""
    from dataclasses import replace

    from ..core.assumptions import note

    out = []
    for r in results:
        m = r.request.model
        seq = _seq_assumption(r.seq_length, m, opts)
        head = [note(t) for t in opts.get("_from_notes") or []] + ([seq] if seq else []) + [note(t) for t in m.notes]
        head = [a for a in head if a not in r.assumptions]
        warnings = [w for w in dict.fromkeys(opts.get("_from_warnings") or []) if w not in r.warnings]
        out.append(replace(r, assumptions=tuple(head) + r.assumptions, warnings=r.warnings + tuple(warnings)))
    return out


def _seq_assumption(seq: int, m: Any, opts: dict[str, Any]) -> Any:
    """Where the sequence length came from (None when a --from file's note already says it)."""
    from ..core.assumptions import Assumption

    if "seq_length" in set(opts.get("_explicit") or ()):
        return Assumption("seq_length", seq, "--seq-length")
    if "seq_length" in (opts.get("_from_keys") or {}):
        return None  # the file's note says where it came from
    if opts.get("_seq_from"):
        return Assumption("seq_length", seq, opts["_seq_from"])
    if m.seq_source:
        return Assumption("seq_length", seq, f"the model ({m.name}: {m.seq_source})", ("--seq-length",))
    return Assumption("seq_length", seq, f"the {m.name} model's seq_length", ("--seq-length",), {"model_default": True})
