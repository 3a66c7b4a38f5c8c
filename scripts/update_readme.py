"""Refresh the output shown in README.md's ```console blocks by running each `$ mpg ...` command.

Usage: python scripts/update_readme.py [--check]

It also regenerates the example reports in docs/examples/ (``mpg report`` for three README scenarios,
``EXAMPLE_REPORTS``) and, where headless Chromium is installed, the screenshot docs/report.png of the first.

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


EXAMPLES = ROOT / "docs" / "examples"
SCREENSHOT = ROOT / "docs" / "report.png"
# (file name, mpg report arguments): the README's --explain estimate, its fit example and its 4-scenario compare
EXAMPLE_REPORTS = (
    ("llama3-70b-512-h100.html", "-m llama3-70b -c dgx-h100 -n 512 --tokens 15T"),
    ("llama3-405b-1024-h100.html", "-m llama3-405b -c dgx-h100 -n 1024"),
    ("compare-4-scenarios.html", "--scenarios docs/examples/plan.yaml"),
)
CHROMIUM = Path("/usr/bin/chromium")


def refresh_reports(check: bool) -> bool:
    """Regenerate docs/examples/*.html (and docs/report.png); returns whether anything was stale."""
    stale = False
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("MPG_PRESETS", None)
    with tempfile.TemporaryDirectory() as tmp:
        env["XDG_CONFIG_HOME"] = str(Path(tmp) / "cfg")
        for name, args in EXAMPLE_REPORTS:
            out = Path(tmp) / name
            proc = subprocess.run([sys.executable, "-m", "mpg_cli", "report", *shlex.split(args), "-q", "-o", str(out)],
                                  capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
            if proc.returncode != 0:
                raise SystemExit(f"mpg report {args} failed: {proc.stderr}")
            target = EXAMPLES / name
            new = out.read_text(encoding="utf-8")
            if target.exists() and target.read_text(encoding="utf-8") == new:
                continue
            stale = True
            if not check:
                target.write_text(new, encoding="utf-8")
                print(f"{target.relative_to(ROOT)} refreshed")
    if not check and (stale or not SCREENSHOT.exists()):
        screenshot(EXAMPLES / EXAMPLE_REPORTS[0][0], SCREENSHOT)
    return stale


def screenshot(page: Path, png: Path) -> None:
    """A 1280×2000 headless-Chromium screenshot of ``page`` (skipped, with a note, without Chromium)."""
    if not CHROMIUM.exists():
        print(f"{png.relative_to(ROOT)} not refreshed: /usr/bin/chromium is not installed")
        return
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=1280,2000",
                        page.resolve().as_uri()], capture_output=True, timeout=180, check=True)
    print(f"{png.relative_to(ROOT)} refreshed")


BEGIN, END = "<!-- accuracy-tables:begin -->", "<!-- accuracy-tables:end -->"


def refresh_accuracy(text: str) -> str:
    """Replace the accuracy, range-coverage and constants tables between the README's markers with the code's
    (mpg_cli.validation, mpg_cli.coverage)."""
    if BEGIN not in text or END not in text:
        return text
    sys.path.insert(0, str(ROOT))
    from mpg_cli.validation import accuracy_tables, cross_validate, validate_all

    from mpg_cli.validation import constants_table

    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    text = head + BEGIN + "\n" + accuracy_tables(validate_all(), cross_validate(), cross_validate("document")) + END + tail
    rb, re_ = "<!-- range-coverage:begin -->", "<!-- range-coverage:end -->"
    if rb in text and re_ in text:
        from mpg_cli.coverage import coverage, coverage_table

        head, rest = text.split(rb, 1)
        _, tail = rest.split(re_, 1)
        text = head + rb + "\n" + coverage_table(coverage(cross_validate())) + re_ + tail
    eb, ee = "<!-- every-run:begin -->", "<!-- every-run:end -->"
    if eb in text and ee in text:  # every run, as 'mpg validate --format markdown' writes it (stdout only)
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "XDG_CONFIG_HOME": str(Path(tmp) / "cfg")}
            env.pop("MPG_PRESETS", None)
            proc = subprocess.run([sys.executable, "-m", "mpg_cli", "validate", "--format", "markdown"],
                                  capture_output=True, text=True, cwd=tmp, env=env, timeout=300)
        head, rest = text.split(eb, 1)
        _, tail = rest.split(ee, 1)
        text = head + eb + "\n" + proc.stdout.rstrip() + "\n" + ee + tail
    cb, ce = "<!-- constants-table:begin -->", "<!-- constants-table:end -->"
    if cb in text and ce in text:
        head, rest = text.split(cb, 1)
        _, tail = rest.split(ce, 1)
        text = head + cb + "\n" + constants_table() + ce + tail
    return text


def main() -> int:
    check = "--check" in sys.argv
    text = README.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(ROOT / "tests" / "fixtures" / "logs" / "megatron.log", Path(tmp) / "train.log")
        shutil.copytree(ROOT / "tests" / "fixtures", Path(tmp) / "tests" / "fixtures")  # examples name fixture paths
        new = refresh_accuracy(refresh(text, Path(tmp)))
    reports_stale = refresh_reports(check)
    if new == text and not reports_stale:
        print("README.md and docs/examples are up to date")
        return 0
    if check:
        print("README.md output or docs/examples is stale: run python scripts/update_readme.py")
        return 1
    if new != text:
        README.write_text(new, encoding="utf-8")
        print("README.md refreshed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
