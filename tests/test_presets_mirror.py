"""The parsed mirror of the built-in presets (mpg_cli/inputs/mirror.py): current, equal to YAML, never stale in use."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from mpg_cli.inputs import mirror
from mpg_cli.inputs.files import load_yaml_file, read_text
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
        stored = mirror.parsed(p, read_text(p, "YAML file"), builtin_dir())  # the text load_yaml_file sees
        assert stored is not None, p
        assert mirror.same(stored, load_yaml_file(p, use_mirror=False)), p  # keys in the file's order too


def test_a_mirror_built_from_crlf_files_serves_them(tmp_path, monkeypatch):
    """Presets checked out with CRLF line endings (or a BOM) are fingerprinted as the loader reads them, so a
    mirror written from them serves them."""
    base = tmp_path / "presets"
    shutil.copytree(builtin_dir(), base)
    files = sorted(base.rglob("*.yaml"))
    for n, p in enumerate(files):
        text = p.read_text(encoding="utf-8").replace("\n", "\r\n")
        p.write_bytes(("\ufeff" if n % 2 else "").encode("utf-8") + text.encode("utf-8"))
    monkeypatch.setattr("mpg_cli.presets.builtin_dir", lambda: base)
    doc = mirror.build(base, lambda p: load_yaml_file(p, use_mirror=False), lambda p: read_text(p, "YAML file"))
    monkeypatch.setattr(mirror, "_files", doc["files"])
    served = [mirror.parsed(p, read_text(p, "YAML file"), base) for p in files]
    assert all(x is not None for x in served)
    assert mirror.same(load_yaml_file(files[1]), load_yaml_file(files[1], use_mirror=False))


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


@pytest.mark.parametrize("content", ["", "not json", json.dumps({"format": 99, "files": {}}), "[]", "null",
                                     json.dumps({"format": 1, "files": []}), json.dumps({"format": 1, "files": None}),
                                     json.dumps({"format": 1, "files": {"models/llama3-8b.yaml": {"text": [0, 0]}}})])
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


def test_an_entry_without_its_data_is_a_miss(tmp_path, monkeypatch):
    """A mirror entry whose fingerprint matches but that holds no parsed value is never served (YAML instead)."""
    p = builtin_dir() / "models" / "llama3-8b.yaml"
    odd = tmp_path / "mirror.json"
    key = p.relative_to(builtin_dir()).as_posix()
    odd.write_text(json.dumps({"format": 1, "files": {key: {"text": mirror.fingerprint(read_text(p, "YAML file"))}}}),
                   encoding="utf-8")
    monkeypatch.setattr(mirror, "MIRROR_FILE", odd)
    monkeypatch.setattr(mirror, "_files", None)
    assert mirror.parsed(p, read_text(p, "YAML file"), builtin_dir()) is None
    assert load_yaml_file(p)["layers"] == load_yaml_file(p, use_mirror=False)["layers"]
