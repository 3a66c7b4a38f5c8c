"""--from FILE: the training-config readers (Megatron-LM, torchtitan, llm-foundry, DeepSpeed, NeMo, HF) and the merge."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

from mpg_cli.core.params import total_params
from mpg_cli.errors import MpgError, PresetError
from mpg_cli.inputs.hf_config import convert_hf_config
from mpg_cli.inputs import read_config
from mpg_cli.inputs.interp import resolve
from mpg_cli.presets import model_from_dict

CONFIGS = Path(__file__).parent / "fixtures" / "configs"
LOGS = Path(__file__).parent / "fixtures" / "logs"
HF = Path(__file__).parent / "fixtures" / "hf"


def cfg(rel: str):
    return read_config(str(CONFIGS / rel))


# ---------------------------------------------------------------- what each fixture says

# file: (format, model shape (layers, hidden, heads, kv, ffn, vocab, seq) or a preset name,
#        layout values, batch (global, micro), precision, tokens or steps)
EXPECTED = {
    "megatron/train_gpt3_175b_distributed.sh": (
        "megatron", (96, 12288, 96, 96, 49152, 51200, 2048),
        {"tp": 8, "pp": 16, "zero": 0, "recompute": "none"}, (1536, 1), "fp16", {"train_steps": 500000}),
    "megatron/train_mixtral_8x7b_distributed.sh": (
        "megatron", (32, 4096, 32, 8, 14336, 32000, 4096),
        {"tp": 1, "pp": 4, "ep": 8, "zero": 1, "sequence_parallel": True, "gpus": 32}, (256, 1), "bf16",
        {"train_steps": 500000}),
    "megatron/llama3_8b_args.txt": (
        "megatron", (32, 4096, 32, 8, 14336, 128256, 8192),
        {"tp": 1, "pp": 1, "cp": 2, "zero": 1, "recompute": "selective", "gpus": 64}, (512, 1), "bf16",
        {"tokens": 1953125 * 8192}),
    "torchtitan/llama3_8b.toml": (
        "torchtitan", "llama3-8b", {"tp": 1, "pp": 1, "zero": 3, "recompute": "selective"}, (None, 1), "bf16",
        {"train_steps": 1000, "seq_length": 8192, "batch_per_replica": 1}),
    "torchtitan/llama3_70b.toml": (
        "torchtitan", "llama3-70b", {"tp": 8, "zero": 3, "recompute": "full", "sequence_parallel": True}, (None, 8),
        "bf16", {"train_steps": 1000, "seq_length": 8192, "batch_per_replica": 8}),
    "torchtitan/llama3_405b_hsdp.toml": (
        "torchtitan", "llama3-405b", {"tp": 8, "dp": 64, "zero": 3, "recompute": "full", "gpus": 512}, (None, 2),
        "fp8", {"train_steps": 3000, "seq_length": 8192}),
    "composer/mpt-7b.yaml": (
        "composer", (32, 4096, 32, 32, 16384, 50368, 2048), {"zero": 3, "recompute": "full", "tp": 1}, (1024, 8),
        "bf16", {"train_steps": 63900}),
    "composer/mpt-30b.yaml": (
        "composer", (48, 7168, 64, 64, 28672, 50432, 8192), {"zero": 3, "recompute": "full"}, (512, 1), "bf16",
        {"tokens": 1e12}),
    "deepspeed/ds_config_zero3.json": (
        "deepspeed", None, {"zero": 3, "recompute": "full", "dp": 64, "gpus": 64}, (1024, 4), "bf16", {}),
    "deepspeed/ds_config_zero3_offload.json": ("deepspeed", None, {"zero": 3}, (None, None), None, {}),
    "nemo/gpt3_5b.yaml": (
        "nemo", (24, 4096, 32, 32, 16384, 50304, 2048),
        {"tp": 1, "pp": 1, "zero": 1, "recompute": "selective", "gpus": 128}, (2048, 4), "bf16",
        {"train_steps": 75000}),
    "nemo/llama2_7b.yaml": (
        "nemo", (32, 4096, 32, 32, 11008, 32000, 4096), {"tp": 1, "zero": 1, "recompute": "none", "gpus": 128},
        (128, 1), "bf16", {"train_steps": 300000}),
}


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_fixture_gives_what_the_file_says(rel):
    """Each fixture reads to the model shape, layout, batch, precision and tokens/steps the file states."""
    fmt, shape, layout, (gbs, mb), precision, run = EXPECTED[rel]
    c = cfg(rel)
    assert c.format == fmt
    if isinstance(shape, str):
        assert c.model_ref == shape and c.model is None
    elif shape is None:
        assert c.model is None and c.model_ref is None
    else:
        m = model_from_dict(c.model, rel)
        assert (m.layers, m.hidden_size, m.heads, m.n_kv, m.ffn_hidden_size, m.vocab_size, m.seq_length) == shape
    for k, v in layout.items():
        assert getattr(c, k) == v, k
    assert (c.global_batch, c.micro_batch) == (gbs, mb)
    assert c.precision == precision
    for k, v in run.items():
        assert getattr(c, k) == pytest.approx(v), k


def test_every_format_has_two_fixtures():
    """tests/fixtures/configs holds at least two files for each trainer format."""
    for fmt in ("megatron", "torchtitan", "composer", "deepspeed", "nemo"):
        assert len([p for p in (CONFIGS / fmt).iterdir() if p.is_file()]) >= 2, fmt


def test_notes_name_the_keys():
    """Notes name the key each value came from, the defaults applied, and the keys ignored."""
    texts = [n.text for n in cfg("megatron/train_gpt3_175b_distributed.sh").notes]
    assert "tp 8 from --tensor-model-parallel-size" in texts
    assert any(t.startswith("ZeRO 0: Megatron-LM default") for t in texts)
    assert any("--rampup-batch-size ignored" in t for t in texts)
    assert any("vocabulary 51,200: 50,257" in t for t in texts)


def test_megatron_moe_and_shared_expert_flags():
    """MoE flags map to experts, top-k, expert width and a shared expert."""
    text = ("pretrain_gpt.py --num-layers 4 --hidden-size 1024 --num-attention-heads 8 --seq-length 2048 "
            "--swiglu --num-experts 16 --moe-router-topk 4 --moe-ffn-hidden-size 512 "
            "--moe-shared-expert-intermediate-size 1024 --vocab-size 32000 --num-layers-per-virtual-pipeline-stage 1 "
            "--pipeline-model-parallel-size 2 --recompute-granularity full --recompute-method uniform")
    from mpg_cli.inputs.megatron_args import read

    c = read(text, "args.txt")
    assert c.model["moe"] == {"experts": 16, "top_k": 4, "expert_ffn_hidden_size": 512, "shared_experts": 1,
                              "shared_expert_ffn_hidden_size": 1024}
    assert c.model["ffn_hidden_size"] == int(4 * 1024 * 2 / 3 / 64) * 64
    assert (c.virtual_stages, c.recompute) == (2, "full")


def test_megatron_arrays_without_a_launch_line_and_equals_flags():
    """A file of bash arrays alone is read; torchrun's --nproc-per-node=8 form gives the GPU count."""
    from mpg_cli.inputs.megatron_args import read

    arrays = read("MODEL=(\n  --num-layers 2 --hidden-size 256\n  --num-attention-heads 4 # heads\n)\n"
                  "TRAIN=(--seq-length 512 --vocab-size 1000 --tensor-model-parallel-size 2)\n", "a.sh")
    assert (arrays.model["layers"], arrays.tp, arrays.model["vocab_size"]) == (2, 2, 1024)
    launch = read("torchrun --nnodes=2 --nproc-per-node=8 pretrain_gpt.py --num-layers 2 --hidden-size 256 "
                  "--num-attention-heads 4 --seq-length 512 --vocab-size 1000", "b.sh")
    assert launch.gpus == 16


def test_torchtitan_hsdp_is_stated_as_an_approximation():
    """replicate × shard becomes ZeRO-3 over dp = replicate × shard, with the approximation stated."""
    c = cfg("torchtitan/llama3_405b_hsdp.toml")
    assert (c.zero, c.dp) == (3, 64)
    assert any(n.kind == "approx" and "HSDP" in n.text for n in c.notes)


def test_deepspeed_offload_is_said_not_modelled():
    """Offload in a DeepSpeed config gives a warning that offload is not modelled; "auto" values are listed."""
    c = cfg("deepspeed/ds_config_zero3_offload.json")
    assert any("offload is not modelled" in w for w in c.warnings)
    assert any("\"auto\"" in n.text for n in c.notes)


def test_nemo_interpolation_resolves_within_the_file():
    """${.hidden_size}, ${multiply:4, ${.hidden_size}} and absolute references resolve; outside refs stay."""
    d = resolve({"a": 2048, "model": {"h": 4096, "f": "${multiply:4, ${.h}}", "s": "${a}", "m": "${.s}",
                                      "x": "${data_dir}/v", "p": {"q": "${..h}"}}})
    assert d["model"]["f"] == 16384 and d["model"]["s"] == 2048 and d["model"]["m"] == 2048
    assert d["model"]["p"]["q"] == 4096 and d["model"]["x"] == "${data_dir}/v"


# ---------------------------------------------------------------- end to end

RUNS = [
    ["--from", "megatron/train_gpt3_175b_distributed.sh"],
    ["--from", "megatron/train_mixtral_8x7b_distributed.sh"],
    ["--from", "megatron/llama3_8b_args.txt"],
    ["--from", "torchtitan/llama3_8b.toml"],
    ["--from", "torchtitan/llama3_70b.toml"],
    ["--from", "torchtitan/llama3_405b_hsdp.toml", "-c", "dgx-h100"],
    ["--from", "composer/mpt-7b.yaml"],
    ["--from", "composer/mpt-30b.yaml"],
    ["--from", "deepspeed/ds_config_zero3.json", "--from", "deepspeed/llama-2-7b"],
    ["--from", "deepspeed/ds_config_zero3_offload.json", "-m", "llama2-7b"],
    ["--from", "nemo/gpt3_5b.yaml"],
    ["--from", "nemo/llama2_7b.yaml"],
]


def _args(run: list[str]) -> list[str]:
    return [str(CONFIGS / a) if i and run[i - 1] == "--from" else a for i, a in enumerate(run)]


@pytest.mark.parametrize("run", RUNS, ids=[" ".join(r) for r in RUNS])
def test_estimate_from_file_runs(invoke, run):
    """'mpg estimate --from FILE' exits 0 and lists the values it took from the file first in the assumptions."""
    res = invoke("estimate", *_args(run), "-f", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    src = Path(run[1]).name
    assert any(a.startswith(f"{src} (") for a in doc["assumptions"]), doc["assumptions"][:5]


def test_estimate_from_megatron_takes_the_layout_and_tokens(invoke_json):
    """The GPT-3 175B script gives tp 8, pp 16, batch 1536, fp16 and 500k × 1536 × 2048 tokens."""
    doc = invoke_json("estimate", "--from", CONFIGS / "megatron/train_gpt3_175b_distributed.sh")
    i = doc["inputs"]
    assert (i["tp"], i["pp"], i["global_batch"], i["micro_batch"], i["precision"]) == (8, 16, 1536, 1, "fp16")
    assert doc["inputs"]["tokens"] == pytest.approx(500000 * 1536 * 2048)
    assert "train_gpt3_175b_distributed.sh (megatron): tp 8 from --tensor-model-parallel-size" in doc["assumptions"]


def test_flags_override_the_file_and_say_so(invoke_json):
    """An explicit --tp beats the file's value, and the assumptions state the override."""
    doc = invoke_json("estimate", "--from", CONFIGS / "megatron/train_gpt3_175b_distributed.sh", "--tp", "4")
    assert doc["inputs"]["tp"] == 4
    assert any("tp 8 from --tensor-model-parallel-size; overridden by --tp 4" in a for a in doc["assumptions"])


def test_torchtitan_global_batch_is_local_times_dp(invoke_json):
    """torchtitan's global batch is local_batch_size × dp (dp = the GPUs left after tp·pp·cp)."""
    doc = invoke_json("estimate", "--from", CONFIGS / "torchtitan/llama3_70b.toml", "-c", "dgx-h100", "-n", "64")
    i = doc["inputs"]
    assert (i["tp"], i["dp"], i["global_batch"], i["zero"]) == (8, 8, 64, 3)
    assert doc["inputs"]["tokens"] == pytest.approx(1000 * 64 * 8192)


def test_deepspeed_alone_needs_a_model(invoke):
    """A DeepSpeed config without -m or a model file is bad input naming the file."""
    res = invoke("estimate", "--from", CONFIGS / "deepspeed/ds_config_zero3.json")
    assert res.exit_code == 2 and "ds_config_zero3.json" in res.stderr and "Traceback" not in res.stderr


def test_two_files_that_disagree_are_refused(invoke, tmp_path):
    """Two --from files giving different values for the same thing are bad input naming both."""
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"train_batch_size": 512, "zero_optimization": {"stage": 2}}))
    res = invoke("estimate", "--from", CONFIGS / "deepspeed/ds_config_zero3.json", "--from", other, "-m", "llama2-7b")
    assert res.exit_code == 2 and "disagree" in res.stderr and "other.json" in res.stderr


def test_fit_and_compare_take_from(invoke_json, tmp_path):
    """fit --from and a 'from' key in a --scenarios file both read the training config."""
    doc = invoke_json("fit", "--from", CONFIGS / "nemo/llama2_7b.yaml", "-c", "dgx-h100")
    assert doc["inputs"]["gpus"] == 128
    assert all(lay["inputs"]["zero"] == 1 for lay in doc["layouts"])
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"- label: titan\n  from: {CONFIGS / 'torchtitan/llama3_8b.toml'}\n  cluster: dgx-h100\n  gpus: 64\n"
                    f"- label: titan-tp2\n  from: {CONFIGS / 'torchtitan/llama3_8b.toml'}\n  cluster: dgx-h100\n"
                    f"  gpus: 64\n  tp: 2\n")
    doc = invoke_json("compare", "--scenarios", plan)
    rows = {r["label"]: r for r in doc["rows"]}
    assert rows["titan"]["inputs"]["model"] == "llama3-8b" and rows["titan"]["inputs"]["tp"] == 1
    assert rows["titan-tp2"]["inputs"]["tp"] == 2
    assert any("overridden by --tp 2" in a for a in rows["titan-tp2"]["assumptions"])


def test_plan_takes_the_gpus_from_the_file(invoke_json):
    """plan --from uses the file's GPU count and says the file's model is not used."""
    doc = invoke_json("plan", "--days", "30", "--from", CONFIGS / "nemo/llama2_7b.yaml", "-c", "dgx-h100")
    assert doc["inputs"]["gpus"] == 128
    assert any("not used (mpg plan chooses the model)" in a for a in doc["assumptions"])


def test_calibrate_takes_the_layout_from_the_config(invoke, invoke_json, tmp_path):
    """calibrate LOG --from CONFIG takes the layout from the config for a log that prints none (torchtitan);
    a config whose batch contradicts the log is refused."""
    toml = tmp_path / "run.toml"
    toml.write_text((CONFIGS / "torchtitan/llama3_8b.toml").read_text().replace("local_batch_size = 1",
                                                                              "local_batch_size = 2"))
    doc = invoke_json("calibrate", LOGS / "torchtitan.log", "--from", toml, "-c", "dgx-h100", "-n", "8")
    i = doc["inputs"]
    assert (i["model"], i["tp"], i["zero"], i["recompute"], i["seq_length"], i["global_batch"]) == (
        "llama3-8b", 1, 3, "selective", 8192, 16)
    bad = invoke("calibrate", LOGS / "torchtitan.log", "--from", CONFIGS / "torchtitan/llama3_8b.toml",
                 "-c", "dgx-h100", "-n", "8")
    assert bad.exit_code == 2 and "the training config says global batch 8" in bad.stderr


# ---------------------------------------------------------------- bad files

BAD = [
    ("t.toml", "[training]\nseq_len = \n", "malformed TOML"),
    ("t.toml", "[model]\nname = \"llama3\"\nflavor = \"3B\"\n[training]\nsteps = 10\n", "model.flavor"),
    ("t.toml", "[parallelism]\ntensor_parallel_degree = \"eight\"\n[model]\nname = \"llama3\"\nflavor = \"8B\"\n",
     "parallelism.tensor_parallel_degree"),
    ("ds.json", '{"train_batch_size": 1024, "zero_optimization": {"stage": 5}}', "zero_optimization.stage"),
    ("run.sh", "torchrun pretrain_gpt.py --num-layers x --hidden-size 1024 --num-attention-heads 8", "--num-layers"),
    ("nemo.yaml", "trainer: {precision: 99}\nmodel: {num_layers: 2, hidden_size: 64, num_attention_heads: 4, "
                  "encoder_seq_length: 128, tensor_model_parallel_size: 1}\n", "trainer.precision"),
    ("mpt.yaml", "global_train_batch_size: 8\nmax_duration: soon\nmodel: {name: mpt_causal_lm, d_model: 64, "
                 "n_heads: 4, n_layers: 2, max_seq_len: 128}\n", "max_duration"),
    ("notes.txt", "just some text\n", "cannot tell which trainer"),
]


@pytest.mark.parametrize("name,text,key", BAD, ids=[b[2] for b in BAD])
def test_bad_file_is_one_error_naming_file_and_key(invoke, tmp_path, name, text, key):
    """A bad config gives exit 2 and one ERROR line naming the file and the key, never a traceback."""
    p = tmp_path / name
    p.write_text(text)
    res = invoke("estimate", "--from", p, "-m", "llama2-7b")
    assert res.exit_code == 2, res.stdout
    errors = [line for line in res.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and str(p) in errors[0] and key in errors[0], res.stderr
    assert "Traceback" not in res.stderr


def test_unknown_keys_are_warnings(invoke, tmp_path):
    """Keys a reader does not know are a WARNING on stderr (the estimate still runs)."""
    p = tmp_path / "ds.json"
    p.write_text(json.dumps({"train_batch_size": 256, "zero_optimisation": {"stage": 3}}))
    res = invoke("estimate", "--from", p, "-m", "llama2-7b", "-n", "64")
    assert res.exit_code == 0, res.stderr
    assert "WARNING:" in res.stderr and "zero_optimisation" in res.stderr


def test_from_format_forces_and_checks(invoke, tmp_path):
    """--from-format forces the reader; an unknown format name is bad input with a suggestion."""
    p = tmp_path / "args.cfg"
    p.write_text((CONFIGS / "megatron/llama3_8b_args.txt").read_text())
    assert invoke("estimate", "--from", p, "--from-format", "megatron", "-f", "json").exit_code == 0
    res = invoke("estimate", "--from", p, "--from-format", "megatrn")
    assert res.exit_code == 2 and "megatron" in res.stderr


# ---------------------------------------------------------------- Hugging Face families

def _hf(model_type: str, **kw) -> dict:
    base = {"model_type": model_type, "num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 8,
            "num_key_value_heads": 2, "intermediate_size": 512, "vocab_size": 1000, "max_position_embeddings": 4096}
    base.update(kw)
    return base


@pytest.mark.parametrize("family", ["gemma2", "gemma3_text", "phi3", "olmo2", "qwen3", "qwen3_moe", "qwen2_moe",
                                    "gpt_oss", "granite"])
def test_new_hf_families_convert(family):
    """Each new model family converts to a valid model preset."""
    extra = {"qwen3_moe": {"num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 128},
             "qwen2_moe": {"num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 128,
                           "shared_expert_intermediate_size": 512},
             "gpt_oss": {"num_local_experts": 8, "num_experts_per_tok": 2, "head_dim": 64, "sliding_window": 128},
             "gemma2": {"head_dim": 64, "sliding_window": 1024}, "gemma3_text": {"head_dim": 64, "sliding_window": 512}}
    m = model_from_dict(convert_hf_config(_hf(family, **extra.get(family, {})), "x/config.json"), "x/config.json")
    assert m.layers == 4 and m.ffn_type == "swiglu"
    assert (m.moe is not None) == (family in ("qwen3_moe", "qwen2_moe", "gpt_oss"))
    if family in ("gemma2", "gemma3_text", "gpt_oss"):
        assert any("sliding-window" in n for n in m.notes)
    if family == "qwen2_moe":
        assert m.moe.shared_experts == 1 and m.qkv_bias


def test_qwen2_qkv_biases_are_counted():
    """Qwen2's Q/K/V biases add exactly q + 2·kv parameters per layer."""
    raw = json.loads((HF / "qwen2-7b.json").read_text())
    m = model_from_dict(convert_hf_config(raw, "q/config.json"), "q/config.json")
    from dataclasses import replace

    without = replace(m, qkv_bias=False)
    assert m.qkv_bias
    assert total_params(m) - total_params(without) == m.layers * (m.q_size + 2 * m.kv_size)
    assert total_params(m) == 7_615_616_512  # the published Qwen2-7B parameter count


def test_rope_scaling_takes_the_original_context():
    """With rope_scaling, the sequence length is original_max_position_embeddings and the source says so."""
    raw = json.loads((HF / "llama3-8b.json").read_text())
    raw.update(max_position_embeddings=131072, rope_scaling={"factor": 8.0, "original_max_position_embeddings": 8192,
                                                             "rope_type": "llama3"})
    p = convert_hf_config(raw, "l/config.json")
    assert p["seq_length"] == 8192 and "original_max_position_embeddings" in p["seq_length_source"]


def test_model_dir_and_text_config(invoke_json, tmp_path):
    """-m DIR reads DIR/config.json; a multimodal config's text_config is the model; the seq source is stated."""
    d = tmp_path / "gemma-3-4b"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "gemma3", "text_config": _hf(
        "gemma3_text", head_dim=64, sliding_window=512)}))
    doc = invoke_json("estimate", "-m", d, "-c", "dgx-h100", "-n", "8", "--tokens", "1B")
    assert doc["inputs"]["model"] == "gemma-3-4b"
    assert any(a.startswith("sequence length 4,096 from the model") for a in doc["assumptions"])
    assert any("vision tower" in a for a in doc["assumptions"])


def test_every_estimate_states_the_sequence_source(invoke_json):
    """A plain preset estimate also says where the sequence length came from."""
    doc = invoke_json("estimate", "-m", "llama3-8b", "-c", "dgx-h100", "-n", "64", "--tokens", "1T")
    assert any(a.startswith("sequence length 8,192") for a in doc["assumptions"])


def test_reader_modules_use_only_the_standard_library():
    """The readers import only the standard library and mpg_cli (no yaml/typer/rich at module level)."""
    allowed = set(sys.stdlib_module_names) | {"__future__"}
    for path in (Path(__file__).parent.parent / "mpg_cli" / "inputs").glob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] in allowed for a in node.names), path
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                assert node.module.split(".")[0] in allowed | {"mpg_cli"}, path


def test_read_config_errors_are_mpg_errors(tmp_path):
    """A missing file and an empty file are PresetErrors naming the path."""
    with pytest.raises(PresetError, match="file not found"):
        read_config(str(tmp_path / "nope.toml"))
    (tmp_path / "e.toml").write_text("")
    with pytest.raises(MpgError, match="empty"):
        read_config(str(tmp_path / "e.toml"))
