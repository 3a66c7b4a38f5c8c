"""A plain (non-editable) install ships every preset inside the package."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _installed(code: str, tmp_path: Path) -> dict:
    """What ``code`` prints (JSON, with the package's ``pkg`` path) run from another folder by the installed
    mpg_cli; skipped under an editable install, where the repository's files are beside the package anyway."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    if Path(info["pkg"]).resolve().parent == (REPO / "mpg_cli").resolve():
        pytest.skip("mpg_cli is installed in editable mode here; CI installs it with a plain 'pip install .'")
    return info


def test_installed_package_finds_presets_inside_the_wheel(tmp_path):
    """From another folder, the installed mpg_cli loads presets from mpg_cli/presets, the same set as the repo's."""
    info = _installed("import json, mpg_cli, mpg_cli.presets as p; "
                      "print(json.dumps({'pkg': mpg_cli.__file__, 'dir': str(p.builtin_dir()), "
                      "'names': sorted(f'{k}/{n}' for k in p.KINDS for n in p.available(k))}))", tmp_path)
    assert Path(info["dir"]) == Path(info["pkg"]).parent / "presets"
    repo = sorted(f"{k}/{p.stem}" for k in ("models", "gpus", "clusters") for p in (REPO / "presets" / k).glob("*.yaml"))
    assert info["names"] == repo


def test_installed_package_serves_builtin_presets_from_its_mirror(tmp_path):
    """The installed package ships the parsed preset mirror, and every built-in preset is served from it."""
    info = _installed("import json, mpg_cli, mpg_cli.presets as p, mpg_cli.inputs.mirror as m; "
                      "from mpg_cli.inputs.files import read_text; "
                      "files = sorted(p.builtin_dir().rglob('*.yaml')); "
                      "print(json.dumps({'pkg': mpg_cli.__file__, 'mirror': str(m.MIRROR_FILE), 'files': len(files), "
                      "'served': sum(m.parsed(f, read_text(f, 'YAML file'), p.builtin_dir()) is not None "
                      "for f in files)}))", tmp_path)
    assert Path(info["mirror"]).parent == Path(info["pkg"]).parent / "data"
    assert info["files"] >= 20 and info["served"] == info["files"]
