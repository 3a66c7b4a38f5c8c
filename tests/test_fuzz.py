"""CLI fuzz test: drive mpg with random arguments and random preset files.

Issue: "drives the CLI with random arguments and random preset files and asserts: exit code in {0, 1, 2},
no traceback, JSON output (when asked) always parses and holds no NaN or infinity".

Every invocation runs under a wall-clock limit (a hang is a failure, not a stuck test run). The bugs
this fuzzing found are pinned by the regression tests at the end of the file.
"""

from __future__ import annotations

import json
import math
import shlex
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import examples, time_limit
import typer.main
import typer.testing
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mpg_cli.cli import app

REPO = Path(__file__).resolve().parents[1]
BASE_MODEL: dict[str, Any] = yaml.safe_load((REPO / "presets" / "models" / "gpt-1.7b.yaml").read_text("utf-8"))
BASE_GPU: dict[str, Any] = yaml.safe_load((REPO / "presets" / "gpus" / "a100-80gb.yaml").read_text("utf-8"))
BASE_CLUSTER: dict[str, Any] = yaml.safe_load((REPO / "presets" / "clusters" / "dgx-a100.yaml").read_text("utf-8"))

INVOCATION_LIMIT_S = 10.0  # one invocation of a small scenario takes ~0.01-0.7 s on 2 cores
FUZZ_SETTINGS: dict[str, Any] = {"deadline": None, "suppress_health_check": [
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]}

# Keys the layout search enumerates divisors of (O(n) loop): a huge value hangs (see test_huge_layer_count_*).
DIVISOR_KEYS = {"layers", "heads", "kv_heads", "experts"}


# ================================================================ harness



_CLICK_COMMAND = typer.main.get_command(app)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the generated files: preset files, a calibration file, --against documents, outputs."""
    d = tmp_path_factory.mktemp("fuzz")
    (d / "calib.yaml").write_text("kind: mpg-calibration\nratio: 0.5\n", encoding="utf-8")
    (d / "a-directory").mkdir()
    return d


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[list[str]], Any]]:
    """Run ``mpg ARGS`` in-process (CliRunner, COLUMNS=200, no user presets) under a wall-clock limit."""
    config_home = tmp_path_factory.mktemp("xdg-config")
    runner = CliRunner(env={"COLUMNS": "200", "LINES": "50", "NO_COLOR": "1", "TERM": "dumb", "MPG_PRESETS": None,
                            "XDG_CONFIG_HOME": str(config_home)})
    with pytest.MonkeyPatch.context() as mp:
        # Typer rebuilds the Click command on every invoke (~40 ms); build it once for thousands of cases.
        mp.setattr(typer.testing, "_get_command", lambda _app: _CLICK_COMMAND)

        def run(args: list[str]) -> Any:
            with time_limit(INVOCATION_LIMIT_S):
                return runner.invoke(app, args)

        yield run


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name!r} (NaN/Infinity) in the output")


def assert_finite_numbers(doc: Any, path: str = "$") -> None:
    """Every float anywhere in the document is finite."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            assert_finite_numbers(v, f"{path}.{k}")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            assert_finite_numbers(v, f"{path}[{i}]")
    elif isinstance(doc, float):
        assert math.isfinite(doc), f"{path} = {doc!r}"


def parse_strict_json(text: str) -> Any:
    """json.loads that refuses NaN/Infinity tokens, then a recursive finiteness check."""
    doc = json.loads(text, parse_constant=_reject_constant)
    assert_finite_numbers(doc)
    return doc


def check_contract(res: Any, args: list[str], out_file: Path | None = None) -> None:
    """The fuzz contract: exit code in {0,1,2}, no traceback, an error message on failure, strict JSON when asked."""
    ctx = (f"\n$ mpg {shlex.join(args)}\nexit code: {res.exit_code}\nstdout (tail): {res.stdout[-1500:]}\n"
           f"stderr (tail): {res.stderr[-1500:]}")
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        tb = "".join(traceback.format_exception(*res.exc_info)) if res.exc_info else repr(res.exception)
        pytest.fail(f"unhandled exception {res.exception!r}{ctx}\n{tb}")
    assert res.exit_code in (0, 1, 2), ctx
    assert "Traceback" not in res.stdout + res.stderr, ctx
    if res.exit_code == 2:
        assert "ERROR: " in res.stderr or "Usage:" in res.stderr, ctx
    if res.exit_code == 1:
        assert "GATE FAILED: " in res.stderr or "ERROR: " in res.stderr, ctx
    fmt = _flag_value(args, "--format", "-f")
    if fmt == "json" and res.exit_code in (0, 1):
        if out_file is not None:
            text = out_file.read_text("utf-8") if out_file.is_file() else ""
        else:
            text = res.stdout
        try:
            parse_strict_json(text)
        except (ValueError, AssertionError) as exc:
            pytest.fail(f"--format json output is not strict, finite JSON: {exc}{ctx}")


def _flag_value(args: list[str], *names: str) -> str | None:
    """The last value given to any of ``names`` (as Click reads it), or None."""
    value = None
    for i, a in enumerate(args[:-1]):
        if a in names:
            value = args[i + 1]
    for a in args:
        for n in names:
            if a.startswith(n + "="):
                value = a.split("=", 1)[1]
    return value


# ================================================================ strategies: argument values

EDGE = ["0", "-1", "1", "2", "1e308", "-1e308", "nan", "inf", "-inf", "", " ", "abc", "1.4T", "300B", "300e9", "10%",
        "1,2", "0.5", "1e-300", str(2 ** 63), "99999999999999999999", "18446744073709551617"]
# argv can't hold NUL
ARG_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


class Vals:
    """A flag's values: ``good`` ones, or (in 'mixed' draws) mostly good, often edge values, sometimes random text."""

    def __init__(self, *good: str) -> None:
        self.good = st.sampled_from(good)
        self.mixed = st.one_of(self.good, self.good, self.good, st.sampled_from(EDGE), ARG_TEXT)

    def draw(self, draw: st.DrawFn, mixed: bool) -> str:
        return draw(self.mixed if mixed else self.good)


def vals(*good: str) -> Vals:
    return Vals(*good)


MODELS = ("gpt-1.7b", "gpt-1.7b", "llama2-7b", "gpt2-xl", "mistral-7b")  # no MoE here: its search costs ~10x
CLUSTERS = ("dgx-a100", "dgx-h100", "ethernet-a100-40gb", "pcie-l40s", "mi300x-8x")
GPU_COUNTS = ("1", "2", "8", "16", "32", "64", "8,16", "1,8,64")

VALUED: dict[str, Vals] = {
    "--model": vals(*MODELS), "--cluster": vals(*CLUSTERS), "--gpu": vals("a100-80gb", "h100-sxm", "l40s", "b200"),
    "--gpus": vals(*GPU_COUNTS), "--tokens": vals("300B", "1.4T", "300e9", "chinchilla", "20B", "1e9", "15t"),
    "--seq-length": vals("512", "1024", "2048", "4096", "16384"), "--global-batch": vals("8", "64", "256", "512", "1024"),
    "--precision": vals("bf16", "fp16", "fp8"), "--goodput": vals("1", "0.9", "0.5"), "--price": vals("0", "1.99", "4.5"),
    "--tp": vals("1", "2", "4", "8"), "--pp": vals("1", "2", "4"), "--dp": vals("1", "2", "8"), "--ep": vals("1", "2", "8"),
    "--cp": vals("1", "2"), "--micro-batch": vals("1", "2", "4"), "--virtual-stages": vals("1", "2"),
    "--zero": vals("0", "1", "2", "3"), "--recompute": vals("none", "selective", "full"),
    "--tflops": vals("100", "140", "250"), "--mfu": vals("0.3", "0.45", "1"), "--optimizer": vals("adam", "adam8bit"),
    "--reserved-gib": vals("2", "0", "4", "100"), "--headroom": vals("0.1", "0", "0.5", "0.9"),
    "--format": vals("json", "json", "table", "csv", "markdown"),
    "--max-days": vals("1", "30", "1000"), "--max-gpu-hours": vals("1000", "50000"), "--max-cost": vals("1000", "1e6"),
}
SWITCHES = ["--sequence-parallel", "--no-sequence-parallel", "--flash-attention", "--no-flash-attention", "--quiet",
            "--require-fit"]
ESTIMATE_ONLY: dict[str, Vals] = {
    "--days": vals("30", "90", "1000"), "--budget-gpu-hours": vals("1000", "500000"), "--budget-usd": vals("1e5", "1e6"),
}
FIT_ONLY: dict[str, Vals] = {"--top": vals("1", "3", "10", "1000")}
COMPARE_ONLY: dict[str, Vals] = {
    "--sort": vals("days", "-mfu", "gpu_hours", "cost", "label", "fits", "memory", "-energy"),
    "--baseline": vals("gpt-1.7b @ dgx-a100 × 8", "x"), "--metric": vals("days", "gpu_hours", "cost", "energy"),
    "--fail-on-increase": vals("10%", "0", "0.1", "0%"),
}
FIXED_LAYOUT = ["--tp", "1", "--pp", "1", "--micro-batch", "1", "--zero", "1", "--recompute", "none"]
# options each command does not take (Click rejects them with a usage error, exit 2: still part of the contract)
NOT_FOR = {"fit": {"--max-days", "--max-gpu-hours", "--max-cost", "--require-fit"}, "compare": set(), "estimate": set()}


@st.composite
def cli_args(draw: st.DrawFn, command: str, workdir: Path) -> tuple[list[str], Path | None]:
    """A random command line for ``command``: a small base scenario, then a random subset of flags.

    Half the draws use only good values (deep paths: search, gates, solvers, renderers); the other half mix
    in edge values and random text (parsing and validation).
    """
    mixed = draw(st.booleans())
    args = [command]
    if draw(st.integers(0, 19)) > 0:  # usually a small model, cluster and GPU count (search stays cheap)
        args += ["-m", draw(st.sampled_from(MODELS)), "-c", draw(st.sampled_from(CLUSTERS[:3]))]
        if command != "fit" or draw(st.integers(0, 7)) > 0:
            counts = {"estimate": GPU_COUNTS, "fit": ("1", "8", "16", "64"), "compare": ("1", "8", "16")}[command]
            args += ["-n", draw(st.sampled_from(counts))]
    if draw(st.integers(0, 2)) == 0:
        args += FIXED_LAYOUT
    pool = dict(VALUED)
    pool.update({"estimate": ESTIMATE_ONLY, "fit": FIT_ONLY, "compare": COMPARE_ONLY}[command])
    for flag in draw(st.lists(st.sampled_from(sorted(pool)), max_size=5, unique=True)):
        if flag in NOT_FOR[command] and draw(st.integers(0, 3)) > 0:
            continue
        args += [flag, pool[flag].draw(draw, mixed)]
    for switch in draw(st.lists(st.sampled_from(SWITCHES), max_size=2, unique=True)):
        args.append(switch)
    if command == "fit" and draw(st.integers(0, 9)) == 0:
        args.append("--min-gpus")
    if command == "estimate" and draw(st.booleans()):
        args.append("--explain")
    if command == "compare":  # repeated -m/-c/-n give a cross product
        for flag, choices in (("-m", MODELS[:3]), ("-c", CLUSTERS[:2]), ("-n", ("8", "16"))):
            if draw(st.integers(0, 4)) == 0:
                args += [flag, draw(st.sampled_from(choices))]
    if draw(st.integers(0, 3)) == 0:
        args += ["--format", "json"]
    if draw(st.integers(0, 7)) == 0:
        args += ["--calibration", draw(st.sampled_from([str(workdir / "calib.yaml"), str(workdir / "a-directory"),
                                                        str(workdir / "missing.yaml"), ""]))]
    out_file = None
    if draw(st.integers(0, 9)) == 0:
        out = draw(st.sampled_from(["file", "dir", "missing-folder", "empty"]))
        target = {"file": workdir / "out.txt", "dir": workdir / "a-directory",
                  "missing-folder": workdir / "no-such-folder" / "out.txt", "empty": Path("")}[out]
        args += ["-o", "" if out == "empty" else str(target)]
        out_file = target if out == "file" else None
    return args, out_file


def run_checked(cli: Callable[[list[str]], Any], args: list[str], out_file: Path | None) -> Any:
    if out_file is not None and out_file.exists():
        out_file.unlink()
    res = cli(args)
    check_contract(res, args, out_file)
    return res


# ================================================================ random arguments

@settings(max_examples=examples(20, 350), **FUZZ_SETTINGS)
@given(data=st.data())
def test_fuzz_estimate_random_arguments(cli, workdir, data):
    """'mpg estimate' with random flags and values: exit 0/1/2, no traceback, strict finite JSON when asked."""
    args, out_file = data.draw(cli_args("estimate", workdir), label="args")
    run_checked(cli, args, out_file)


@settings(max_examples=examples(15, 300), **FUZZ_SETTINGS)
@given(data=st.data())
def test_fuzz_fit_and_compare_random_arguments(cli, workdir, data):
    """'mpg fit' and 'mpg compare' with random flags and values: exit 0/1/2, no traceback, strict finite JSON."""
    command = data.draw(st.sampled_from(["fit", "compare"]), label="command")
    args, out_file = data.draw(cli_args(command, workdir), label="args")
    run_checked(cli, args, out_file)


# ================================================================ random preset files

PRESET_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
SCALARS = st.one_of(
    st.integers(-3, 5), st.integers(-(10 ** 40), 10 ** 40), st.sampled_from([0, -1, 1, 2, 10 ** 30, 10 ** 31, 2 ** 64]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1e-300, 1e308, 0.5]),
    st.booleans(), st.none(), PRESET_TEXT, st.sampled_from(["", "abc", "1.4T", "nan", "24", "gelu", "swiglu", "rope"]),
)


def nested_list(depth: int) -> Any:
    x: Any = 1
    for _ in range(depth):
        x = [x]
    return x


VALUES = st.one_of(SCALARS, SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(PRESET_TEXT, SCALARS, max_size=3),
                   st.integers(1, 100).map(nested_list))


def safe_value(key: str, value: Any) -> Any:
    """Values go through unchanged (huge counts once hung the divisor search; now they are refused)."""
    return value


@st.composite
def mutated_mapping(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """A preset mapping after 1-4 random mutations: drop, rename, retype or re-value keys, or add one."""
    d = dict(base)
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3, 4]))):
        op = draw(st.sampled_from(["drop", "rename", "value", "value", "number", "add"]))
        keys = sorted(d)
        if not keys:
            op = "add"
        key = draw(st.sampled_from(keys)) if keys else ""
        if op == "drop":
            d.pop(key)
        elif op == "rename":
            new = draw(st.one_of(PRESET_TEXT, st.sampled_from([key + "s", key.upper(), key[:-1], key.replace("_", "-")])))
            d[new] = d.pop(key)
        elif op == "value":
            d[key] = safe_value(key, draw(VALUES))
        elif op == "number":
            d[key] = safe_value(key, draw(st.sampled_from([0, -1, -24, 1, 2, 3, 7, 2048, 10 ** 30, 0.5, 24.0,
                                                           float("nan"), float("inf"), float("-inf"), 1e-300])))
        else:
            new = draw(st.one_of(PRESET_TEXT, st.sampled_from(["moe", "mla", "kv_heads", "head_dim", "params",
                                                               "ffn_type", "norm", "tied_embeddings"])))
            value = draw(st.one_of(VALUES, st.fixed_dictionaries({
                "experts": st.sampled_from([8, 0, -1, 2]), "top_k": st.sampled_from([2, 0, 9]),
                "expert_ffn_hidden_size": st.sampled_from([1024, 0])})))
            d[new] = safe_value(new, value)
    return d


@st.composite
def plausible_mapping(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """A well-formed preset with random (often extreme but valid) shapes: reaches the search, the formulas, the renderers."""
    if kind == "model":
        heads = draw(st.sampled_from([1, 2, 3, 8, 12, 32, 64, 96]))
        d: dict[str, Any] = {
            "layers": draw(st.integers(1, 130)), "hidden_size": heads * draw(st.sampled_from([1, 8, 64, 128, 160])),
            "heads": heads, "kv_heads": draw(st.sampled_from([x for x in (1, 2, 4, 8, heads) if heads % x == 0])),
            "vocab_size": draw(st.sampled_from([1, 7, 32000, 51200, 256000])),
            "seq_length": draw(st.sampled_from([1, 16, 2048, 8192, 32768])),
            "ffn_hidden_size": draw(st.sampled_from([1, 100, 4096, 28672])),
            "ffn_type": draw(st.sampled_from(["gelu", "swiglu"])), "norm": draw(st.sampled_from(["layernorm", "rmsnorm"])),
            "position_embedding": draw(st.sampled_from(["learned", "rope", "alibi", "none"])),
            "tied_embeddings": draw(st.booleans()), "linear_biases": draw(st.booleans()),
        }
        if draw(st.integers(0, 3)) == 0:
            experts = draw(st.sampled_from([1, 2, 8, 16]))
            d["moe"] = {"experts": experts, "top_k": draw(st.integers(1, experts)),
                        "expert_ffn_hidden_size": draw(st.sampled_from([1, 1024, 14336])),
                        "shared_experts": draw(st.integers(0, 2)), "dense_layers": draw(st.integers(0, d["layers"] - 1))}
        return d
    if kind == "gpu":
        return {"memory_gib": draw(st.sampled_from([0.5, 8, 24, 80, 192, 1e6])),
                "peak_tflops": draw(st.sampled_from([{"bf16": 312.0}, {"bf16": 0.001}, {"fp16": 100.0}, {"bf16": 1e6}])),
                "memory_bandwidth_tb_s": draw(st.sampled_from([0.001, 2.0, 8.0, 1e4])),
                "generation": draw(st.sampled_from(["volta", "ampere", "hopper", "blackwell", "cdna3", "tpu"])),
                "tdp_watts": draw(st.sampled_from([1, 400, 1000])), "price_usd_per_hour": draw(st.sampled_from([0.01, 2, 1e6]))}
    return {"gpu": draw(st.sampled_from(["a100-80gb", "h100-sxm", "l40s"])), "gpus_per_node": draw(st.sampled_from([1, 3, 8, 72])),
            "nodes": draw(st.sampled_from([1, 2, 16, 128])), "intra_node_gb_s": draw(st.sampled_from([0.001, 32, 900])),
            "inter_node_gb_s": draw(st.sampled_from([0.001, 12.5, 100])), "pue": draw(st.sampled_from([1.0, 1.5]))}


def _dump(d: Any) -> str:
    return yaml.safe_dump(d, allow_unicode=True, sort_keys=False)


@st.composite
def preset_file(draw: st.DrawFn) -> tuple[str, Any]:
    """(kind, content): content is YAML text, raw bytes, or the marker 'DIR' for a directory in place of a file."""
    kind = draw(st.sampled_from(["model", "model", "model", "gpu", "cluster"]))
    base = {"model": BASE_MODEL, "gpu": BASE_GPU, "cluster": BASE_CLUSTER}[kind]
    shape = draw(st.sampled_from(["mutated", "mutated", "mutated", "plausible", "plausible", "plausible",
                                  "plausible", "raw-bytes", "non-utf8", "empty", "directory", "python-tag", "alias",
                                  "deep-list", "truncated", "scalar", "list", "valid"]))
    if shape == "valid":
        return kind, _dump(base)
    if shape == "plausible":
        return kind, _dump(draw(plausible_mapping(kind)))
    if shape == "mutated":
        return kind, _dump(draw(mutated_mapping(base)))
    if shape == "raw-bytes":
        return kind, draw(st.binary(max_size=200))
    if shape == "non-utf8":
        text = _dump(base).encode("utf-8")
        at = draw(st.integers(0, len(text)))
        return kind, text[:at] + draw(st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3\x28", b"\x80"])) + text[at:]
    if shape == "empty":
        return kind, draw(st.sampled_from(["", " ", "\n\n", "# only a comment\n", "---\n", "~\n"]))
    if shape == "directory":
        return kind, "DIR"
    if shape == "python-tag":
        tag = draw(st.sampled_from(['!!python/object/apply:os.system ["echo"]', "!!python/name:os.system",
                                    "!!binary aGVsbG8=", "!custom 3", "!!set {a, b}", "!!timestamp 2001-12-14"]))
        key = draw(st.sampled_from(sorted(base)))
        return kind, _dump({k: v for k, v in base.items() if k != key}) + f"{key}: {tag}\n"
    if shape == "alias":
        return kind, "anchor: &a [1, 2, 3]\n" + _dump(base) + draw(st.sampled_from(["notes: *a\n", "moe: *a\n", "x: *a\n"]))
    if shape == "deep-list":
        depth = draw(st.integers(1, 1200))
        key = draw(st.sampled_from(sorted(base)))
        return kind, _dump({**base, key: None}).replace(f"{key}: null", f"{key}: " + "[" * depth + "]" * depth)
    if shape == "truncated":
        text = _dump(base)
        return kind, text[: draw(st.integers(0, len(text)))]
    if shape == "scalar":
        return kind, draw(st.sampled_from(["42\n", "abc\n", "[]\n", "{}\n", "null\n", ".nan\n", "- a\n- b\n"]))
    return kind, _dump([base])


@settings(max_examples=examples(50, 1000), **FUZZ_SETTINGS)
@given(spec=preset_file(), data=st.data())
def test_fuzz_random_preset_files(cli, workdir, spec, data):
    """A random (mostly broken) model, GPU or cluster preset file: exit 0/1/2, no traceback, strict finite JSON."""
    kind, content = spec
    folder = workdir / "presets-fuzz"
    folder.mkdir(exist_ok=True)
    path = folder / f"{kind}.yaml"
    if path.is_dir():
        path.rmdir()
    elif path.exists():
        path.unlink()
    if content == "DIR":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    command = data.draw(st.sampled_from(["estimate", "estimate", "fit", "compare"]), label="command")
    flag = {"model": "-m", "gpu": "--gpu", "cluster": "-c"}[kind]
    args = [command, flag, str(path)]
    if kind != "model":
        args += ["-m", data.draw(st.sampled_from(["gpt-1.7b", "gpt2-xl"]), label="model")]
    if kind != "cluster":
        args += ["-c", "dgx-a100"]
    if command == "fit" and data.draw(st.integers(0, 4), label="min-gpus") == 0:
        args.append("--min-gpus")
    else:
        args += ["-n", data.draw(st.sampled_from(["1", "8", "16"]), label="gpus")]
    if data.draw(st.booleans(), label="fixed layout"):
        args += FIXED_LAYOUT
    if data.draw(st.integers(0, 2), label="json") > 0:
        args += ["--format", "json"]
    run_checked(cli, args, None)


@settings(max_examples=examples(20, 400), **FUZZ_SETTINGS)
@given(doc=st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(PRESET_TEXT, inner, max_size=3)),
                        max_leaves=8),
       command=st.sampled_from(["compare", "estimate", "estimate-scaling", "fit", 7, None]),
       label_kind=st.sampled_from(["match", "other"]))
def test_fuzz_random_against_documents(cli, workdir, doc, command, label_kind):
    """'compare --against' with a random JSON document: exit 0/1/2, no traceback, strict finite JSON."""
    label = "gpt-1.7b @ dgx-a100 × 8" if label_kind == "match" else "something else"
    if command == "compare":
        body: Any = {"command": command, "rows": [{"label": label, "time": doc, "gpu_hours": doc, "cost_usd": doc}]}
    elif command == "estimate":
        body = {"command": command, "inputs": {"model": "gpt-1.7b", "cluster": "dgx-a100", "gpus": 8},
                "gpu_hours": doc, "time": {"days": doc}}
    elif command == "estimate-scaling":
        body = {"command": command, "estimates": [{"inputs": {"model": "gpt-1.7b", "cluster": "dgx-a100", "gpus": 8},
                                                   "gpu_hours": doc, "cost_usd": doc}]}
    else:
        body = {"command": command, "rows": doc} if command is not None else doc
    path = workdir / "against.json"
    path.write_text(json.dumps(body, default=str), encoding="utf-8")
    args = ["compare", "-m", "gpt-1.7b", "-c", "dgx-a100", "-n", "8", *FIXED_LAYOUT, "--against", str(path),
            "--fail-on-increase", "10%", "--format", "json"]
    run_checked(cli, args, None)


# ================================================================ fixed regression cases

REGRESSION_CASES = [
    ["estimate", "-m", "gpt-1.7b", "-c", "dgx-a100", "-n", "8", "--tokens", "1e18", "--tflops", "1e-300", "--format", "json"],
    ["estimate", "-m", "gpt-1.7b", "-c", "dgx-a100", "-n", "8", "--reserved-gib", "1e308", "--format", "json"],
    ["estimate", "-m", "gpt-1.7b", "-c", "dgx-a100", "-n", "8", "--reserved-gib", "1e308", "--require-fit"],
    ["estimate", "-m", "gpt-1.7b", "-c", "dgx-a100", "-n", "8", "--goodput", "1e-300", "--price", "1e308", "--format", "csv"],
    ["estimate", "-m", "gpt-1.7b", "-c", "dgx-a100", "-n", "8", "--micro-batch", "99999999999999999999", "--format", "json"],
    ["estimate", "-m", "gpt-1.7b", "-c", "dgx-a100", "-n", "8", "--global-batch", "99999999999999999999", "--format", "json"],
    ["estimate", "-m", "gpt-1.7b", "-c", "dgx-a100", "--budget-gpu-hours", "1e308", "--format", "json"],
    ["estimate", "-m", "gpt-1.7b", "-c", "dgx-a100", "--days", "1e-9"],
    ["estimate", "-m", "gpt-1.7b", "-c", "dgx-a100", "-n", "10000000", "--format", "json"],
    ["fit", "-m", "gpt-1.7b", "-c", "dgx-a100", "-n", "8", "--reserved-gib", "1e308", "--format", "json"],
    ["fit", "-m", "gpt-1.7b", "-c", "dgx-a100", "-n", "10000000", "--format", "json"],
    ["compare", "-m", "gpt-1.7b", "-c", "dgx-a100", "-n", "8", "--tokens", "1e18", "--goodput", "1e-300", "--format", "json"],
]


@pytest.mark.parametrize("args", REGRESSION_CASES, ids=lambda a: " ".join(a)[:90])
def test_extreme_values_keep_the_contract(cli, args):
    """Extreme but accepted values (1e308, 1e-300, 2^66) give exit 0/1/2 and strict JSON (null, never NaN/inf)."""
    run_checked(cli, args, None)


def test_yaml_python_tag_is_refused_without_running_it(cli, workdir, tmp_path):
    """A '!!python/object/apply:os.system' tag in a model file is refused (exit 2, ERROR names the file), never run."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(_dump(BASE_MODEL) + f'description: !!python/object/apply:os.system ["touch {marker}"]\n', "utf-8")
    res = cli(["estimate", "-m", str(path), "-c", "dgx-a100", "-n", "8"])
    assert res.exit_code == 2, res.stderr
    assert res.stdout == ""
    assert res.stderr.startswith("ERROR: ") and str(path) in res.stderr and "TIP: " in res.stderr
    assert not marker.exists()


# ================================================================ regressions: bugs the fuzzing found (fixed)

def _python_cli(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run 'python -m mpg_cli ARGS' in a subprocess (the real stack depth and a hard timeout)."""
    try:
        return subprocess.run([sys.executable, "-m", "mpg_cli", *args], cwd=cwd, capture_output=True, text=True, check=False,
                              timeout=timeout, env={"COLUMNS": "200", "NO_COLOR": "1", "PATH": "/usr/bin:/bin",
                                                    "HOME": str(cwd), "XDG_CONFIG_HOME": str(cwd)})
    except subprocess.TimeoutExpired:
        pytest.fail(f"mpg {' '.join(args)} still running after {timeout:g} s (hang)")


def _model_file(tmp_path: Path, **changes: Any) -> Path:
    path = tmp_path / "model.yaml"
    path.write_text(_dump({**BASE_MODEL, **changes}), encoding="utf-8")
    return path


def test_huge_layer_count_answers_quickly(tmp_path):
    """A model file with layers: 10**12 gets an answer (exit 0/1/2, no traceback) within a few seconds, not a hang."""
    path = _model_file(tmp_path, layers=10 ** 12, params=None)
    res = _python_cli(["estimate", "-m", str(path), "-c", "dgx-a100", "-n", "8", "--format", "json"], tmp_path, 3)
    assert res.returncode in (0, 1, 2)
    assert "Traceback" not in res.stderr


def test_deeply_nested_list_in_a_model_file_is_an_input_error(tmp_path):
    """A model file whose 'name' is a list nested 990 deep is bad input: exit 2, 'ERROR: ...', no traceback."""
    text = _dump(BASE_MODEL).replace('name: gpt-1.7b', "name: " + "[" * 990 + "]" * 990)
    assert "[[[" in text
    path = tmp_path / "deep.yaml"
    path.write_text(text, encoding="utf-8")
    res = _python_cli(["estimate", "-m", str(path), "-c", "dgx-a100", "-n", "8"], tmp_path, 30)
    assert "Traceback" not in res.stderr, res.stderr[-500:]
    assert res.returncode == 2
    assert res.stderr.startswith("ERROR: ")


@pytest.mark.parametrize("command", [["estimate"], ["fit"], ["fit", "--min-gpus"], ["estimate", "-n", "8,16"]],
                         ids=" ".join)
def test_model_name_with_rich_markup_is_printed_literally(cli, tmp_path, command):
    """A model whose name is '[/red]' is printed literally in the table output (exit 0, no exception)."""
    path = _model_file(tmp_path, name="[/red]")
    args = [*command, "-m", str(path), "-c", "dgx-a100"] + ([] if "-n" in command else ["-n", "8"])
    res = cli(args)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == 0, res.stderr
    assert "[/red]" in res.stdout


def test_table_and_markdown_show_the_same_layout_line(cli):
    """The Layout line of the table output carries the same text as the markdown output (incl. '[given]')."""
    args = ["estimate", "-m", "gpt-1.7b", "-c", "dgx-a100", "-n", "8", *FIXED_LAYOUT, "--quiet"]
    md = cli([*args, "--format", "markdown"])
    table = cli(args)
    assert md.exit_code == 0 and table.exit_code == 0
    md_layout = next(line for line in md.stdout.splitlines() if line.startswith("| Layout |"))
    layout_text = md_layout.split("|")[2].strip()
    assert layout_text.endswith("[given]")
    assert layout_text in table.stdout


def test_against_scaling_document_without_model_is_an_input_error(cli, tmp_path):
    """'compare --against' a scaling document whose inputs lack 'model' is bad input: exit 2 and 'ERROR: --against'."""
    path = tmp_path / "budget.json"
    path.write_text(json.dumps({"command": "estimate-scaling", "estimates": [{"inputs": {}}]}), encoding="utf-8")
    res = cli(["compare", "-m", "gpt-1.7b", "-c", "dgx-a100", "-n", "8", *FIXED_LAYOUT, "--against", str(path)])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == 2
    assert res.stderr.startswith("ERROR: --against")


def test_fit_min_gpus_json_when_nothing_holds_the_model(cli):
    """'fit --min-gpus --format json' that finds nothing exits 1 and still writes a parseable JSON document."""
    res = cli(["fit", "-m", "gpt-1.7b", "-c", "dgx-a100", "--min-gpus", "--reserved-gib", "79.5", "--format", "json"])
    assert res.exit_code == 1
    assert "ERROR: " in res.stderr
    doc = parse_strict_json(res.stdout)
    assert doc["command"] == "fit-min-gpus"
