"""Start-up time of mpg against a one-command Typer app run with the same interpreter (issue 11).

Usage: python scripts/bench_startup.py [--runs 10]

Each command runs ``--runs`` times in a fresh process (after one untimed warm-up run that fills the OS file
cache), the commands taking turns round by round so that load from other jobs falls on all of them alike; the
median wall time is reported, with its ratio to the baseline: a Typer app with one command and one option,
which is the floor any Typer CLI pays on this interpreter and these package versions.

The commands (stdout discarded, exit status checked):

* ``mpg --help``
* ``mpg estimate`` (the built-in default; the parallel layout is searched)
* ``mpg estimate --format json`` with every layout dimension fixed (no search)
* ``mpg estimate`` writing to a colour terminal (a pseudo-terminal), true colour (``COLORTERM=truecolor``: mpg
  writes the same bytes Rich would, ``mpg_cli/output/plain_tables.py``) and 256 colours (Rich draws the tables);
  piped output and files get the same text from mpg's own layout

The issue's targets: ``mpg estimate`` within 1.3x of the baseline, the fixed-layout JSON run within 1.15x,
``mpg --help`` below the latter. A benchmark, not a test: figures depend on the machine and its load.

Bytecode: the baseline and Typer, pydantic and Rich run from the ``.pyc`` files pip wrote when it installed them;
mpg's own modules do too after ``pip install .``, and an editable install writes them on its first run, unless
``PYTHONDONTWRITEBYTECODE`` is set: then every run compiles mpg's sources again (~100 ms on the 2-core development
machine). The report says which case was measured; ``--compile`` writes mpg's ``.pyc`` files first
(``compileall``, as pip does), so the comparison is the one a user sees.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASELINE_APP = '''import typer

app = typer.Typer()


@app.command()
def main(name: str = "world") -> None:
    """Say hello."""
    print(f"hello {name}")


if __name__ == "__main__":
    app()
'''

FIXED_LAYOUT = ["--tp", "8", "--pp", "4", "--dp", "32", "--micro-batch", "3", "--virtual-stages", "8", "--zero", "1",
                "--recompute", "none"]


def mpg_command() -> list[str]:
    """The console script beside this interpreter (what a user runs), else ``python -m mpg_cli``."""
    script = Path(sys.executable).with_name("mpg")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mpg_cli"]


def bytecode_state() -> str:
    """Whether mpg's modules run from up-to-date ``.pyc`` files, or are compiled from source each run."""
    import importlib.util

    spec = importlib.util.find_spec("mpg_cli")
    if spec is None or spec.origin is None:
        return "mpg_cli not found"
    sources = list(Path(spec.origin).parent.rglob("*.py"))
    fresh = 0
    for src in sources:
        pyc = Path(importlib.util.cache_from_source(str(src)))
        fresh += pyc.exists() and pyc.stat().st_mtime >= src.stat().st_mtime
    note = ", PYTHONDONTWRITEBYTECODE set" if os.environ.get("PYTHONDONTWRITEBYTECODE") else ""
    return f"{fresh} of {len(sources)} mpg modules have up-to-date bytecode{note}"


def compile_mpg() -> None:
    """Write mpg's ``.pyc`` files (what ``pip install .`` does at install time)."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("mpg_cli")
    if spec is not None and spec.origin is not None:
        compileall.compile_dir(str(Path(spec.origin).parent), quiet=1)


TTY = "tty:"  # a command whose stdout is a true-colour terminal (a pseudo-terminal read by this script)
TTY256 = "tty256:"  # the same on a 256-colour terminal (no COLORTERM: Rich draws the tables there)


def run_once(argv: list[str]) -> float:
    """Wall time of one fresh process (its exit status checked)."""
    if argv[0] in (TTY, TTY256):
        return run_on_terminal(argv[1:], true_colour=argv[0] == TTY)
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    t0 = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed


def run_on_terminal(argv: list[str], true_colour: bool) -> float:
    """Wall time of one fresh process writing to a 120-column colour terminal (true colour: COLORTERM=truecolor)."""
    import pty

    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLORTERM", "FORCE_COLOR")}
    env.update({"COLUMNS": "120", "TERM": "xterm-256color", **({"COLORTERM": "truecolor"} if true_colour else {})})
    master, slave = pty.openpty()
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=slave, stderr=subprocess.DEVNULL, env=env)
    os.close(slave)
    try:
        while os.read(master, 65536):
            pass
    except OSError:  # EIO: the terminal's other side is closed
        pass
    code = proc.wait()
    elapsed = time.perf_counter() - t0
    os.close(master)
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} exited {code} on a terminal")
    return elapsed


def medians(commands: list[list[str]], runs: int) -> list[float]:
    """Median wall time of each command over ``runs`` rounds; each round runs every command once, in turn,
    so that a change in the machine's load during the benchmark falls on all of them alike."""
    for argv in commands:  # untimed warm-up: the OS file cache
        run_once(argv)
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for i, argv in enumerate(commands):
            times[i].append(run_once(argv))
    return [statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command (default 10)")
    parser.add_argument("--compile", action="store_true",
                        help="write mpg's .pyc files first (as pip install does); see the module docstring")
    args = parser.parse_args()
    if args.compile:
        compile_mpg()
    mpg = mpg_command()
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "one_command_app.py"
        app.write_text(BASELINE_APP, encoding="utf-8")
        rows = [("one-command Typer app (baseline)", [sys.executable, str(app)]),
                ("mpg --help", [*mpg, "--help"]),
                ("mpg estimate (layout searched)", [*mpg, "estimate"]),
                ("mpg estimate --format json (fixed layout)", [*mpg, "estimate", *FIXED_LAYOUT, "--format", "json"]),
                ("mpg estimate, to a true-colour terminal", [TTY, *mpg, "estimate"]),
                ("mpg estimate, to a 256-colour terminal", [TTY256, *mpg, "estimate"])]
        results = list(zip([label for label, _ in rows], medians([argv for _, argv in rows], args.runs)))
    base = results[0][1]
    print(f"Python {sys.version.split()[0]}, median of {args.runs} runs; {bytecode_state()}")
    print(f"{'command':<44} {'median':>9} {'vs baseline':>12}")
    for label, t in results:
        print(f"{label:<44} {t * 1000:7.0f} ms {t / base:11.2f}x")


if __name__ == "__main__":
    main()
