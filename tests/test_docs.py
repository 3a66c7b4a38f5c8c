"""The documentation can't drift: help texts exist, the README's examples run, its numbers match the code.

(a) every command, subcommand, option and argument has help text;
(b) every ``$ mpg ...`` line of a ```console block in README.md runs (in README order, in a folder with the
    files the examples need) and exits as the README shows; the numbers the README prints still come out;
(c) the README's validation summary (and per-source rows) agree with ``mpg_cli.validation``;
(d) the README's inline claims (CI recipe, --days solve, gate line, eq. 4 figure) hold.
"""

from __future__ import annotations

import collections
import json
import re
import shlex
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main
import typer.testing
import yaml
from typer.testing import CliRunner

from mpg_cli.cli import app
from mpg_cli.validation import summary, validate_all

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
MEGATRON_LOG = REPO / "tests" / "fixtures" / "logs" / "megatron.log"
TYPER_OWN_OPTIONS = {"--install-completion", "--show-completion", "--help", "-h"}
_CLICK_COMMAND = typer.main.get_command(app)


# ================================================================ (a) help texts

def _walk(cmd: Any, path: tuple[str, ...] = ("mpg",)) -> Iterator[tuple[str, Any]]:
    """(path, command) for the root, every command, every group and every subcommand."""
    yield " ".join(path), cmd
    for name, sub in sorted((getattr(cmd, "commands", None) or {}).items()):
        yield from _walk(sub, path + (name,))


COMMANDS = dict(_walk(_CLICK_COMMAND))


def test_the_command_tree_has_every_documented_command():
    """The Click tree holds estimate, compare, plan, fit, calibrate, validate and presets list/show."""
    expected = {"mpg", "mpg estimate", "mpg compare", "mpg plan", "mpg fit", "mpg calibrate", "mpg validate",
                "mpg presets", "mpg presets list", "mpg presets show"}
    assert expected <= set(COMMANDS), sorted(set(COMMANDS))


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_command_has_help_text(path):
    """Each command, group and subcommand has non-empty help (its docstring or help=)."""
    cmd = COMMANDS[path]
    assert (cmd.help or "").strip(), f"'{path}' has no help text"


OPTIONS = [(path, p) for path, cmd in sorted(COMMANDS.items()) for p in cmd.params
           if getattr(p, "param_type_name", "") == "option" and not set(p.opts) & TYPER_OWN_OPTIONS]


@pytest.mark.parametrize("path,param", OPTIONS, ids=[f"{path} {p.opts[0]}" for path, p in OPTIONS])
def test_every_option_has_help_text(path, param):
    """Each option of each command has non-empty help text (Typer's own completion/help options excepted)."""
    assert (getattr(param, "help", None) or "").strip(), f"'{path} {'/'.join(param.opts)}' has no help text"


ARGUMENTS = [(path, p) for path, cmd in sorted(COMMANDS.items()) for p in cmd.params
             if getattr(p, "param_type_name", "") == "argument"]


@pytest.mark.parametrize("path,param", ARGUMENTS, ids=[f"{path} {p.name}" for path, p in ARGUMENTS])
def test_every_argument_has_help_text(path, param):
    """Each positional argument (calibrate LOG, presets list KIND, presets show NAME) has non-empty help."""
    assert (getattr(param, "help", None) or "").strip(), f"'{path} {param.name}' has no help text"


def test_option_groups_cover_the_checked_options():
    """The walk really checks the shared options: estimate has at least 30 options, fit and compare 25."""
    per_command = collections.Counter(path for path, _ in OPTIONS)
    assert per_command["mpg estimate"] >= 30 and per_command["mpg fit"] >= 25 and per_command["mpg compare"] >= 25


# ================================================================ (b) README examples

@dataclass(frozen=True)
class Example:
    index: int
    command: str  # "mpg estimate ..." as written in the README
    output: tuple[str, ...]  # the README's output lines after it (up to the next '$ ' or the block end)

    @property
    def expected_exit(self) -> int:
        """1 where the README's output shows an error (e.g. the 'fit' that does not fit), else 0."""
        return 1 if any(line.startswith("ERROR:") for line in self.output) else 0

    @property
    def id(self) -> str:
        return f"{self.index:02d} {self.command[4:]}"


def readme_examples(text: str = README) -> list[Example]:
    """Every '$ mpg ...' line inside a ```console block, in README order, with the output shown after it."""
    out: list[Example] = []
    for block in re.findall(r"^```console\n(.*?)^```", text, re.DOTALL | re.MULTILINE):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("$ mpg "):
                j = i + 1
                while j < len(lines) and not lines[j].startswith("$ "):
                    j += 1
                out.append(Example(len(out), line[2:].strip(), tuple(lines[i + 1:j])))
    return out


EXAMPLES = readme_examples()


def test_readme_has_console_examples():
    """The README shows at least ten '$ mpg ...' examples, including calibrate --save and one that exits 1."""
    assert len(EXAMPLES) >= 10
    assert any("calibrate" in e.command and "--save calib.yaml" in e.command for e in EXAMPLES)
    assert any(e.expected_exit == 1 for e in EXAMPLES)


@pytest.fixture(scope="module")
def cli_in_workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Callable[[list[str]], Any], Path]]:
    """(run, folder): run mpg in-process inside a fresh folder laid out like a checkout (the README's calibrate
    example reads tests/fixtures/logs/megatron.log), COLUMNS=200, no user presets."""
    work = tmp_path_factory.mktemp("readme")
    (work / "tests" / "fixtures" / "logs").mkdir(parents=True)
    shutil.copyfile(MEGATRON_LOG, work / "tests" / "fixtures" / "logs" / "megatron.log")
    shutil.copyfile(MEGATRON_LOG, work / "train.log")
    shutil.copytree(REPO / "tests" / "fixtures" / "configs", work / "tests" / "fixtures" / "configs")  # --from examples
    config_home = tmp_path_factory.mktemp("xdg-config")
    runner = CliRunner(env={"COLUMNS": "200", "LINES": "50", "NO_COLOR": "1", "TERM": "dumb", "MPG_PRESETS": None,
                            "XDG_CONFIG_HOME": str(config_home)})
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.setattr(typer.testing, "_get_command", lambda _app: _CLICK_COMMAND)
        yield (lambda args: runner.invoke(app, args)), work


@pytest.fixture(scope="module")
def readme_results(cli_in_workdir) -> dict[int, Any]:
    """Run every README example once, in README order (calibrate writes the calib.yaml a later example reads)."""
    run, _ = cli_in_workdir
    results = {}
    for ex in EXAMPLES:
        argv = shlex.split(ex.command)
        assert argv[0] == "mpg"
        results[ex.index] = run(argv[1:])
    return results


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_readme_example_runs(readme_results, example):
    """The README example runs without a traceback and exits as its shown output says (0, or 1 with ERROR:)."""
    res = readme_results[example.index]
    ctx = f"$ {example.command}\nexit {res.exit_code}\nstderr: {res.stderr[-2000:]}"
    assert res.exception is None or isinstance(res.exception, SystemExit), f"{res.exception!r}\n{ctx}"
    assert "Traceback" not in res.stdout + res.stderr, ctx
    assert res.exit_code == example.expected_exit, ctx
    assert res.stdout.strip(), ctx
    if example.expected_exit == 1:
        assert "ERROR: " in res.stderr, ctx


def test_readme_calibrate_example_writes_the_calibration_file(readme_results, cli_in_workdir):
    """The README's 'calibrate ... --save calib.yaml' writes an mpg-calibration file the next example reads."""
    _, work = cli_in_workdir
    doc = yaml.safe_load((work / "calib.yaml").read_text("utf-8"))
    assert doc["kind"] == "mpg-calibration"
    assert 0.05 <= doc["ratio"] <= 20


NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _numbers_params() -> list[Any]:
    return [pytest.param(ex, id=ex.id) for ex in EXAMPLES if any(NUMBER.search(line) for line in ex.output)]


@pytest.mark.parametrize("example", _numbers_params())
def test_readme_example_output_numbers_still_come_out(readme_results, example):
    """Every number in a README example's shown output appears in the real output (wrapping and width ignored)."""
    res = readme_results[example.index]
    want = collections.Counter(n for line in example.output for n in NUMBER.findall(line))
    have = collections.Counter(NUMBER.findall(res.stdout + res.stderr))
    missing = want - have
    assert not missing, f"$ {example.command}: README numbers not in the output: {dict(missing)}"


# ---------------------------------------------------------------- the CI recipe (plan.yaml, budget.json)

def _readme_scenario() -> dict[str, Any]:
    m = re.search(r"e\.g\. `(\{label:[^`]*\})`", README)
    assert m, "README no longer shows an example scenario entry ({label: ..., ...})"
    entry = yaml.safe_load(" ".join(m.group(1).split()))
    assert isinstance(entry, dict) and "label" in entry
    return entry


def _readme_inline_command(prefix: str) -> list[str]:
    m = re.search(r"`(" + re.escape(prefix) + r"[^`]*)`", README)
    assert m, f"README no longer shows `{prefix}...`"
    return shlex.split(" ".join(m.group(1).split()))


def _readme_ci_command() -> list[str]:
    """The 'mpg compare ... --against budget.json ...' line of the README's GitHub Actions step (without '>>')."""
    block = re.search(r"```yaml\n(.*?)```", README, re.DOTALL)
    assert block, "README no longer has the CI recipe"
    text = block.group(1).replace("\\\n", " ")
    line = next(ln.strip() for ln in text.splitlines() if ln.strip().startswith("mpg compare"))
    argv = shlex.split(line)
    return argv[:argv.index(">>")] if ">>" in argv else argv


def test_readme_ci_recipe_runs(cli_in_workdir):
    """The README's CI recipe works: save budget.json from plan.yaml, then the check exits 0 (nothing rose)."""
    run, work = cli_in_workdir
    (work / "plan.yaml").write_text(yaml.safe_dump([_readme_scenario()]), encoding="utf-8")
    save = _readme_inline_command("mpg compare --scenarios plan.yaml --format json -o budget.json")
    res = run(save[1:])
    assert res.exit_code == 0, res.stderr
    assert json.loads((work / "budget.json").read_text("utf-8"))["command"] == "compare"
    check = _readme_ci_command()
    assert check[:2] == ["mpg", "compare"] and "--against" in check and "--fail-on-increase" in check
    res = run(check[1:])
    assert res.exit_code == 0, res.stderr
    assert "GATE FAILED" not in res.stderr
    assert _readme_scenario()["label"] in res.stdout
    assert res.stdout.lstrip().startswith("#")  # --format markdown, for $GITHUB_STEP_SUMMARY


def test_readme_ci_recipe_fails_when_the_plan_grows(cli_in_workdir):
    """The README's exit codes: the same check exits 1 with 'GATE FAILED:' lines once the plan's tokens double."""
    run, work = cli_in_workdir
    entry = _readme_scenario()
    (work / "plan.yaml").write_text(yaml.safe_dump([entry]), encoding="utf-8")
    save = _readme_inline_command("mpg compare --scenarios plan.yaml --format json -o budget.json")
    assert run(save[1:]).exit_code == 0
    bigger = dict(entry, tokens="30T")
    (work / "plan.yaml").write_text(yaml.safe_dump([bigger]), encoding="utf-8")
    res = run(_readme_ci_command()[1:])
    assert res.exit_code == 1, res.stderr
    assert res.stderr.count("GATE FAILED: ") >= 2  # gpu_hours, cost and days all rose ~100 %


# ================================================================ (c) the validation summary

PCT = r"\*?\*?([\d.]+) ?%\*?\*?"


def _pct_close(readme_text: str, value: float) -> bool:
    """The code's fraction, shown as a percentage to the README's number of decimals, equals the README's figure."""
    decimals = len(readme_text.split(".")[1]) if "." in readme_text else 0
    return abs(value * 100 - float(readme_text)) <= 0.5 * 10 ** -decimals + 1e-9


@pytest.fixture(scope="module")
def validation() -> list[Any]:
    return validate_all()


def test_readme_accuracy_tables_match_the_code(validation):
    """The README's accuracy tables (cross-validated by class and by left-out family) are the code's, exactly."""
    from mpg_cli.validation import accuracy_tables, cross_validate

    begin, end = "<!-- accuracy-tables:begin -->\n", "<!-- accuracy-tables:end -->"
    assert begin in README and end in README, "README lost the accuracy-table markers"
    shown = README.split(begin, 1)[1].split(end, 1)[0]
    assert shown == accuracy_tables(validation, cross_validate(), cross_validate("document")), \
        "run python scripts/update_readme.py"


def test_readme_range_coverage_table_matches_the_code():
    """The README's range-coverage table (overall and per class) is the code's, exactly."""
    from mpg_cli.coverage import coverage, coverage_table
    from mpg_cli.validation import cross_validate

    begin, end = "<!-- range-coverage:begin -->\n", "<!-- range-coverage:end -->"
    assert begin in README and end in README, "README lost the range-coverage markers"
    shown = README.split(begin, 1)[1].split(end, 1)[0]
    assert shown == coverage_table(coverage(cross_validate())), "run python scripts/update_readme.py"


def test_readme_constant_count_matches_the_data_file():
    """'**12 constants** are fitted' in the README is the data file's count."""
    from mpg_cli.validation import load_constants_document

    m = re.search(r"\*\*(\d+) constants\*\* are fitted", README)
    assert m and int(m.group(1)) == load_constants_document()["count"]


def test_readme_constants_table_matches_the_data_file():
    """The README's table of fitted constants is the shipped data file's."""
    from mpg_cli.validation import constants_table

    begin, end = "<!-- constants-table:begin -->\n", "<!-- constants-table:end -->"
    assert begin in README and end in README
    assert README.split(begin, 1)[1].split(end, 1)[0] == constants_table()


def test_readme_headline_matches_the_code():
    """The intro ('137 published training benchmarks (median error 7.7 % on sources it was not fitted on') is the code's."""
    from mpg_cli.validation import cross_validate

    s = summary(cross_validate())
    m = re.search(r"\*\*(\d+) published training benchmarks\*\* \(median error ([\d.]+) %", README)
    assert m and int(m.group(1)) == s["runs"] and _pct_close(m.group(2), s["median_abs_error"])


# ================================================================ (d) inline claims

def test_readme_days_solve_claim(json_once):
    """'mpg estimate --days 34 ...' gives the README's '**1,048 GPUs** (33.9 days)'."""
    m = re.search(r"`(mpg estimate --days [^`]+)` → .*?\*\*([\d,]+) GPUs\*\* \(([\d.]+) days\)", README, re.DOTALL)
    assert m, "README lost the --days example"
    argv = shlex.split(" ".join(m.group(1).split()))
    assert argv[0] == "mpg" and "-o" not in argv and "--output" not in argv  # read-only: json_once may share it
    doc = json_once(*argv[1:])  # exit 0 asserted there
    assert doc["inputs"]["gpus"] == int(m.group(2).replace(",", ""))
    assert round(doc["time"]["days"], 1) == float(m.group(3))


# the solve behind the README's --days claim (moved here from test_compare_plan.py so that both tests share one
# ~0.8 s solve through json_once, also when pytest-xdist gives each file its own worker)
def test_days_solves_for_about_1024_gpus(json_once):
    """--days 34 for GPT-3 at 140 TFLOP/s and 300B tokens answers the first count with a layout past 1,024 GPUs
    (1,024 takes 34.7 days; counts are those whose dp divides the fixed global batch)."""
    doc = json_once("estimate", "--days", "34", "-m", "gpt3-175b", "-c", "dgx-a100", "--tflops", "140",
                    "--recompute", "full", "--tokens", "300B")
    assert 1024 < doc["inputs"]["gpus"] <= 1200
    assert doc["time"]["days"] <= 34


def test_readme_eq4_prose_matches_the_output(readme_results):
    """The prose figure for eq. 4's 8·T·P/(n·X) approximation equals the one the first example prints."""
    m = re.search(r"approximation gives \(([\d.]+) days", README)
    assert m, "README lost the eq. 4 sentence"
    res = readme_results[0]
    assert "--tflops 140" in EXAMPLES[0].command
    printed = re.search(r"approximation gives\s+([\d.]+)\s+days", res.stdout)
    assert printed, res.stdout[-1500:]
    assert printed.group(1) == m.group(1)


def test_readme_gate_line_example_matches_the_output(cli_in_workdir):
    """The README's example gate line is what '--max-gpu-hours 500000' on its GPT-3 example prints on stderr."""
    run, _ = cli_in_workdir
    m = re.search(r"e\.g\. `(GATE FAILED: [^`]+)`", README)
    assert m, "README lost the gate-line example"
    argv = shlex.split(EXAMPLES[0].command)[1:] + ["--max-gpu-hours", "500000"]
    res = run(argv)
    assert res.exit_code == 1
    assert m.group(1) in res.stderr, res.stderr
