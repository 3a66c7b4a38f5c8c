"""Refresh the output shown in README.md's ```console blocks by running each `$ mpg ...` command.

Usage: python scripts/update_readme.py [--check]

Each command runs in a temporary folder (with train.log = tests/fixtures/logs/megatron.log), 150 columns
wide, no colour. A block shown in full is replaced by the new output; a block abridged with '...' lines keeps
its shape: each line shown is replaced by the first later line of the new output that starts the same way
(the same label or first word). --check exits 1 when the README would change (tests/test_docs.py covers the
same ground).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def run(cmd: str, cwd: Path) -> str:
    env = {**os.environ, "COLUMNS": "150", "NO_COLOR": "1", "XDG_CONFIG_HOME": str(cwd / "cfg")}
    env.pop("MPG_PRESETS", None)
    args = [sys.executable, "-m", "mpg_cli", *shlex.split(cmd)[1:]]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    text = proc.stdout + proc.stderr
    return "\n".join(line.rstrip() for line in text.rstrip().splitlines())


def _key(line: str) -> str:
    s = line.strip()
    parts = re.split(r"\s{2,}", s)
    return parts[0] if parts else s


def merge(old: list[str], new: list[str]) -> list[str]:
    """Keep an abridged block's shape, refreshing each line it shows."""
    out, pos = [], 0
    for line in old:
        if line.strip() == "..." or not line.strip():
            out.append(line)
            continue
        for j in range(pos, len(new)):
            if _key(new[j]) == _key(line) and _key(line):
                out.append(new[j])
                pos = j + 1
                break
        else:
            out.append(line)
    return out


def refresh(text: str, cwd: Path) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        out.append(lines[i])
        if lines[i].strip() != "```console":
            i += 1
            continue
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            if lines[i].startswith("$ mpg "):
                cmd = lines[i][2:]
                out.append(lines[i])
                i += 1
                old = []
                while i < len(lines) and not lines[i].startswith("$ ") and lines[i].strip() != "```":
                    old.append(lines[i])
                    i += 1
                new = run(cmd, cwd).split("\n")
                out.extend(merge(old, new) if any(x.strip() == "..." for x in old) else (new if old else []))
            else:
                out.append(lines[i])
                i += 1
        if i < len(lines):
            out.append(lines[i])
        i += 1
    return "\n".join(out)


def main() -> int:
    check = "--check" in sys.argv
    text = README.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(ROOT / "tests" / "fixtures" / "logs" / "megatron.log", Path(tmp) / "train.log")
        new = refresh(text, Path(tmp))
    if new == text:
        print("README.md is up to date")
        return 0
    if check:
        print("README.md output is stale: run python scripts/update_readme.py")
        return 1
    README.write_text(new, encoding="utf-8")
    print("README.md refreshed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
