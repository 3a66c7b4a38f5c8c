"""Tests for mpg_cli.hf_config: Hugging Face config.json -> mpg model preset."""

from __future__ import annotations

import ast
import copy
import json
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpg_cli.errors import PresetError
from mpg_cli.inputs.hf_config import SUPPORTED_MODEL_TYPES, convert_hf_config

FIXTURES = Path(__file__).parent / "fixtures" / "hf"
INPUTS = Path(__file__).parent.parent / "mpg_cli" / "inputs"
# mpg_cli/hf_config.py re-exports inputs/hf_config.py, which reads each family with hf_families.py and hf_reader.py
MODULES = [INPUTS / "hf_config.py", INPUTS / "hf_families.py", INPUTS / "hf_reader.py"]
SIBLINGS = {"mpg_cli.errors", "mpg_cli.inputs.hf_families", "mpg_cli.inputs.hf_reader"}

REQUIRED_KEYS = {
    "name", "description", "source", "layers", "hidden_size", "heads", "kv_heads",
    "ffn_hidden_size", "ffn_type", "vocab_size", "seq_length", "tied_embeddings",
    "position_embedding", "linear_biases", "norm",
}
OPTIONAL_KEYS = {"head_dim", "moe", "mla", "qkv_bias", "seq_length_source", "assumptions"}


def load(name: str) -> tuple[dict, str]:
    path = FIXTURES / f"{name}.json"
    return json.loads(path.read_text()), str(path)


def convert(name: str) -> dict:
    raw, source = load(name)
    return convert_hf_config(raw, source)


def convert_raw(raw: dict, source: str = "models/x/config.json") -> dict:
    return convert_hf_config(raw, source)


def error_for(raw: dict, source: str = "models/x/config.json") -> PresetError:
    with pytest.raises(PresetError) as info:
        convert_hf_config(raw, source)
    return info.value


# ---------------------------------------------------------------- fixtures

EXPECTED_SHAPE = {
    # name: (family, ffn_type, position_embedding, norm, linear_biases, tied, has moe, has mla)
    "llama2-7b": ("llama", "swiglu", "rope", "rmsnorm", False, False, False, False),
    "llama3-8b": ("llama", "swiglu", "rope", "rmsnorm", False, False, False, False),
    "mistral-7b": ("mistral", "swiglu", "rope", "rmsnorm", False, False, False, False),
    "mixtral-8x7b": ("mixtral", "swiglu", "rope", "rmsnorm", False, False, True, False),
    "qwen2-7b": ("qwen2", "swiglu", "rope", "rmsnorm", False, False, False, False),
    "gpt2": ("gpt2", "gelu", "learned", "layernorm", True, True, False, False),
    "gpt-neox-20b": ("gpt_neox", "gelu", "rope", "layernorm", True, False, False, False),
    "falcon-7b": ("falcon", "gelu", "rope", "layernorm", False, True, False, False),
    "deepseek-v3": ("deepseek_v3", "swiglu", "rope", "rmsnorm", False, False, True, True),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_SHAPE))
def test_fixture_converts_to_preset_shape(name):
    """Every fixture converts to a dict with exactly the preset keys and the family's fields."""
    family, ffn_type, pos, norm, biases, tied, has_moe, has_mla = EXPECTED_SHAPE[name]
    preset = convert(name)
    keys = set(preset)
    assert REQUIRED_KEYS <= keys
    assert keys - REQUIRED_KEYS <= OPTIONAL_KEYS
    assert preset["description"].startswith(f"from Hugging Face config.json ({family})")
    assert preset["source"] == str(FIXTURES / f"{name}.json")
    assert preset["ffn_type"] == ffn_type
    assert preset["position_embedding"] == pos
    assert preset["norm"] == norm
    assert preset["linear_biases"] is biases
    assert preset["tied_embeddings"] is tied
    assert ("moe" in preset) is has_moe
    assert ("mla" in preset) is has_mla
    for key in ("layers", "hidden_size", "heads", "kv_heads", "ffn_hidden_size",
                "vocab_size", "seq_length"):
        assert type(preset[key]) is int and preset[key] > 0, key
    assert preset["heads"] % preset["kv_heads"] == 0


@pytest.mark.parametrize("name", sorted(EXPECTED_SHAPE))
def test_fixture_result_is_plain_json_data(name):
    """The returned preset is plain data that round-trips through JSON unchanged."""
    preset = convert(name)
    assert json.loads(json.dumps(preset)) == preset


@pytest.mark.parametrize("name", sorted(EXPECTED_SHAPE))
def test_conversion_does_not_mutate_input(name):
    """Converting leaves the caller's raw dict untouched."""
    raw, source = load(name)
    before = copy.deepcopy(raw)
    convert_hf_config(raw, source)
    assert raw == before


def test_llama2_7b_exact():
    """llama2-7b: 32 layers, 4096 hidden, 32 heads, 32 kv heads, ffn 11008, V 32000, untied."""
    preset = convert("llama2-7b")
    assert preset == {
        "name": "Llama-2-7b-hf",
        "description": "from Hugging Face config.json (llama)",
        "source": str(FIXTURES / "llama2-7b.json"),
        "layers": 32,
        "hidden_size": 4096,
        "heads": 32,
        "kv_heads": 32,
        "ffn_hidden_size": 11008,
        "ffn_type": "swiglu",
        "vocab_size": 32000,
        "seq_length": 4096,
        "seq_length_source": "max_position_embeddings 4,096",
        "tied_embeddings": False,
        "position_embedding": "rope",
        "linear_biases": False,
        "norm": "rmsnorm",
    }


def test_llama3_8b_exact():
    """llama3-8b: GQA with 8 kv heads, ffn 14336, V 128256, seq 8192, no head_dim key."""
    preset = convert("llama3-8b")
    assert (preset["layers"], preset["hidden_size"], preset["heads"]) == (32, 4096, 32)
    assert preset["kv_heads"] == 8
    assert preset["ffn_hidden_size"] == 14336
    assert preset["vocab_size"] == 128256
    assert preset["seq_length"] == 8192
    assert preset["tied_embeddings"] is False
    assert "head_dim" not in preset


def test_mistral_7b_fields():
    """mistral-7b: 8 kv heads, ffn 14336, seq 32768, dense."""
    preset = convert("mistral-7b")
    assert (preset["kv_heads"], preset["ffn_hidden_size"], preset["seq_length"]) == (8, 14336, 32768)
    assert "moe" not in preset


def test_mixtral_moe():
    """mixtral-8x7b: 8 experts, top-2, expert ffn = intermediate_size 14336."""
    preset = convert("mixtral-8x7b")
    assert preset["moe"] == {"experts": 8, "top_k": 2, "expert_ffn_hidden_size": 14336}
    assert preset["ffn_hidden_size"] == 14336
    assert preset["kv_heads"] == 8


def test_qwen2_7b_fields():
    """qwen2-7b: 28 layers, 3584 hidden, 28 heads, 4 kv heads, ffn 18944, V 152064, no biases."""
    preset = convert("qwen2-7b")
    assert (preset["layers"], preset["hidden_size"], preset["heads"], preset["kv_heads"]) == (
        28, 3584, 28, 4)
    assert (preset["ffn_hidden_size"], preset["vocab_size"]) == (18944, 152064)
    assert preset["linear_biases"] is False


def test_gpt2_small_fields():
    """gpt2: 12x768x12, n_inner null gives ffn 3072, V 50257, seq 1024, tied, learned positions."""
    preset = convert("gpt2")
    assert (preset["layers"], preset["hidden_size"], preset["heads"], preset["kv_heads"]) == (
        12, 768, 12, 12)
    assert preset["ffn_hidden_size"] == 4 * 768
    assert (preset["vocab_size"], preset["seq_length"]) == (50257, 1024)
    assert preset["tied_embeddings"] is True
    assert preset["position_embedding"] == "learned"


def test_gpt_neox_20b_fields():
    """gpt-neox-20b: 44 layers, 6144 hidden, 64 heads, ffn 24576, V 50432, untied, biases."""
    preset = convert("gpt-neox-20b")
    assert (preset["layers"], preset["hidden_size"], preset["heads"], preset["kv_heads"]) == (
        44, 6144, 64, 64)
    assert (preset["ffn_hidden_size"], preset["vocab_size"], preset["seq_length"]) == (
        24576, 50432, 2048)
    assert preset["tied_embeddings"] is False
    assert preset["linear_biases"] is True


def test_falcon_7b_fields():
    """falcon-7b: multi-query (1 kv head), head_dim 64, ffn 4*4544, seq defaults to 2048."""
    preset = convert("falcon-7b")
    assert (preset["layers"], preset["hidden_size"], preset["heads"]) == (32, 4544, 71)
    assert preset["kv_heads"] == 1
    assert preset["ffn_hidden_size"] == 4 * 4544
    assert preset["seq_length"] == 2048
    assert preset["vocab_size"] == 65024
    assert "parallel attention" in preset["description"]


def test_deepseek_v3_exact():
    """deepseek-v3: 61x7168, 128 heads, 256 experts top-8, 1 shared, 3 dense, MLA ranks and dims."""
    preset = convert("deepseek-v3")
    assert (preset["layers"], preset["hidden_size"], preset["heads"]) == (61, 7168, 128)
    assert preset["ffn_hidden_size"] == 18432
    assert preset["vocab_size"] == 129280
    assert preset["moe"] == {
        "experts": 256,
        "top_k": 8,
        "expert_ffn_hidden_size": 2048,
        "shared_experts": 1,
        "dense_layers": 3,
    }
    assert preset["mla"] == {
        "q_lora_rank": 1536,
        "kv_lora_rank": 512,
        "qk_nope_head_dim": 128,
        "qk_rope_head_dim": 64,
        "v_head_dim": 128,
    }
    assert "head_dim" not in preset
    assert "mtp_layers" not in preset  # the multi-token prediction module is said, not counted
    assert preset["assumptions"] == ["deepseek_v3: the 1 multi-token prediction module(s) (num_nextn_predict_layers) "
                                     "are not counted; add mtp_layers: 1 to a preset to count them on the last "
                                     "pipeline stage"]


def test_deepseek_without_mtp_modules_says_nothing_of_them():
    """num_nextn_predict_layers 0, absent (DeepSeek-V2) or unreadable adds no multi-token prediction note."""
    raw, _ = load("deepseek-v3")
    raw["num_nextn_predict_layers"] = 0
    assert "assumptions" not in convert_raw(raw)
    del raw["num_nextn_predict_layers"]
    assert "assumptions" not in convert_raw(raw)
    for odd in ("x", -1, True, 1.5, None, 10**30):  # a value only noted never fails the config
        raw["num_nextn_predict_layers"] = odd
        assert "assumptions" not in convert_raw(raw)


# ---------------------------------------------------------------- variants


def test_deepseek_v2_null_q_lora_rank_is_zero():
    """deepseek_v2 (lite style) with q_lora_rank null maps to q_lora_rank 0."""
    raw, _ = load("deepseek-v3")
    raw.update(model_type="deepseek_v2", q_lora_rank=None, n_shared_experts=2,
               first_k_dense_replace=1)
    preset = convert_raw(raw)
    assert preset["mla"]["q_lora_rank"] == 0
    assert preset["moe"]["shared_experts"] == 2
    assert preset["moe"]["dense_layers"] == 1
    assert preset["description"] == "from Hugging Face config.json (deepseek_v2)"


def test_deepseek_zero_dense_layers_omitted():
    """first_k_dense_replace 0 and no shared experts leave those optional moe keys out."""
    raw, _ = load("deepseek-v3")
    raw.update(first_k_dense_replace=0, n_shared_experts=0)
    moe = convert_raw(raw)["moe"]
    assert "dense_layers" not in moe and "shared_experts" not in moe


def test_deepseek_sparse_moe_layer_freq_rejected():
    """MoE only every k-th layer (moe_layer_freq != 1) is reported, not silently mis-counted."""
    raw, _ = load("deepseek-v3")
    raw["moe_layer_freq"] = 2
    err = error_for(raw)
    assert "moe_layer_freq" in err.message and err.hint


def test_explicit_head_dim_is_kept():
    """A config with an explicit head_dim (Mistral-Nemo style) carries head_dim through."""
    raw, _ = load("mistral-7b")
    raw.update(hidden_size=5120, head_dim=128, num_attention_heads=32)
    preset = convert_raw(raw)
    assert preset["head_dim"] == 128
    assert preset["hidden_size"] == 5120


def test_tied_embeddings_from_config():
    """tie_word_embeddings true in a llama-family config gives tied_embeddings true."""
    raw, _ = load("qwen2-7b")
    raw["tie_word_embeddings"] = True
    assert convert_raw(raw)["tied_embeddings"] is True


def test_missing_tie_uses_family_default():
    """Without tie_word_embeddings, llama defaults untied and gpt2 defaults tied."""
    llama, _ = load("llama2-7b")
    del llama["tie_word_embeddings"]
    assert convert_raw(llama)["tied_embeddings"] is False
    gpt2, _ = load("gpt2")
    gpt2.pop("tie_word_embeddings", None)
    assert convert_raw(gpt2)["tied_embeddings"] is True


def test_missing_kv_heads_defaults_to_heads():
    """A llama config without num_key_value_heads is plain multi-head attention."""
    raw, _ = load("llama3-8b")
    del raw["num_key_value_heads"]
    assert convert_raw(raw)["kv_heads"] == 32


def test_gpt2_explicit_n_inner_and_n_ctx_fallback():
    """gpt2 uses n_inner when set and n_ctx when n_positions is absent."""
    raw, _ = load("gpt2")
    raw["n_inner"] = 1000
    del raw["n_positions"]
    raw["n_ctx"] = 512
    preset = convert_raw(raw)
    assert preset["ffn_hidden_size"] == 1000
    assert preset["seq_length"] == 512


def test_falcon_new_decoder_architecture_uses_num_kv_heads():
    """falcon-40b style (new_decoder_architecture) takes kv heads from num_kv_heads."""
    raw, _ = load("falcon-7b")
    raw.update(hidden_size=8192, num_attention_heads=128, num_hidden_layers=60,
               new_decoder_architecture=True, num_kv_heads=8, max_position_embeddings=2048)
    preset = convert_raw(raw)
    assert preset["kv_heads"] == 8
    assert preset["layers"] == 60


def test_falcon_no_multi_query_is_full_mha():
    """falcon with multi_query false and the old architecture has kv_heads == heads."""
    raw, _ = load("falcon-7b")
    raw["multi_query"] = False
    preset = convert_raw(raw)
    assert preset["kv_heads"] == preset["heads"] == 71


def test_falcon_alibi_and_bias():
    """falcon alibi: true gives alibi positions; bias: true gives linear biases."""
    raw, _ = load("falcon-7b")
    raw.update(alibi=True, bias=True)
    preset = convert_raw(raw)
    assert preset["position_embedding"] == "alibi"
    assert preset["linear_biases"] is True


def test_falcon_old_refinedweb_model_names():
    """Old RefinedWebModel (7B) and RefinedWeb (40B) configs with n_layer/n_head keys convert."""
    rw7 = {"model_type": "RefinedWebModel", "n_layer": 32, "n_head": 71, "hidden_size": 4544,
           "multi_query": True, "parallel_attn": True, "bias": False, "alibi": False,
           "vocab_size": 65024}
    preset = convert_raw(rw7)
    assert (preset["layers"], preset["heads"], preset["kv_heads"]) == (32, 71, 1)
    assert preset["description"].startswith("from Hugging Face config.json (falcon)")
    rw40 = {"model_type": "RefinedWeb", "n_layer": 60, "n_head": 128, "n_head_kv": 8,
            "hidden_size": 8192, "parallel_attn": True, "bias": False, "alibi": False,
            "vocab_size": 65024}
    preset = convert_raw(rw40)
    assert (preset["layers"], preset["heads"], preset["kv_heads"]) == (60, 128, 8)


# ---------------------------------------------------------------- names


def test_name_from_name_or_path_basename():
    """_name_or_path 'org/model' gives the name 'model'."""
    assert convert("llama2-7b")["name"] == "Llama-2-7b-hf"


def test_name_from_parent_dir_of_config_json():
    """Without _name_or_path, a .../<dir>/config.json is named after <dir>."""
    raw, _ = load("llama3-8b")
    assert convert_raw(raw, "/models/Meta-Llama-3-8B/config.json")["name"] == "Meta-Llama-3-8B"


def test_name_from_file_stem_for_renamed_config():
    """A config saved as <model>.json (not config.json) is named after its file stem."""
    assert convert("llama3-8b")["name"] == "llama3-8b"


def test_name_falls_back_to_model_type():
    """With no _name_or_path and no usable path, the name is the model_type."""
    raw, _ = load("llama3-8b")
    assert convert_raw(raw, "")["name"] == "llama"


# ---------------------------------------------------------------- errors


def test_unknown_model_type_suggests_closest():
    """An unknown model_type like 'lama' names the file and suggests 'llama' plus the list."""
    raw, _ = load("llama2-7b")
    raw["model_type"] = "lama"
    err = error_for(raw, "some/dir/config.json")
    assert "some/dir/config.json" in err.message
    assert "model_type" in err.message and "'lama'" in err.message
    assert "did you mean 'llama'?" in err.hint
    for family in SUPPORTED_MODEL_TYPES:
        assert family in err.hint


def test_model_type_wrong_case_suggests_canonical():
    """A wrongly-cased model_type ('Llama') suggests the canonical spelling."""
    raw, _ = load("llama2-7b")
    raw["model_type"] = "Llama"
    assert "did you mean 'llama'?" in error_for(raw).hint


def test_missing_model_type_lists_supported():
    """A config without model_type names the key and lists the supported families."""
    raw, _ = load("llama2-7b")
    del raw["model_type"]
    err = error_for(raw, "a/config.json")
    assert err.message.startswith("a/config.json: model_type: missing key in config.json")
    for family in SUPPORTED_MODEL_TYPES:
        assert family in err.message
    assert err.hint


def test_non_string_model_type_rejected():
    """A non-string model_type is reported with its value."""
    raw, _ = load("llama2-7b")
    raw["model_type"] = 7
    err = error_for(raw)
    assert "model_type" in err.message and "7" in err.message


def test_non_dict_config_rejected():
    """A JSON value that is not an object is a PresetError, not a crash."""
    err = error_for([1, 2, 3])  # type: ignore[arg-type]
    assert "models/x/config.json" in err.message


@pytest.mark.parametrize(
    "name,key",
    [
        ("llama2-7b", "num_hidden_layers"),
        ("llama2-7b", "intermediate_size"),
        ("llama3-8b", "vocab_size"),
        ("mistral-7b", "max_position_embeddings"),
        ("mixtral-8x7b", "num_local_experts"),
        ("mixtral-8x7b", "num_experts_per_tok"),
        ("qwen2-7b", "hidden_size"),
        ("gpt2", "n_embd"),
        ("gpt-neox-20b", "intermediate_size"),
        ("falcon-7b", "vocab_size"),
        ("deepseek-v3", "moe_intermediate_size"),
        ("deepseek-v3", "kv_lora_rank"),
        ("deepseek-v3", "qk_rope_head_dim"),
    ],
)
def test_missing_required_key_is_named(name, key):
    """Deleting a required key raises '<source>: <key>: missing key in config.json' with a hint."""
    raw, source = load(name)
    del raw[key]
    err = error_for(raw, source)
    assert err.message == f"{source}: {key}: missing key in config.json"
    assert err.hint and key in err.hint


def test_null_required_key_counts_as_missing():
    """A required key set to null is reported as missing."""
    raw, _ = load("llama2-7b")
    raw["vocab_size"] = None
    assert error_for(raw, "c.json").message == "c.json: vocab_size: missing key in config.json"


@pytest.mark.parametrize(
    "key,value",
    [
        ("hidden_size", "4096"),
        ("hidden_size", True),
        ("num_hidden_layers", 32.0),
        ("num_attention_heads", 0),
        ("intermediate_size", -1),
        ("vocab_size", [32000]),
    ],
)
def test_wrong_type_names_key_and_value(key, value):
    """A string, bool, float, list or non-positive value for an int key names the key and value."""
    raw, _ = load("llama2-7b")
    raw[key] = value
    err = error_for(raw, "m/config.json")
    assert err.message.startswith(f"m/config.json: {key}: ")
    assert repr(value) in err.message
    assert err.hint


def test_wrong_type_for_boolean_key():
    """tie_word_embeddings given as a string is rejected, naming key and value."""
    raw, _ = load("llama2-7b")
    raw["tie_word_embeddings"] = "false"
    err = error_for(raw)
    assert "tie_word_embeddings" in err.message and "'false'" in err.message


def test_kv_heads_must_divide_heads():
    """num_key_value_heads that does not divide num_attention_heads is rejected."""
    raw, _ = load("llama3-8b")
    raw["num_key_value_heads"] = 5
    assert "num_key_value_heads" in error_for(raw).message


def test_hidden_not_divisible_by_heads_without_head_dim():
    """hidden_size not divisible by heads (and no head_dim) is rejected with a head_dim hint."""
    raw, _ = load("llama2-7b")
    raw.update(num_attention_heads=30, num_key_value_heads=30)
    err = error_for(raw)
    assert "num_attention_heads" in err.message and "head_dim" in err.hint


def test_top_k_above_experts_rejected():
    """num_experts_per_tok larger than the expert count is rejected."""
    raw, _ = load("mixtral-8x7b")
    raw["num_experts_per_tok"] = 9
    assert "num_experts_per_tok" in error_for(raw).message


@given(st.one_of(st.text(), st.booleans(), st.floats(), st.none(), st.lists(st.integers()),
                 st.integers(max_value=0)))
def test_any_non_positive_int_hidden_size_is_preset_error(value):
    """Any non-positive-integer hidden_size raises PresetError naming hidden_size, never crashes."""
    raw, _ = load("llama2-7b")
    raw["hidden_size"] = value
    with pytest.raises(PresetError) as info:
        convert_hf_config(raw, "h/config.json")
    assert "hidden_size" in info.value.message


@given(st.integers(min_value=1, max_value=64), st.integers(min_value=1, max_value=256))
def test_positive_dims_pass_through(layers, vocab):
    """Any positive layers/vocab_size values are carried over exactly."""
    raw, _ = load("llama2-7b")
    raw.update(num_hidden_layers=layers, vocab_size=vocab)
    preset = convert_hf_config(raw, "p/config.json")
    assert (preset["layers"], preset["vocab_size"]) == (layers, vocab)


# ---------------------------------------------------------------- module hygiene


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_module_imports_only_stdlib_and_errors(module):
    """hf_config and its readers import only the standard library, mpg_cli.errors and each other (no transformers)."""
    tree = ast.parse(module.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
    for name in names:
        top = name.split(".")[0]
        assert name in SIBLINGS or top in sys.stdlib_module_names or top == "__future__", name


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_module_has_no_assert(module):
    """hf_config and its readers validate with PresetError, never assert."""
    tree = ast.parse(module.read_text())
    assert not any(isinstance(node, ast.Assert) for node in ast.walk(tree))
