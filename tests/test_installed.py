"""The installed console script runs, and every built-in preset loads."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mpg_cli.presets import builtin_dir, load_cluster, load_gpu, load_model

REPO_PRESETS = Path(__file__).resolve().parent.parent / "presets"


def mpg_command() -> list[str]:
    """The installed 'mpg' script next to this interpreter, else on PATH, else 'python -m mpg_cli'."""
    beside = Path(sys.executable).parent / "mpg"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("mpg")
    return [found] if found else [sys.executable, "-m", "mpg_cli"]


def test_console_script_estimate_json(tmp_path):
    """The installed 'mpg estimate --format json' exits 0 and prints one parseable JSON document on stdout."""
    env = {k: v for k, v in os.environ.items() if k != "MPG_PRESETS"}
    env.update(XDG_CONFIG_HOME=str(tmp_path), NO_COLOR="1", COLUMNS="200")
    proc = subprocess.run(mpg_command() + ["estimate", "--format", "json"], capture_output=True, text=True,
                          env=env, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema_version"] == 1
    assert doc["inputs"]["model"] == "gpt3-175b"
    assert doc["time"]["days"] > 0 and math.isfinite(doc["time"]["days"])


def test_module_entry_point_version():
    """'python -m mpg_cli --version' prints the version and exits 0."""
    proc = subprocess.run([sys.executable, "-m", "mpg_cli", "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("mpg ")


LOADERS = {"models": load_model, "gpus": load_gpu, "clusters": load_cluster}
BUILTINS = [(kind, p.stem) for kind in LOADERS for p in sorted((REPO_PRESETS / kind).glob("*.y*ml"))]


def test_builtin_presets_are_found():
    """The repository ships presets of every kind and the loader looks in that folder."""
    assert builtin_dir().resolve() in (REPO_PRESETS.resolve(), (Path(__file__).parent.parent / "mpg_cli" / "presets").resolve())
    for kind in LOADERS:
        assert any(k == kind for k, _ in BUILTINS), kind


@pytest.mark.parametrize("kind, name", BUILTINS, ids=[f"{k}/{n}" for k, n in BUILTINS])
def test_builtin_preset_loads(kind, name):
    """Every built-in preset loads by name without error and carries its file name as its name."""
    spec = LOADERS[kind](name)
    assert spec.name == name
    if kind == "models":
        assert spec.layers > 0 and spec.hidden_size > 0 and spec.vocab_size > 0
    elif kind == "gpus":
        assert spec.memory_gib > 0 and any(v > 0 for _, v in spec.peak_tflops)
    else:
        assert spec.total_gpus > 0 and spec.gpu.memory_gib > 0
