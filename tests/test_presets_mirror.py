"""The parsed mirror of the built-in presets (mpg_cli/inputs/mirror.py): current, equal to YAML, never stale in use."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from mpg_cli.inputs import mirror
from mpg_cli.inputs.files import load_yaml_file
from mpg_cli.presets import builtin_dir

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_mirror_is_what_the_script_writes():
    """The shipped mirror is exactly what scripts/mirror_presets.py writes from today's presets/ (run it after edits)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import mirror_presets
    finally:
        sys.path.pop(0)
    assert mirror.MIRROR_FILE.read_text(encoding="utf-8") == mirror_presets.render()


def test_every_builtin_preset_comes_from_the_mirror_equal_to_its_yaml():
    """Each built-in preset file is served from the mirror, and the value equals what the YAML loader parses."""
    files = sorted(builtin_dir().rglob("*.yaml"))
    assert len(files) >= 20
    for p in files:
        stored = mirror.parsed(p, p.read_text(encoding="utf-8"), builtin_dir())
        assert stored is not None, p
        assert stored == load_yaml_file(p, use_mirror=False), p


def test_an_edited_builtin_file_is_parsed_as_yaml(tmp_path, monkeypatch):
    """A built-in preset whose text changed since the mirror was written is read from its YAML, not the mirror."""
    base = tmp_path / "presets"
    shutil.copytree(builtin_dir(), base)
    target = base / "models" / "gpt3-175b.yaml"
    target.write_text(target.read_text(encoding="utf-8").replace("layers: 96", "layers: 95"), encoding="utf-8")
    monkeypatch.setattr("mpg_cli.presets.builtin_dir", lambda: base)
    assert load_yaml_file(target)["layers"] == 95
    untouched = base / "models" / "llama3-8b.yaml"
    assert mirror.parsed(untouched, untouched.read_text(encoding="utf-8"), base) is not None


def test_files_outside_the_builtin_presets_never_use_the_mirror(tmp_path):
    """A user's file with a built-in preset's exact text and name is still parsed from its own YAML path."""
    src = builtin_dir() / "models" / "llama3-8b.yaml"
    copy = tmp_path / "models" / "llama3-8b.yaml"
    copy.parent.mkdir()
    copy.write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    assert mirror.parsed(copy, copy.read_text(encoding="utf-8"), builtin_dir()) is None


def test_callers_get_a_fresh_copy(monkeypatch):
    """Changing a mapping the mirror returned never changes what the next load returns."""
    p = builtin_dir() / "models" / "llama3-8b.yaml"
    first = load_yaml_file(p)
    first["layers"] = -1
    assert load_yaml_file(p)["layers"] != -1


@pytest.mark.parametrize("content", ["", "not json", json.dumps({"format": 99, "files": {}}), "[]"])
def test_a_missing_or_odd_mirror_falls_back_to_yaml(tmp_path, monkeypatch, content):
    """Without a readable mirror of this format every built-in preset is parsed as YAML, with the same value."""
    odd = tmp_path / "mirror.json"
    if content:
        odd.write_text(content, encoding="utf-8")
    monkeypatch.setattr(mirror, "MIRROR_FILE", odd)
    monkeypatch.setattr(mirror, "_files", None)
    p = builtin_dir() / "models" / "llama3-8b.yaml"
    assert mirror.parsed(p, p.read_text(encoding="utf-8"), builtin_dir()) is None
    assert load_yaml_file(p) == load_yaml_file(p, use_mirror=False)
