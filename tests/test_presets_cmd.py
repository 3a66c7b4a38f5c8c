"""mpg presets list/show, user preset directories, completion, and the everyday output switches."""

from __future__ import annotations

import json
from pathlib import Path

from mpg_cli.presets import builtin_dir, complete

BUILTIN = builtin_dir()


def _user_dir(tmp_path: Path) -> Path:
    d = tmp_path / "mine"
    (d / "gpus").mkdir(parents=True)
    (d / "models").mkdir()
    text = (BUILTIN / "gpus" / "h100-sxm.yaml").read_text().replace("memory_gib: 80", "memory_gib: 96")
    (d / "gpus" / "h100-sxm.yaml").write_text(text)
    (d / "models" / "tiny.yaml").write_text("name: tiny\nlayers: 2\nhidden_size: 256\nheads: 4\n"
                                            "vocab_size: 1000\nseq_length: 512\n")
    return d


def test_list_shows_builtins_by_kind(invoke_json):
    """presets list models --format json lists every built-in model with its origin."""
    doc = invoke_json("presets", "list", "models")
    names = {p["name"] for p in doc["presets"]}
    assert {"gpt3-175b", "llama3-8b", "deepseek-v3"} <= names
    assert all(p["kind"] == "models" and p["origin"] == "built-in" for p in doc["presets"])


def test_presets_dir_overrides_builtin_and_list_shows_the_winner(invoke_json, tmp_path):
    """--presets DIR adds presets and overrides built-ins; list marks which one wins."""
    d = _user_dir(tmp_path)
    doc = invoke_json("presets", "list", "gpus", "--presets", str(d))
    h100 = [p for p in doc["presets"] if p["name"] == "h100-sxm"]
    assert {(p["origin"], p["active"]) for p in h100} == {("built-in", False), ("--presets", True)}
    shown = invoke_json("presets", "show", "h100-sxm", "--presets", str(d))
    assert shown["preset"]["memory_gib"] == 96
    assert "--presets" in shown["preset"]["origin"]


def test_mpg_presets_env_is_used(invoke, tmp_path, monkeypatch):
    """$MPG_PRESETS adds user presets that estimate can use by name."""
    d = _user_dir(tmp_path)
    res = invoke("estimate", "-m", "tiny", "-c", "dgx-h100", "-n", "8", "-f", "json", env={"MPG_PRESETS": str(d)})
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["inputs"]["model"] == "tiny"


def test_show_model_has_computed_params(invoke_json):
    """presets show for a model adds the computed total and active parameters."""
    doc = invoke_json("presets", "show", "mixtral-8x7b")
    assert doc["kind"] == "models"
    assert doc["preset"]["computed_params"]["active"] < doc["preset"]["computed_params"]["total"]


def test_show_unknown_has_did_you_mean(invoke):
    """An unknown preset name exits 2 with a did-you-mean."""
    res = invoke("presets", "show", "lama3-8b")
    assert res.exit_code == 2 and "did you mean 'llama3-8b'" in res.stderr


def test_list_unknown_kind(invoke):
    """An unknown kind exits 2 and lists the kinds."""
    res = invoke("presets", "list", "modles")
    assert res.exit_code == 2 and "models" in res.stderr


def test_completion_lists_preset_names():
    """Shell completion of preset names is a prefix match over the preset folders."""
    assert "llama3-8b" in complete("models")("llama3")
    assert all(n.startswith("dgx") for n in complete("clusters")("dgx"))


def test_no_color_and_pipes_give_plain_text(invoke):
    """With NO_COLOR (and output not a terminal) tables carry no escape codes."""
    res = invoke("estimate", "-m", "gpt-1.7b", "-n", "8", env={"NO_COLOR": "1"})
    assert res.exit_code == 0 and "\x1b[" not in res.stdout


def test_quiet_hides_warnings(invoke):
    """--quiet drops warnings from stderr; without it the uncalibrated-GPU warning is printed."""
    loud = invoke("estimate", "-m", "gpt-1.7b", "-c", "mi300x-8x", "-n", "8")
    quiet = invoke("estimate", "-m", "gpt-1.7b", "-c", "mi300x-8x", "-n", "8", "--quiet")
    assert loud.exit_code == quiet.exit_code == 0
    assert "WARNING:" in loud.stderr and "WARNING:" not in quiet.stderr


def test_output_file_is_replaced_atomically(invoke, tmp_path):
    """--output replaces its file whole (a temporary file is renamed into place; none is left behind)."""
    out = tmp_path / "e.json"
    out.write_text("old")
    assert invoke("estimate", "-m", "gpt-1.7b", "-n", "8", "-f", "json", "-o", str(out)).exit_code == 0
    assert json.loads(out.read_text())["command"] == "estimate"
    assert [p.name for p in tmp_path.iterdir()] == ["e.json"]


def test_output_to_a_directory_is_bad_input(invoke, tmp_path):
    """--output naming a directory exits 2 with a clear message."""
    res = invoke("estimate", "-m", "gpt-1.7b", "-n", "8", "-f", "json", "-o", str(tmp_path))
    assert res.exit_code == 2 and "is a directory" in res.stderr


def test_hugging_face_config_json_as_model(invoke_json):
    """--model takes a local Hugging Face config.json: Llama-2-7B gives exactly 6,738,415,616 parameters."""
    hf = Path(__file__).parent / "fixtures" / "hf"
    doc = invoke_json("estimate", "-m", str(hf / "llama2-7b.json"), "-c", "dgx-a100", "-n", "8")
    assert doc["params"]["total"] == 6_738_415_616
    moe = invoke_json("estimate", "-m", str(hf / "deepseek-v3.json"), "-c", "dgx-h100", "-n", "2048")
    assert 36e9 < moe["params"]["active"] < 39e9 and 660e9 < moe["params"]["total"] < 690e9
