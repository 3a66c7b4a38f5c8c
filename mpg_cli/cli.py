"""The Typer application: wiring only. Each command lives in mpg_cli/commands/<name>.py.

Errors: every ``MpgError`` is caught once, in ``MpgGroup.invoke``, printed as ``ERROR: …`` plus
``TIP: …`` on stderr, and turned into the error's exit code (see ``mpg_cli.errors.ExitCode``).
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from . import __version__
from .errors import ExitCode, MpgError
from .options import ESTIMATE_GROUPS, Fmt, shared


def report_error(exc: MpgError) -> None:
    """Print one clear message (and a tip) to stderr; never a traceback."""
    out = sys.stderr
    out.write(f"ERROR: {exc.message}\n")
    if exc.hint:
        out.write(f"TIP: {exc.hint}\n")


class MpgGroup(TyperGroup):
    """Typer group with the tool's single error boundary."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except MpgError as exc:
            report_error(exc)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            sys.stderr.write("Interrupted.\n")
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=MpgGroup,
    name="mpg",
    help="Miles per gallon for training large language models: time, GPU-hours, cost, MFU and memory fit.",
    no_args_is_help=False,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog="Exit codes: 0 ok, 1 a requested gate failed, 2 bad input. Docs: README.md.",
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"mpg {__version__}\n")
        raise typer.Exit(0)


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    version: Annotated[Optional[bool], typer.Option("--version", "-V", callback=_version, is_eager=True,
                                                     help="Print the version and exit.")] = None,
) -> None:
    """Estimate, fit and compare LLM training runs. Run 'mpg estimate' for a first answer."""
    if ctx.invoked_subcommand is None:
        sys.stdout.write(ctx.get_help() + "\n")


@app.command(
    epilog=(
        "Examples:\n\n"
        "  mpg estimate                                   # GPT-3 175B on 1024 A100s (the default)\n\n"
        "  mpg estimate -m gpt3-175b -c dgx-a100 -n 1024 --tokens 300B --tflops 140 --recompute full\n\n"
        "  mpg estimate -m llama3-70b -c dgx-h100 -n 512 --tokens 15T --explain\n\n"
        "  mpg estimate -m llama3-8b -c dgx-h100 -n 64 --format json --max-gpu-hours 50000"
    )
)
@shared(*ESTIMATE_GROUPS)
def estimate(
    explain: Annotated[bool, typer.Option("--explain", help="Show where one iteration's time goes.",
                                          rich_help_panel="Output")] = False,
    **opts: Any,
) -> None:
    """How long, how many GPU-hours, what cost, and does it fit?"""
    from .commands.estimate import run

    raise typer.Exit(run(opts, explain=explain))


@app.command(
    epilog=(
        "Examples:\n\n"
        "  mpg fit -m llama3-405b -c dgx-h100 -n 1024\n\n"
        "  mpg fit -m llama2-7b --gpu a100-80gb -n 1\n\n"
        "  mpg fit -m gpt3-175b -c dgx-a100 --min-gpus\n\n"
        "  mpg fit -m gpt3-175b -c dgx-a100 -n 1024 --tp 8 --pp 8 --format json"
    )
)
@shared("model", "run", "layout", "efficiency", "memory", "output")
def fit(
    top: Annotated[int, typer.Option("--top", min=1, max=1000, help="How many layouts to show.",
                                     rich_help_panel="Output")] = 10,
    min_gpus: Annotated[bool, typer.Option("--min-gpus", help="Find the smallest GPU count (whole nodes, or single "
                                           "GPUs below a node) that holds the model.", rich_help_panel="Output")] = False,
    **opts: Any,
) -> None:
    """Does it fit in GPU memory, and which parallel layout trains fastest?"""
    from .commands.fit import run

    raise typer.Exit(run(opts, top, min_gpus))


@app.command()
def validate(
    format: Annotated[Fmt, typer.Option("--format", "-f", help="Output format.")] = Fmt.table,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write to FILE (atomically).")] = None,
    group: Annotated[Optional[str], typer.Option("--group", help="Only runs whose group contains this text "
                                                 "(e.g. narayanan, korthikanti, megatron, llmfoundry).")] = None,
    max_median_error: Annotated[Optional[float], typer.Option("--max-median-error",
                                                              help="Exit 1 when the median |error| is larger (e.g. 0.10).")] = None,
) -> None:
    """Predict every published run shipped with mpg and compare with the measured tokens/s per GPU."""
    from .commands.validate import run

    raise typer.Exit(run(format.value, output, group, max_median_error))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
