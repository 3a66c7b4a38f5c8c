"""Scenario files and repeated flags -> one estimate's options per scenario (mpg compare, mpg report).

A scenarios file is a YAML list of estimate inputs, each with a label; every key is checked here, with the
same bounds as its flag, and a bad value names the file, the entry and the key.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any, Optional

from ..errors import InputError, PresetError, did_you_mean

# scenario-file keys and how to read them (the estimate options, by their Python names)
INT_KEYS = ("seq_length", "global_batch", "micro_batch", "tp", "pp", "dp", "ep", "cp", "virtual_stages", "zero")
FLOAT_KEYS = ("goodput", "price", "tflops", "mfu", "reserved_gib", "headroom", "failures_per_gpu_hour", "storage_tb_s",
              "restart_minutes", "checkpoint_minutes", "maintenance_fraction", "interval")
STR_KEYS = ("label", "model", "cluster", "gpu", "gpus", "tokens", "precision", "recompute", "optimizer", "calibration")
BOOL_KEYS = ("sequence_parallel", "flash_attention", "async_checkpoint")
SCENARIO_KEYS = INT_KEYS + FLOAT_KEYS + STR_KEYS + BOOL_KEYS + ("from", "from_format")


def default_label(model: str, cluster: str, gpu: Optional[str], gpus: Any) -> str:
    return f"{model} @ {cluster}" + (f"/{gpu}" if gpu else "") + f" × {gpus}"


# the same limits as the flags (mpg_cli/options.py and scenario.build_requests), checked here so that the
# message names the file, the scenario and the key instead of a flag the user never typed
INT_RANGE = {"seq_length": (1, 10_000_000), "global_batch": (1, 100_000_000), "micro_batch": (1, 1_000_000),
             "tp": (1, 1_000_000), "pp": (1, 1_000_000), "dp": (1, 10_000_000), "ep": (1, 1_000_000),
             "cp": (1, 1_000_000), "virtual_stages": (1, 1_000_000), "zero": (0, 3)}
FLOAT_RANGE = {"goodput": (0.0, 1.0, False), "price": (0.0, 1e9, True), "tflops": (0.0, 1e9, False),
               "mfu": (0.0, 1.0, False), "reserved_gib": (0.0, 1e9, True), "headroom": (0.0, 0.9, True),
               # the goodput and range keys, with the bounds scenario.goodput_options checks their flags against
               "failures_per_gpu_hour": (0.0, 1.0, True), "storage_tb_s": (0.0, 1e9, False),
               "restart_minutes": (0.0, 1e9, True), "checkpoint_minutes": (0.0, 1e9, False),
               "maintenance_fraction": (0.0, 0.9, True), "interval": (0.5, 0.99, True)}
CHOICES = {"precision": ("bf16", "fp16", "fp8"), "recompute": ("none", "selective", "full"),
           "optimizer": ("adam", "adam8bit")}
MAX_SCENARIOS = 256  # ~15 ms each (an 8B on 2 cores): 256 stay within seconds; more is a job for a script over mpg estimate


def _scenario_opts(entry: Any, where: str, base: dict[str, Any]) -> dict[str, Any]:
    from ..inputs.files import _show

    if not isinstance(entry, dict):
        raise PresetError(f"{where}: expected a mapping of estimate options, got {_show(entry)}")
    out = dict(base)
    for raw_key, value in entry.items():
        key = str(raw_key).replace("-", "_")
        if key not in SCENARIO_KEYS:
            raise PresetError(f"{where}: {raw_key if isinstance(raw_key, str) else _show(raw_key)}: unknown key", hint=did_you_mean(key, SCENARIO_KEYS)
                              or f"allowed keys: {', '.join(SCENARIO_KEYS)}")
        if value is None:
            continue  # explicit null = not given
        if key == "from":
            files = value if isinstance(value, list) else [value]
            if not files or not all(isinstance(f, str) and f for f in files):
                raise PresetError(f"{where}: from: expected a file path or a list of them, got {value!r}")
            base_dir = Path(where.split(":")[0]).parent
            out["from_"] = list(base.get("from_") or []) + [f if Path(f).is_absolute() or Path(f).exists()
                                                            else str(base_dir / f) for f in files]
            continue
        if key == "from_format":
            if not isinstance(value, str):
                raise PresetError(f"{where}: from_format: expected text, got {value!r}")
            out["from_format"] = value
            continue
        out[key] = _checked(key, raw_key, value, where)
    return out


def _checked(key: str, raw_key: Any, value: Any, where: str) -> Any:
    """One scenario value checked with its flag's type and bounds (floats as float, text as str)."""
    from ..inputs.files import _show

    got = _show(value)
    if key in INT_KEYS:
        lo, hi = INT_RANGE[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise PresetError(f"{where}: {raw_key}: expected a whole number, got {got}")
        if not lo <= value <= hi:
            raise PresetError(f"{where}: {raw_key}: must be between {lo:,} and {hi:,}, got {got}")
    if key in FLOAT_KEYS:
        flo, fhi, zero_ok = FLOAT_RANGE[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PresetError(f"{where}: {raw_key}: expected a number, got {got}")
        try:
            value = float(value)
        except OverflowError:
            raise PresetError(f"{where}: {raw_key}: {got} is implausibly large") from None
        if not math.isfinite(value) or value < flo or (value == flo and not zero_ok) or value > fhi:
            bound = f"{'at least' if zero_ok else 'greater than'} {flo:g} and at most {fhi:g}"
            raise PresetError(f"{where}: {raw_key}: must be {bound}, got {got}")
    if key in BOOL_KEYS and not isinstance(value, bool):
        raise PresetError(f"{where}: {raw_key}: expected true or false, got {got}")
    if key in STR_KEYS:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise PresetError(f"{where}: {raw_key}: expected text, got {got}")
        if isinstance(value, int) and abs(value) > 10**18:
            raise PresetError(f"{where}: {raw_key}: {got} is implausibly large")
        value = str(value)
        if key in CHOICES and value not in CHOICES[key]:
            raise PresetError(f"{where}: {raw_key}: {got} is not one of {', '.join(CHOICES[key])}",
                              hint=did_you_mean(value, CHOICES[key]))
    if key in ("tokens", "gpus"):
        from ..parsing import parse_gpus, parse_tokens

        try:
            parse_tokens(value) if key == "tokens" else parse_gpus(value)
        except InputError as exc:
            raise PresetError(f"{where}: {raw_key}: {exc.message.split(': ', 1)[-1]}",
                              hint=f"e.g. {key}: {'300B' if key == 'tokens' else '64'}") from None
    return value


def scenarios(opts: dict[str, Any], models: list[str], clusters: list[str], gpu_types: list[str],
              gpus: list[str], scenario_file: Optional[str]) -> list[tuple[str, dict[str, Any]]]:
    """(label, estimate options) for each scenario: a file's list, or the cross product of repeated flags."""
    from ..inputs.merge import apply_from

    if scenario_file is not None:
        from ..inputs.files import load_yaml_file

        mixed = [flag for flag, v in (("--model", models), ("--cluster", clusters), ("--gpu", gpu_types),
                                      ("--gpus", gpus)) if v]
        if mixed:
            raise InputError(f"--scenarios and {', '.join(mixed)} both given: the file lists the scenarios",
                             hint="put the model, cluster and GPUs into each scenario of the file, or leave --scenarios out")

        path = Path(scenario_file)
        data = load_yaml_file(path)
        if isinstance(data, dict) and set(data) == {"scenarios"}:
            data = data["scenarios"]
        if not isinstance(data, list) or not data:
            raise PresetError(f"{path}: expected a list of scenarios (or 'scenarios: [...]')",
                              hint="each item: label, model, cluster, gpus, tokens, … (the estimate options)")
        if len(data) > MAX_SCENARIOS:
            raise PresetError(f"{path}: {len(data):,} scenarios; compare takes at most {MAX_SCENARIOS:,}",
                              hint="split the file, or loop over 'mpg estimate --format json' in a script")
        out = []
        for i, entry in enumerate(data):
            where = f"{path}: scenarios[{i}]"
            o = _scenario_opts(entry, where, opts)
            given = {str(k).replace("-", "_") for k in entry} if isinstance(entry, dict) else set()
            o = apply_from(o, extra_explicit=given)
            label = o.pop("label", None) or default_label(_name(o["model"]), o["cluster"], o.get("gpu"),
                                                          o.get("gpus") or "all")
            o["_where"] = f"{where} ({label})"
            out.append((label, o))
        labels = [lbl for lbl, _ in out]
        dupes = {x for x in labels if labels.count(x) > 1}
        if dupes:
            raise PresetError(f"{path}: duplicate labels: {', '.join(sorted(dupes))}", hint="give each scenario a unique label")
        return out
    from ..inputs.merge import apply_from

    out = []
    g_list: list[Any] = list(gpu_types) or [opts.get("gpu")]
    n_list: list[Any] = list(gpus) or [opts.get("gpus")]
    for m, c, g, n in itertools.product(models or [opts["model"]], clusters or [opts["cluster"]], g_list, n_list):
        o = apply_from({**opts, "model": m, "cluster": c, "gpu": g, "gpus": n})
        out.append((default_label(_name(o["model"]), c, g, o.get("gpus") or "all"), o))
    return out


def _name(model: Any) -> str:
    """A model option's label: a preset name or path as given, or a ModelSpec's name (from --from)."""
    return getattr(model, "name", model)
