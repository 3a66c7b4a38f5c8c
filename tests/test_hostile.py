"""Hostile and careless input for every command: the contract of issue 12.

Every run ends with exit 0, 1, 2 or 130 within 10 s, with no traceback, no raw control characters from
user data, and no file changed except the one the command was asked to write. A table of special cases
(odd YAML scalars, huge numbers, special files, paths, streams, signals, concurrency, same-as-input and
failed writes, CI gate holes) plus Hypothesis over hostile text. Fast by default (CI, well under a minute);
``HYPOTHESIS_PROFILE=thorough`` draws many more Hypothesis examples (tests/harness.py).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import examples, time_limit
import typer.main
import typer.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mpg_cli.cli import app

LIMIT_S = 10.0
REPO = Path(__file__).resolve().parents[1]
MEGATRON_LOG = REPO / "tests" / "fixtures" / "logs" / "megatron.log"
HYP = {"deadline": None, "max_examples": examples(25, 300),
       "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]}
# raw control characters that must never reach the terminal from user data (\t and \n are layout)
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
MODEL_YAML = ("layers: 4\nhidden_size: 256\nheads: 4\nvocab_size: 1000\nseq_length: 512\n")




_COMMAND = typer.main.get_command(app)


def snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``folder``: (mode, sha256) by relative path (FIFOs by mode only)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        st_ = p.lstat()
        if stat.S_ISREG(st_.st_mode):
            out[str(p.relative_to(folder))] = (st_.st_mode, hashlib.sha256(p.read_bytes()).hexdigest())
        else:
            out[str(p.relative_to(folder))] = (st_.st_mode, "")
    return out


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Run mpg in-process under the time limit and check the contract; returns the result."""
    monkeypatch.setattr(typer.testing, "_get_command", lambda _app: _COMMAND)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb", "MPG_PRESETS": None,
                            "XDG_CONFIG_HOME": str(tmp_path / ".config")})

    def run(*args: Any, writes: tuple[Path, ...] = (), codes: tuple[int, ...] = (0, 1, 2), input: Any = None,
            env: dict[str, str] | None = None) -> Any:
        argv = [str(a) for a in args]
        before = snapshot(tmp_path)
        with time_limit(LIMIT_S):
            res = runner.invoke(app, argv, input=input, env=env)
        check(res.exit_code, res.stdout, res.stderr, argv, codes, res)
        after = snapshot(tmp_path)
        allowed = {str(Path(w).relative_to(tmp_path)) for w in writes}
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)} - allowed
        assert not changed, f"files changed that the command was not asked to write: {changed}\n$ mpg {shlex.join(argv)}"
        return res

    return run


def check(code: int, out: str, err: str, argv: list[str], codes: tuple[int, ...], res: Any = None) -> None:
    ctx = f"\n$ mpg {shlex.join(argv)}\nexit {code}\nstdout: {out[-800:]}\nstderr: {err[-800:]}"
    if res is not None and res.exception is not None and not isinstance(res.exception, SystemExit):
        import traceback

        pytest.fail(f"unhandled {res.exception!r}{ctx}\n{''.join(traceback.format_exception(*res.exc_info))}")
    assert code in codes, ctx
    assert "Traceback" not in out + err, ctx
    assert not RAW_CONTROL.search(out + err), f"raw control character in the output{ctx}"
    if code == 2:
        assert err.startswith("ERROR: ") or "\nERROR: " in err, ctx
        assert "Usage:" not in err, ctx
    for line in err.splitlines():  # no forged lines: each stderr line is one of mpg's own kinds
        assert line.startswith(("ERROR: ", "TIP: ", "WARNING: ", "GATE FAILED: ", "NOTE: ", "Interrupted.")), ctx


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ================================================================ bad input: odd YAML scalars, huge numbers

ODD_SCALARS = ["2024-02-30", "!!int abc", "!!float abc", "!!timestamp x", "1" * 5000, "!!binary ---", "!!set x",
               "[" * 2000 + "]" * 2000, "1e999", "-.inf", ".nan", "0x" + "f" * 5000, "!!python/object:os.system x"]


@pytest.mark.parametrize("value", ODD_SCALARS, ids=lambda v: v[:16])
def test_odd_yaml_scalar_in_a_model_file_is_bad_input_naming_the_file(cli, tmp_path, value):
    """An odd YAML scalar in a model file exits 2 with the file named (never a ValueError/RecursionError)."""
    model = write(tmp_path / "m.yaml", MODEL_YAML.replace("layers: 4", f"layers: {value}"))
    res = cli("estimate", "-m", model, "-n", "8", codes=(2,))
    assert "m.yaml" in res.stderr


@pytest.mark.parametrize("where", ["cluster", "scenario", "calibration"])
@pytest.mark.parametrize("value", ["2024-02-30", "!!int abc", "1" * 5000], ids=["date", "int-tag", "huge"])
def test_odd_yaml_scalar_in_other_files_is_bad_input(cli, tmp_path, where, value):
    """Clusters, scenario files and calibration files go through the same loader: exit 2, file named."""
    if where == "cluster":
        f = write(tmp_path / "c.yaml", f"gpu: h100-sxm\ngpus_per_node: {value}\nnodes: 2\nintra_node_gb_s: 450\n"
                                        "inter_node_gb_s: 50\n")
        res = cli("estimate", "-m", "gpt-1.7b", "-c", f, codes=(2,))
    elif where == "scenario":
        f = write(tmp_path / "s.yaml", f"- {{label: a, model: gpt-1.7b, gpus: 8, tp: {value}}}\n")
        res = cli("compare", "--scenarios", f, codes=(2,))
    else:
        f = write(tmp_path / "cal.yaml", f"kind: mpg-calibration\nratio: {value}\n")
        res = cli("estimate", "-m", "gpt-1.7b", "-n", "8", "--calibration", f, codes=(2,))
    assert f.name in res.stderr


def test_huge_integers_in_json_inputs_are_bad_input(cli, tmp_path):
    """A 5,000-digit integer in an HF config.json or an --against file exits 2 (Python's int-string limit)."""
    hf = json.loads((REPO / "tests" / "fixtures" / "hf" / "llama3-8b.json").read_text())
    hf["hidden_size"] = int("9" * 4000)  # json.dumps writes it; json.loads refuses over 4,300 digits
    big = tmp_path / "config.json"
    big.write_text(json.dumps(hf).replace('"hidden_size": 9', '"hidden_size": 99999' + "9" * 1000))
    cli("estimate", "-m", big, "-n", "8", codes=(2,))
    against = write(tmp_path / "a.json", '{"schema_version": 1, "command": "compare", "rows": [{"x": '
                    + "1" * 5000 + "}]}")
    cli("compare", "-m", "gpt-1.7b", "-n", "8", "--against", against, codes=(2,))
    deep = write(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000)
    cli("compare", "-m", "gpt-1.7b", "-n", "8", "--against", deep, codes=(2,))


@pytest.mark.parametrize("entry,key", [("tp: 0", "tp"), ("ep: 0", "ep"), ("global_batch: 0", "global_batch"),
                                       ("optimizer: sgd", "optimizer"), ("virtual_stages: 0", "virtual_stages"),
                                       ("goodput: .nan", "goodput"), ("tokens: abc", "tokens"), ("gpus: abc", "gpus"),
                                       ("interval: 0.2", "interval"), ("failures_per_gpu_hour: 2", "failures_per_gpu_hour"),
                                       ("storage_tb_s: 0", "storage_tb_s"), ("restart_minutes: -1", "restart_minutes"),
                                       ("checkpoint_minutes: 0", "checkpoint_minutes"),
                                       ("maintenance_fraction: 0.95", "maintenance_fraction")])
def test_zero_and_absurd_scenario_values_name_the_file_and_key(cli, tmp_path, entry, key):
    """Scenario keys get the flags' validation; the message names the file, the scenario and the key."""
    gpus = "" if key == "gpus" else ", gpus: 8"
    f = write(tmp_path / "s.yaml", f"- {{label: a, model: gpt-1.7b, cluster: dgx-a100, gpus: 8}}\n"
                                   f"- {{label: b, model: gpt-1.7b, cluster: dgx-a100{gpus}, {entry}}}\n")
    res = cli("compare", "--scenarios", f, codes=(2,))
    assert f"s.yaml: scenarios[1]: {key}:" in res.stderr


def test_goodput_and_range_keys_in_a_scenario_file_are_read(cli, tmp_path):
    """A scenario may set the goodput model's and the range's keys (interval, restart_minutes, ...): they apply."""
    f = write(tmp_path / "s.yaml", "- {label: a, model: gpt-1.7b, cluster: dgx-a100, gpus: 8, interval: 0.9, "
                                   "restart_minutes: 30, maintenance_fraction: 0.1, async_checkpoint: true}\n")
    doc = json.loads(cli("compare", "--scenarios", f, "-f", "json").stdout)
    assert doc["rows"][0]["intervals"]["level"] == 0.9


def test_zero_layout_value_from_a_log_is_bad_input(cli, tmp_path):
    """tensor_model_parallel_size 0 in a Megatron log exits 2 naming the log (no ZeroDivisionError)."""
    text = MEGATRON_LOG.read_text().replace("tensor_model_parallel_size ...................... 8",
                                            "tensor_model_parallel_size ...................... 0")
    log = write(tmp_path / "t.log", text)
    res = cli("calibrate", log, "-m", "llama3-70b", "-c", "dgx-h100", codes=(2,))
    assert "t.log" in res.stderr


def test_usage_errors_use_the_one_error_format(cli):
    """Click's usage errors ('--tp abc', '--zero 4', unknown options) print ERROR:/TIP: and exit 2."""
    for args in (["estimate", "--tp", "abc"], ["estimate", "--zero", "4"], ["fit", "--frobnicate"],
                 ["compare", "--format", "xml"], ["nosuchcommand"]):
        res = cli(*args, codes=(2,))
        assert res.stderr.startswith("ERROR: ") and "TIP: " in res.stderr


FP8_A100 = ("-c", "dgx-a100", "--precision", "fp8")
# bad input for every command (fp8 on an A100 has no peak: the request is refused when it is built, issue 11)
BAD_INPUTS = {
    "estimate": [FP8_A100, ("--days", "3", *FP8_A100), ("-m", "no-such-model"), ("--tokens", "-5"), ("-f", "xml")],
    "fit": [FP8_A100, ("--min-gpus", *FP8_A100), ("-m", "no-such-model"), ("--top", "0")],
    "compare": [FP8_A100, ("--days", "3", *FP8_A100), ("--scenarios", "missing.yaml"), ("-c", "no-such-cluster")],
    "plan": [("--days", "30", "-n", "64", *FP8_A100), ("--budget-usd", "1e6", *FP8_A100), (), ("--days", "-1")],
    "calibrate": [("-m", "llama3-8b", "-n", "8", "--step-time", "1", *FP8_A100), ("missing.log", "-m", "llama3-8b"),
                  ("-m", "llama3-8b", "--step-time", "-1")],
    "report": [(*FP8_A100, "-o", "r.html"), ("--days", "3", *FP8_A100, "-o", "r.html"), ("--scenarios", "missing.yaml")],
    "validate": [("-f", "xml"), ("--max-median-error", "abc")],
    "presets list": [("no-such-kind",), ("-f", "xml")],
    "presets show": [("no-such-preset",), ("llama3-8b", "--kind", "no-such-kind")],
}


def _command_paths(cmd: Any = _COMMAND, prefix: str = "") -> set[str]:
    subs = getattr(cmd, "commands", None)
    if not subs:
        return {prefix.strip()}
    return set().union(*(_command_paths(c, f"{prefix} {name}") for name, c in subs.items()))


def test_bad_input_cases_cover_every_command():
    """The bad-input table below names every command the app has (a new command must add its cases)."""
    assert set(BAD_INPUTS) == _command_paths()


@pytest.mark.parametrize("command,args", [(c, a) for c, cases in BAD_INPUTS.items() for a in cases],
                         ids=lambda v: v if isinstance(v, str) else " ".join(v) or "(none)")
def test_bad_input_to_every_command_is_one_error_line_and_exit_2(cli, command, args):
    """Bad input to any command exits 2 with exactly one ERROR: line and no traceback; fp8 names --precision and GPU."""
    res = cli(*command.split(), *args, codes=(2,))
    assert sum(line.startswith("ERROR: ") for line in res.stderr.splitlines()) == 1, res.stderr
    if "fp8" in args:
        assert "--precision fp8" in res.stderr and "a100" in res.stderr, res.stderr


def test_empty_save_name_is_refused(cli):
    """calibrate --save '' exits 2 (it used to exit 0 and write nothing)."""
    cli("calibrate", "-m", "llama3-8b", "-c", "dgx-h100", "-n", "8", "--step-time", "5", "--save", "", codes=(2,))


# ================================================================ special files and paths

def test_fifo_as_preset_scenario_and_presets_show_does_not_hang(cli, tmp_path):
    """A FIFO without a writer as -m, --scenarios or 'presets show' exits 2 at once (no blocking open)."""
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    for args in (["estimate", "-m", fifo], ["compare", "--scenarios", fifo], ["presets", "show", fifo],
                 ["estimate", "-m", "gpt-1.7b", "--calibration", fifo]):
        res = cli(*args, codes=(2,))
        assert "FIFO" in res.stderr


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_character_devices_are_refused_quickly(cli, device):
    """/dev/zero, /dev/urandom and /dev/null as inputs exit 2 fast (no MemoryError, no 13 s read)."""
    if not os.path.exists(device):
        pytest.skip(f"{device} missing")
    t0 = time.monotonic()
    for args in (["estimate", "-m", device], ["estimate", "-m", "gpt-1.7b", "--calibration", device],
                 ["calibrate", device, "-m", "gpt-1.7b", "-n", "8"]):
        cli(*args, codes=(2,))
    assert time.monotonic() - t0 < 5


def test_stdin_on_a_silent_pipe_does_not_hang(tmp_path):
    """-m /dev/stdin with a pipe that never writes exits 2 at once (a pipe is not a regular file)."""
    proc = subprocess.Popen(mpg() + ["estimate", "-m", "/dev/stdin"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(tmp_path), cwd=tmp_path)
    try:
        out, err = proc.communicate(timeout=LIMIT_S)
    finally:
        proc.kill()
    check(proc.returncode, out, err, ["estimate", "-m", "/dev/stdin"], (2,))


def test_large_input_files_are_capped(cli, tmp_path):
    """A preset over the size cap exits 2 naming the size."""
    big = write(tmp_path / "big.yaml", MODEL_YAML + "# " + "x" * 2_000_000 + "\n")
    res = cli("estimate", "-m", big, codes=(2,))
    assert "too large" in res.stderr


def test_long_names_and_unknown_users_are_bad_input(cli):
    """A file name over 255 bytes and '~nosuchuser/x.yaml' exit 2 (no OSError/RuntimeError)."""
    long = "x" * 300 + ".yaml"
    for args in (["estimate", "-m", long], ["estimate", "-m", "~nosuchuser12345/x.yaml"],
                 ["estimate", "-m", "gpt-1.7b", "-n", "8", "-o", long],
                 ["estimate", "-m", "gpt-1.7b", "-n", "8", "-o", "~nosuchuser12345/out.txt"],
                 ["compare", "--scenarios", long], ["estimate", "--presets", long]):
        cli(*args, codes=(2,))


# ================================================================ never lose or clobber a file

def test_output_onto_an_input_is_refused(cli, tmp_path):
    """-o onto --model, --scenarios, --calibration, --against or the log exits 2 and leaves the input intact."""
    model = write(tmp_path / "m.yaml", MODEL_YAML)
    cli("estimate", "-m", model, "-n", "8", "-o", model, codes=(2,))
    link = tmp_path / "link.yaml"
    link.symlink_to(model)
    cli("estimate", "-m", model, "-n", "8", "-o", link, codes=(2,))  # the same inode through a symlink
    plan = write(tmp_path / "s.yaml", "- {label: a, model: gpt-1.7b, gpus: 8}\n")
    cli("compare", "--scenarios", plan, "-o", plan, codes=(2,))
    cal = write(tmp_path / "cal.yaml", "kind: mpg-calibration\nratio: 0.9\n")
    cli("estimate", "-m", "gpt-1.7b", "-n", "8", "--calibration", cal, "-o", cal, codes=(2,))
    base = tmp_path / "base.json"
    cli("compare", "-m", "gpt-1.7b", "-n", "8", "-f", "json", "-o", base, writes=(base,))
    cli("compare", "-m", "gpt-1.7b", "-n", "8", "--against", base, "-o", base, codes=(2,))
    log = tmp_path / "t.log"
    log.write_bytes(MEGATRON_LOG.read_bytes())
    cli("calibrate", log, "-m", "llama3-70b", "-c", "dgx-h100", "-o", log, codes=(2,))


def test_save_and_output_the_same_file_is_refused(cli, tmp_path):
    """calibrate --save X -o X exits 2 before any work, writing nothing."""
    x = tmp_path / "x.yaml"
    cli("calibrate", "-m", "llama3-8b", "-c", "dgx-h100", "-n", "8", "--step-time", "5", "--save", x, "-o", x,
        codes=(2,))
    assert not x.exists()


def test_output_writes_through_symlinks_and_special_files(cli, tmp_path):
    """-o through a symlink keeps the link (the target is written); -o onto a character device writes into it."""
    target = write(tmp_path / "real.txt", "old\n")
    link = tmp_path / "out.txt"
    link.symlink_to(target)
    cli("estimate", "-m", "gpt-1.7b", "-n", "8", "-f", "json", "-o", link, writes=(target,))
    assert link.is_symlink() and json.loads(target.read_text())["command"] == "estimate"
    devlink = tmp_path / "null-link"
    devlink.symlink_to("/dev/null")
    cli("estimate", "-m", "gpt-1.7b", "-n", "8", "-o", devlink)
    assert devlink.is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_output_keeps_the_mode_and_respects_the_umask(cli, tmp_path):
    """An existing file keeps its permission bits; a new one gets 0666 & ~umask (not mkstemp's 0600)."""
    old = write(tmp_path / "old.txt", "x")
    old.chmod(0o640)
    cli("estimate", "-m", "gpt-1.7b", "-n", "8", "-o", old, writes=(old,))
    assert stat.S_IMODE(old.stat().st_mode) == 0o640
    previous = os.umask(0o027)
    try:
        new = tmp_path / "new.txt"
        cli("estimate", "-m", "gpt-1.7b", "-n", "8", "-o", new, writes=(new,))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(new.stat().st_mode) == 0o640


def test_verbose_says_what_was_replaced(cli, tmp_path):
    """--verbose notes on stderr that -o replaced an existing file."""
    old = write(tmp_path / "r.txt", "x")
    res = cli("estimate", "-m", "gpt-1.7b", "-n", "8", "-o", old, "--verbose", writes=(old,))
    assert "NOTE: replaced" in res.stderr and "r.txt" in res.stderr


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    """A write that fails (file size limit, as on a full disk) exits 2 and leaves no .out.json.* behind."""
    def limit() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))

    out = tmp_path / "out.json"
    proc = subprocess.run(mpg() + ["estimate", "-m", "gpt-1.7b", "-n", "8", "-f", "json", "-o", str(out)],
                          capture_output=True, text=True, env=env(tmp_path), cwd=tmp_path, timeout=LIMIT_S,
                          preexec_fn=limit)
    check(proc.returncode, proc.stdout, proc.stderr, ["estimate", "-o", str(out)], (2,))
    assert "cannot write" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".config") == []


def _exclusive_writer(args: tuple[str, int, Any]) -> str:
    path, i, barrier = args
    from mpg_cli import safeio
    from mpg_cli.errors import InputError

    barrier.wait()
    try:
        safeio.write_output(path, f"writer {i}\n", "--save", exclusive=True)
        return f"won {i}"
    except InputError:
        return "refused"


def test_twenty_concurrent_exclusive_saves_have_exactly_one_winner(tmp_path):
    """20 concurrent exclusive writes of one name (calibrate --save without --force): one wins, 19 refuse."""
    target = str(tmp_path / "f.yaml")
    ctx = multiprocessing.get_context("fork")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(20)
        with ctx.Pool(20) as pool:
            outcomes = pool.map(_exclusive_writer, [(target, i, barrier) for i in range(20)])
    winners = [o for o in outcomes if o.startswith("won")]
    assert len(winners) == 1 and outcomes.count("refused") == 19
    assert Path(target).read_text() == f"writer {winners[0].split()[1]}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f.yaml"]  # no temporary files left


def test_concurrent_calibrate_saves_through_the_cli(tmp_path):
    """Four concurrent 'mpg calibrate --save f.yaml': exactly one exits 0, the others exit 2 'file exists'."""
    args = ["calibrate", "-m", "gpt-1.7b", "-c", "dgx-a100", "-n", "8", "--step-time", "20", "--save", "f.yaml", "-q"]
    procs = [subprocess.Popen(mpg() + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env(tmp_path), cwd=tmp_path) for _ in range(4)]
    results = [(p.wait(timeout=30), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert sorted(code for code, _ in results) == [0, 2, 2, 2], results
    assert all("file exists" in err for code, err in results if code == 2)


# ================================================================ streams, environment, signals

def mpg() -> list[str]:
    beside = Path(sys.executable).parent / "mpg"
    return [str(beside)] if beside.is_file() else [sys.executable, "-m", "mpg_cli"]


def env(tmp: Path, **extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("MPG_PRESETS", "COLUMNS")}
    e.update(XDG_CONFIG_HOME=str(tmp / ".config"), NO_COLOR="1", **extra)
    return e


def shell(cmd: str, tmp: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env(tmp, **extra), cwd=tmp,
                          timeout=LIMIT_S)


def test_broken_and_closed_pipes_exit_quietly_with_141(tmp_path):
    """A reader that is gone ('validate | true', 'estimate | true') and a closed stdout exit 141 (128+SIGPIPE),
    never 1, silently. ('| head -c 10' is the same case whenever head exits before mpg's last write.)"""
    m = shlex.join(mpg())
    for cmd in (f"{m} validate | true; exit ${{PIPESTATUS[0]}}",
                f"{m} estimate -m gpt-1.7b -n 8 | true; exit ${{PIPESTATUS[0]}}",
                f"{m} estimate -m gpt-1.7b -n 8 -f json | true; exit ${{PIPESTATUS[0]}}",
                f"{m} presets list | true; exit ${{PIPESTATUS[0]}}",
                f"{m} --version >&-", f"{m} estimate -m gpt-1.7b -n 8 -q >&-"):
        proc = shell(cmd, tmp_path)
        assert proc.returncode == 141, (cmd, proc.returncode, proc.stderr)
        assert proc.stderr == "", (cmd, proc.stderr)


def test_full_disk_on_stdout_is_one_error_line(tmp_path):
    """stdout on /dev/full exits 2 with one ERROR line (no OSError traceback)."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    proc = shell(f"{shlex.join(mpg())} estimate -m gpt-1.7b -n 8 -q > /dev/full", tmp_path)
    check(proc.returncode, "", proc.stderr, ["estimate", "> /dev/full"], (2,))


def test_closed_stderr_keeps_the_exit_code(tmp_path):
    """With stderr closed, bad input still exits 2 (nothing to print to, no crash)."""
    proc = shell(f"{shlex.join(mpg())} estimate -m nosuchmodel 2>&-", tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stdout


@pytest.mark.parametrize("extra", [{"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0",
                                                                     "PYTHONIOENCODING": "latin-1"}])
def test_ascii_and_c_locale_degrade_to_ascii(tmp_path, extra):
    """An output encoding that cannot show ×, — or µ degrades to ASCII instead of UnicodeEncodeError."""
    for args in (["estimate", "-m", "gpt-1.7b", "-n", "8", "--explain"], ["compare", "-m", "gpt-1.7b", "-n", "8"],
                 ["estimate", "-m", "nosuch×model"], ["fit", "-m", "gpt-1.7b", "-n", "8", "-f", "markdown"]):
        proc = subprocess.run(mpg() + args, capture_output=True, env=env(tmp_path, **extra), cwd=tmp_path,
                              timeout=LIMIT_S)
        out, err = proc.stdout.decode("ascii", "replace"), proc.stderr.decode("ascii", "replace")
        check(proc.returncode, out, err, args, (0, 1, 2))
        assert "UnicodeEncodeError" not in err


def wait_for_cpu(pid: int, cpu_s: float, limit_s: float) -> None:
    """Wait until process ``pid`` has used ``cpu_s`` seconds of CPU (utime + stime in /proc/PID/stat, proc(5)), or
    ``limit_s`` of wall time; without /proc, sleep one second. CPU time does not stretch on a loaded machine."""
    stat_file = Path(f"/proc/{pid}/stat")
    if not stat_file.exists():
        time.sleep(1.0)
        return
    tick = os.sysconf("SC_CLK_TCK")
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process is gone
            return
        if (int(fields[11]) + int(fields[12])) / tick >= cpu_s:  # fields 14 and 15: utime, stime (in ticks)
            return
        time.sleep(0.02)


def test_ctrl_c_exits_130_with_one_line(tmp_path):
    """SIGINT during a long calibrate (a 60 MB log) exits 130 printing just 'Interrupted.'."""
    line = MEGATRON_LOG.read_text().splitlines()
    it = next(x for x in line if " iteration " in x)
    head = "\n".join(x for x in line if " iteration " not in x) + "\n"
    big = tmp_path / "big.log"
    with big.open("w") as fh:
        fh.write(head)
        fh.write((it + "\n") * (60_000_000 // len(it)))
    proc = subprocess.Popen(mpg() + ["calibrate", str(big), "-m", "llama3-70b", "-c", "dgx-h100"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(tmp_path), cwd=tmp_path)
    wait_for_cpu(proc.pid, 0.6, limit_s=5.0)  # past start-up (~0.2 s CPU), well before the end (~7 s CPU)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=LIMIT_S)
    if proc.returncode == 0:
        pytest.skip("the calibration finished before the signal")
    assert proc.returncode == 130, err
    assert err == "Interrupted.\n", err


# ================================================================ no injection

NASTY = ["\x1b[2J\x1b]0;pwned\x07", "a\nERROR: forged", "nul\x00byte", "=HYPERLINK(\"http://x\")", "+1+cmd|' /C calc'!A0",
         "\u202eevil", "tab\there", "\x9bc1"]


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv", "json"])
def test_control_characters_in_names_never_reach_the_terminal(cli, tmp_path, fmt):
    """ESC, NUL, newlines and C1 codes in a model name and a label are escaped in every output format."""
    name = "".join(NASTY[:3] + NASTY[7:])
    model = write(tmp_path / "m.yaml", f"name: {json.dumps(name)}\n" + MODEL_YAML)
    plan = write(tmp_path / "s.yaml", f"- {{label: {json.dumps(name)}, model: {model}, gpus: 8}}\n")
    for args in (["estimate", "-m", model, "-n", "8"], ["compare", "--scenarios", plan], ["fit", "-m", model, "-n", "8"],
                 ["presets", "show", model]):
        res = cli(*args, "-f", fmt)
        if fmt == "json" and res.exit_code == 0:
            json.loads(res.stdout)


def test_csv_cells_a_spreadsheet_would_evaluate_are_guarded(cli, tmp_path):
    """A label starting with = + - @ is written to CSV with a leading quote; negative numbers stay numbers."""
    plan = write(tmp_path / "s.yaml", '- {label: "=HYPERLINK(\\"http://x\\")", model: gpt-1.7b, gpus: 8}\n'
                                      '- {label: "@SUM(A1)", model: gpt-1.7b, gpus: 16}\n')
    res = cli("compare", "--scenarios", plan, "-f", "csv")
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert rows[0]["label"] == "'=HYPERLINK(\"http://x\")" and rows[1]["label"] == "'@SUM(A1)"
    assert not any(v.startswith(("=", "@", "+")) for r in rows for v in r.values())


def test_a_newline_in_a_path_cannot_forge_an_error_line(cli):
    """A missing file whose name holds '\\nGATE FAILED:' prints one ERROR line with the newline escaped."""
    res = cli("estimate", "-m", "x.yaml\nGATE FAILED: everything", codes=(2,))
    assert res.stderr.count("\n") <= 2 and "\\n" in res.stderr


@settings(**HYP)
@given(name=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30),
       fmt=st.sampled_from(["table", "markdown", "csv", "json"]),
       command=st.sampled_from(["estimate", "fit", "compare", "presets-show"]))
def test_hypothesis_hostile_names_in_every_command(cli, tmp_path, name, fmt, command):
    """Any text as a model name or scenario label: contract kept (exit 0/1/2, no traceback, no raw control codes)."""
    model = write(tmp_path / "hm.yaml", f"name: {json.dumps(name)}\n" + MODEL_YAML)
    if command == "compare":
        plan = write(tmp_path / "hs.yaml", f"- {{label: {json.dumps(name)}, model: {model}, gpus: 8}}\n")
        cli("compare", "--scenarios", plan, "-f", fmt)
    elif command == "presets-show":
        cli("presets", "show", model, "-f", fmt)
    else:
        cli(command, "-m", model, "-n", "8", "-f", fmt)


YAML_VALUES = st.one_of(st.sampled_from(ODD_SCALARS[:8] + ["0", "-1", "1e309", "null", "~", "[]", "{}", "''", "yes"]),
                        st.integers(-10**30, 10**30).map(str), st.floats().map(repr),
                        st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"),
                                max_size=20).map(json.dumps))


@settings(**HYP)
@given(key=st.sampled_from(["layers", "hidden_size", "heads", "kv_heads", "vocab_size", "seq_length", "ffn_type",
                            "name"]),
       value=YAML_VALUES)
def test_hypothesis_odd_values_in_a_model_file(cli, tmp_path, key, value):
    """Any YAML value for any model key: exit 0/1/2 within the limit, no traceback."""
    lines = [ln for ln in MODEL_YAML.splitlines() if not ln.startswith(key + ":")]
    write(tmp_path / "vm.yaml", "\n".join(lines + [f"{key}: {value}"]) + "\n")
    cli("estimate", "-m", tmp_path / "vm.yaml", "-n", "8", "-f", "json")


@settings(**HYP)
@given(key=st.sampled_from(["tp", "pp", "dp", "ep", "cp", "micro_batch", "virtual_stages", "zero", "global_batch",
                            "seq_length", "goodput", "price", "tflops", "mfu", "reserved_gib", "headroom", "tokens",
                            "gpus", "precision", "recompute", "optimizer", "label", "flash_attention"]),
       value=YAML_VALUES)
def test_hypothesis_odd_values_in_a_scenario_file(cli, tmp_path, key, value):
    """Any YAML value for any scenario key: exit 0/1/2, no traceback; bad input names the key."""
    plan = write(tmp_path / "vs.yaml", f"- {{label: a, model: gpt-1.7b, cluster: dgx-a100, gpus: 8}}\n"
                                       f"- label: b\n  model: gpt-1.7b\n  gpus: 8\n  {key}: {value}\n")
    cli("compare", "--scenarios", plan)


# ================================================================ bounded work

def test_huge_gpus_per_node_is_refused_and_large_nodes_stay_fast(cli, tmp_path):
    """gpus_per_node 100,000 exits 2 (over the stated cap); 1,024 per node keeps --days and --min-gpus fast."""
    (tmp_path / "c").mkdir()
    huge = write(tmp_path / "c" / "huge.yaml", "gpu: h100-sxm\ngpus_per_node: 100000\nnodes: 2\n"
                                              "intra_node_gb_s: 450\ninter_node_gb_s: 50\n")
    res = cli("estimate", "-m", "gpt-1.7b", "-c", huge, "--days", "30", codes=(2,))
    assert "gpus_per_node" in res.stderr
    big = write(tmp_path / "c" / "big.yaml", "gpu: h100-sxm\ngpus_per_node: 1024\nnodes: 100\n"
                                            "intra_node_gb_s: 450\ninter_node_gb_s: 50\n")
    t0 = time.monotonic()
    cli("estimate", "-m", "llama3-70b", "-c", big, "--days", "30")
    cli("fit", "-m", "llama3-405b", "-c", big, "--min-gpus")
    cli("fit", "-m", "llama3-405b", "-c", big, "-n", "1", "--zero", "0")
    assert time.monotonic() - t0 < LIMIT_S


def test_ten_thousand_scenarios_are_refused_with_a_clear_message(cli, tmp_path):
    """compare with 10,000 scenarios exits 2 at once naming the cap (it took 161 s)."""
    plan = write(tmp_path / "many.yaml", "".join(f"- {{label: s{i}, model: gpt-1.7b, gpus: 8}}\n" for i in range(10_000)))
    res = cli("compare", "--scenarios", plan, codes=(2,))
    assert "at most 256" in res.stderr


def test_a_long_log_line_is_linear_time(cli, tmp_path):
    """A 340 KB line in a log is cut at the line cap: detection stays fast (it took 77 s)."""
    text = MEGATRON_LOG.read_text()
    log = write(tmp_path / "long.log", "iteration " + "9" * 340_000 + " | " * 1000 + "\n" + text)
    t0 = time.monotonic()
    cli("calibrate", log, "-m", "llama3-70b", "-c", "dgx-h100")
    assert time.monotonic() - t0 < 5


# ================================================================ answers that mislead

@pytest.mark.parametrize("args", [
    ["compare", "-m", "llama3-8b", "-m", "llama3-70b", "-c", "dgx-a100", "-c", "dgx-h100", "--tokens", "15T"],
    ["fit", "-m", "llama3-70b", "-c", "dgx-h100", "-n", "64"], ["estimate", "-m", "gpt-1.7b", "-n", "8,16,32"]],
    ids=lambda a: a[0])
def test_tables_never_truncate_numbers_at_80_or_120_columns(cli, args):
    """compare and fit tables at 80 and 120 columns show every number whole (no '…'), piped without padding."""
    # In-process: the width comes from $COLUMNS and CliRunner's stdout is not a terminal, as in a pipe (render.py
    # _output_width, print_tables); a real pipe without $COLUMNS is test_piped_tables_are_not_padded.
    for cols in ("80", "120"):
        res = cli(*args, env={"COLUMNS": cols}, codes=(0,))
        assert "…" not in res.stdout, (cols, args, res.stdout)
        if args[0] != "fit":  # the 'fits' column (last, never dropped) is on every row: no column was lost
            assert res.stdout.count("yes") >= (4 if args[0] == "compare" else 3), (cols, args, res.stdout)
        assert all(len(line) <= int(cols) for line in res.stdout.splitlines()), (cols, args)
        assert not any(line.endswith(" ") for line in res.stdout.splitlines())


def test_piped_tables_are_not_padded(tmp_path):
    """Piped (no COLUMNS) a table has no trailing spaces and is only as wide as its content."""
    proc = subprocess.run(mpg() + ["estimate", "-m", "gpt-1.7b", "-n", "8"], capture_output=True, text=True,
                          env=env(tmp_path), cwd=tmp_path, timeout=LIMIT_S)
    lines = proc.stdout.splitlines()
    assert lines and not any(line.endswith(" ") for line in lines)


def test_gate_holes_are_closed(cli, tmp_path):
    """Ambiguous --fail-on-increase 10, nan --max-median-error, zero baselines, foreign --against: exit 2."""
    base = tmp_path / "b.json"
    cli("compare", "-m", "gpt-1.7b", "-n", "8", "-f", "json", "-o", base, writes=(base,))
    run = ["compare", "-m", "gpt-1.7b", "-n", "8", "--against", base]
    res = cli(*run, "--fail-on-increase", "10", codes=(2,))
    assert "10%" in res.stderr
    cli(*run, "--fail-on-increase", "0.10")
    cli(*run, "--fail-on-increase", "10%")
    cli("validate", "--max-median-error", "nan", codes=(2,))
    doc = json.loads(base.read_text())
    doc["rows"][0]["gpu_hours"] = 0
    zero = write(tmp_path / "zero.json", json.dumps(doc))
    cli("compare", "-m", "gpt-1.7b", "-n", "8", "--against", zero, "--fail-on-increase", "10%", codes=(2,))
    doc["rows"][0]["gpu_hours"] = -5
    write(zero, json.dumps(doc))
    cli("compare", "-m", "gpt-1.7b", "-n", "8", "--against", zero, "--fail-on-increase", "10%", codes=(2,))
    fit = tmp_path / "fit.json"
    cli("fit", "-m", "gpt-1.7b", "-n", "8", "-f", "json", "-o", fit, writes=(fit,))
    cli("compare", "-m", "gpt-1.7b", "-n", "8", "--against", fit, "--fail-on-increase", "10%", codes=(2,))
    doc = json.loads(base.read_text())
    doc["schema_version"] = 99
    other = write(tmp_path / "v99.json", json.dumps(doc))
    cli("compare", "-m", "gpt-1.7b", "-n", "8", "--against", other, "--fail-on-increase", "10%", codes=(2,))


def test_new_and_missing_scenarios_fail_the_gate_unless_allowed(cli, tmp_path):
    """A scenario new since --against, or one gone from it, exits 1 naming it; --allow-new/--allow-missing pass."""
    base = tmp_path / "b.json"
    cli("compare", "-m", "gpt-1.7b", "-n", "8", "-n", "16", "-f", "json", "-o", base, writes=(base,))
    new = cli("compare", "-m", "gpt-1.7b", "-n", "8", "-n", "32", "--against", base, "--fail-on-increase", "10%",
              codes=(1,))
    assert "gpt-1.7b @ dgx-a100 × 32] is new" in new.stderr and "× 16] is missing" in new.stderr
    cli("compare", "-m", "gpt-1.7b", "-n", "8", "-n", "32", "--against", base, "--fail-on-increase", "10%",
        "--allow-new", "--allow-missing")
    est = tmp_path / "e.json"
    cli("estimate", "-m", "gpt-1.7b", "-n", "8", "-f", "json", "-o", est, writes=(est,))
    cli("compare", "-m", "gpt-1.7b", "-n", "8", "-n", "16", "--against", est, "--fail-on-increase", "10%", codes=(1,))


def test_calibration_that_pushes_mfu_above_one_is_refused(cli, tmp_path):
    """A calibration ratio that gives MFU > 100% exits 2; calibrate never saves a ratio --calibration refuses."""
    cal = write(tmp_path / "cal.yaml", "kind: mpg-calibration\nratio: 19\n")
    res = cli("estimate", "-m", "llama3-8b", "-c", "dgx-h100", "-n", "64", "--calibration", cal, codes=(2,))
    assert "MFU" in res.stderr
    cli("calibrate", "-m", "llama3-8b", "-c", "dgx-h100", "-n", "8", "--step-time", "5000", "--save", "d.yaml",
        codes=(2,))
    assert not (tmp_path / "d.yaml").exists()


def test_calibrating_a_70b_log_as_an_8b_warns(cli, tmp_path):
    """The log's own model shape contradicting --model, and a ratio far from 1, are warned about."""
    log = tmp_path / "t.log"
    log.write_bytes(MEGATRON_LOG.read_bytes())
    res = cli("calibrate", log, "-m", "llama3-8b", "-c", "dgx-h100")
    assert "hidden size is 8,192" in res.stderr and "far from 1" in res.stderr


def test_help_promises_what_the_code_does(cli):
    """fit/calibrate take one --gpus count; a list is refused; '--gpus abc' hints a GPU count; --scenarios
    with -m is refused; the fit help example exits 0."""
    assert "scaling table" not in cli("fit", "--help").stdout
    cli("calibrate", "-m", "llama3-8b", "-c", "dgx-h100", "-n", "8,16", "--step-time", "5", codes=(2,))
    res = cli("estimate", "--gpus", "abc", codes=(2,))
    assert "GPU count" in res.stderr and "300B" not in res.stderr
    cli("compare", "--scenarios", "x.yaml", "-m", "gpt-1.7b", codes=(2,))
    cli("fit", "-m", "llama2-7b", "--gpu", "a100-80gb", "-n", "2", codes=(0,))
    res = cli("estimate", "-m", "gpt3-175b", "-c", "dgx-a100", "--days", "1", "-q", codes=(0, 2))
    assert "1 days" not in res.stdout + res.stderr


def test_plan_on_a_budget_stays_within_it(cli):
    """plan --budget-gpu-hours gives the largest model whose run fits the budget; a bigger budget, no smaller model."""
    small = json.loads(cli("plan", "--budget-gpu-hours", "20000", "-c", "dgx-h100", "-n", "256", "-f", "json").stdout)
    big = json.loads(cli("plan", "--budget-gpu-hours", "400000", "-c", "dgx-h100", "-n", "256", "-f", "json").stdout)
    assert small["gpu_hours"] <= 20000 and big["gpu_hours"] <= 400000
    assert big["params"]["total"] > small["params"]["total"]
    usd = json.loads(cli("plan", "--budget-usd", "100000", "--price", "2", "-c", "dgx-h100", "-n", "256",
                         "-f", "json").stdout)
    assert usd["cost_usd"] <= 100000
    cli("plan", "--budget-usd", "1e5", "--budget-gpu-hours", "1e4", codes=(2,))


def test_compare_days_solves_each_scenario_for_gpus(cli):
    """compare --days D gives each scenario the fewest GPUs that finish within D days; with -n it is refused."""
    doc = json.loads(cli("compare", "-m", "gpt-1.7b", "-m", "llama2-7b", "-c", "dgx-a100", "--tokens", "300B",
                         "--days", "10", "-f", "json").stdout)
    assert all(r["time"]["days"] <= 10 for r in doc["rows"])
    gpus = [r["inputs"]["gpus"] for r in doc["rows"]]
    assert gpus[1] > gpus[0]
    cli("compare", "-m", "gpt-1.7b", "-n", "8", "--days", "10", codes=(2,))


def test_output_to_dev_stdout_writes_through_the_pipe(tmp_path):
    """-o /dev/stdout (a symlink to a pipe here) writes the JSON into the pipe instead of replacing anything."""
    proc = shell(f"{shlex.join(mpg())} estimate -m gpt-1.7b -n 8 -q -f json -o /dev/stdout | cat", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["command"] == "estimate"


def test_output_into_a_fifo_with_a_reader_writes_through(cli, tmp_path):
    """-o onto a FIFO that has a reader writes into it (the FIFO stays a FIFO); without a reader exits 2 at once."""
    # in-process: -o opens the path itself (safeio), so no real stdout is involved; the reader is a real process
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    res = cli("estimate", "-m", "gpt-1.7b", "-n", "8", "-q", "-f", "json", "-o", fifo, codes=(2,))
    assert "no reader" in res.stderr
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    try:
        comm, deadline = Path(f"/proc/{reader.pid}/comm"), time.monotonic() + 5.0
        while comm.exists() and comm.read_text().strip() != "cat" and time.monotonic() < deadline:
            time.sleep(0.01)  # until the fork has exec'd cat (proc(5)); then cat's open() follows within ms
        time.sleep(0.2)  # cat is waiting in open() for a writer: -o's non-blocking open finds a reader
        cli("estimate", "-m", "gpt-1.7b", "-n", "8", "-q", "-f", "json", "-o", fifo, codes=(0,))
        out, _ = reader.communicate(timeout=LIMIT_S)
    finally:
        reader.kill()
    assert json.loads(out)["command"] == "estimate" and stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_nemo_logs_layout_is_read_and_checked_against_the_flags(cli, tmp_path):
    """A NeMo log's tensor_model_parallel_size is used (no longer ignored): a contradicting --tp exits 2."""
    log = tmp_path / "nemo.log"
    log.write_bytes((REPO / "tests" / "fixtures" / "logs" / "nemo.log").read_bytes())
    res = cli("calibrate", log, "-m", "llama2-7b", "-c", "dgx-h100", "--tp", "8", codes=(2,))
    assert "--tp 4" in res.stderr
    ok = cli("calibrate", log, "-m", "llama2-7b", "-c", "dgx-h100", "-f", "json")
    assert json.loads(ok.stdout)["inputs"]["tp"] == 4


def test_calibrate_reads_a_log_from_stdin_when_asked(cli):
    """'mpg calibrate -' reads the log from standard input (the one place stdin is meant)."""
    res = cli("calibrate", "-", "-m", "llama3-70b", "-c", "dgx-h100", "-f", "json", input=MEGATRON_LOG.read_text())
    assert json.loads(res.stdout)["log"]["format"] == "megatron"


def test_scaling_table_is_strong_by_default_and_weak_on_request(cli):
    """A --gpus list keeps one global batch (strong scaling, shown per row); --weak-scaling grows it with the GPUs."""
    strong = json.loads(cli("estimate", "-m", "gpt-1.7b", "-n", "8,64", "-f", "json").stdout)
    assert strong["scaling"] == "strong" and len({r["global_batch"] for r in strong["rows"]}) == 1
    weak = json.loads(cli("estimate", "-m", "gpt-1.7b", "-n", "8,64", "--weak-scaling", "-f", "json").stdout)
    b = [r["global_batch"] for r in weak["rows"]]
    assert weak["scaling"] == "weak" and b[1] == 8 * b[0]
    assert any("weak scaling: global batch" in a for a in weak["estimates"][1]["assumptions"])
    table = cli("estimate", "-m", "gpt-1.7b", "-n", "8,64").stdout
    assert "strong scaling, batch" in table and "batch (seqs)" in table
    cli("estimate", "-m", "gpt-1.7b", "-n", "8", "--weak-scaling", codes=(2,))
