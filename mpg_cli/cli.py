"""The Typer application: wiring only. Each command lives in mpg_cli/commands/<name>.py.

Errors: every ``MpgError`` is caught once, in ``group.MpgGroup.invoke`` (the single error boundary).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any, Optional

import typer

from . import __version__
from .group import MpgGroup
from .options import ESTIMATE_GROUPS, H_OUT, H_PLAN, Fmt, OneGpusOpt, PresetsOpt, ReportFmt, VerboseOpt, explicit_options, shared


app = typer.Typer(
    cls=MpgGroup,
    name="mpg",
    help="Miles per gallon for training large language models: time, GPU-hours, cost, MFU and memory fit.",
    no_args_is_help=False,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog="Exit codes: 0 ok, 1 a requested gate failed, 2 bad input. Docs: README.md.",
)


def examples(*lines: str) -> str:
    """An epilog of example command lines, kept unwrapped by the help formatter ('\\b')."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


def _version(value: bool) -> None:
    if value:
        from .boundary import stream_error

        try:
            sys.stdout.write(f"mpg {__version__}\n")
            sys.stdout.flush()
        except OSError as exc:
            code = stream_error(exc)
            if code is None:
                raise
            raise typer.Exit(code) from None
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
    epilog=examples(
        'mpg estimate                                   # GPT-3 175B on 1024 A100s (the default)',
        'mpg estimate -m gpt3-175b -c dgx-a100 -n 1024 --tokens 300B --tflops 140 --recompute full',
        'mpg estimate -m llama3-70b -c dgx-h100 -n 512 --tokens 15T --explain',
        'mpg estimate -m llama3-8b -c dgx-h100 -n 64 --format json --max-gpu-hours 50000',
        'mpg estimate --from train_gpt3_175b.sh -c dgx-h100    # model, layout, batch from a Megatron-LM script',
        'mpg estimate --from ds_config.json --from ./Llama-2-7b-hf -n 64   # DeepSpeed JSON + HF model directory',
    )
)
@shared(*ESTIMATE_GROUPS)
def estimate(
    weak_scaling: Annotated[bool, typer.Option("--weak-scaling", help="With a --gpus list: grow the global batch "
                                               "with the GPU count (default: strong scaling, one batch).",
                                               rich_help_panel=H_PLAN)] = False,
    explain: Annotated[bool, typer.Option("--explain", help="Show where one iteration's time goes.",
                                          rich_help_panel="Output")] = False,
    days: Annotated[Optional[float], typer.Option("--days", help="Solve for the fewest GPUs (whole nodes) that "
                                                  "finish within this many days (leave --gpus out).",
                                                  rich_help_panel=H_PLAN)] = None,
    budget_gpu_hours: Annotated[Optional[float], typer.Option("--budget-gpu-hours", help="Solve for the tokens "
                                                              "this many GPU-hours buy (leave --tokens out).",
                                                              rich_help_panel=H_PLAN)] = None,
    budget_usd: Annotated[Optional[float], typer.Option("--budget-usd", help="Solve for the tokens this many "
                                                        "dollars buy (leave --tokens out).", rich_help_panel=H_PLAN)] = None,
    **opts: Any,
) -> None:
    """How long, how many GPU-hours, what cost, and does it fit?"""
    from .commands.estimate import run

    opts["_explicit"] = explicit_options()
    opts["weak_scaling"] = weak_scaling
    raise typer.Exit(run(opts, explain=explain, days=days, budget_gpu_hours=budget_gpu_hours, budget_usd=budget_usd))


@app.command(
    epilog=examples(
        'mpg compare -m llama3-8b -m llama3-70b -c dgx-a100 -c dgx-h100 --tokens 15T',
        'mpg compare --scenarios plan.yaml --sort days --baseline baseline',
        'mpg compare -m llama3-8b -m llama3-70b -c dgx-h100 --tokens 2T --days 30',
        'mpg compare --scenarios plan.yaml --against budget.json --fail-on-increase 10% --format markdown',
    )
)
@shared("inputs", "run", "confidence", "layout", "efficiency", "memory", "output", "gates")
def compare(
    model: Annotated[Optional[list[str]], typer.Option("--model", "-m", help="Model preset or file; repeat for "
                                                       "several.", rich_help_panel="Model and hardware")] = None,
    cluster: Annotated[Optional[list[str]], typer.Option("--cluster", "-c", help="Cluster preset or file; repeat.",
                                                         rich_help_panel="Model and hardware")] = None,
    gpu: Annotated[Optional[list[str]], typer.Option("--gpu", help="GPU type overriding the cluster's; repeat.",
                                                     rich_help_panel="Model and hardware")] = None,
    gpus: Annotated[Optional[list[str]], typer.Option("--gpus", "-n", help="GPU count; repeat (or 64,128) for several.",
                                                      rich_help_panel="Model and hardware")] = None,
    presets: PresetsOpt = None,
    scenarios: Annotated[Optional[str], typer.Option("--scenarios", help="YAML file: a list of estimate inputs, "
                                                     "each with a label.", rich_help_panel="Scenarios")] = None,
    sort: Annotated[Optional[str], typer.Option("--sort", help="Sort rows by a column (days, gpu_hours, cost, mfu, "
                                                "…; '-mfu' for descending).", rich_help_panel="Scenarios")] = None,
    baseline: Annotated[Optional[str], typer.Option("--baseline", help="Label of the row the deltas refer to "
                                                    "(default: the first).", rich_help_panel="Scenarios")] = None,
    against: Annotated[Optional[str], typer.Option("--against", help="JSON from an earlier estimate or compare: "
                                                   "show the change per scenario.", rich_help_panel="Budget check")] = None,
    fail_on_increase: Annotated[Optional[str], typer.Option("--fail-on-increase", help="Exit 1 when a metric rises "
                                                            "by more than this vs --against: 10% or 0.10 (a bare 10 is refused); compares central "
                                                            "values, not the ranges.",
                                                            rich_help_panel="Budget check")] = None,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", help="Metric(s) for --fail-on-increase: days, "
                                                        "gpu_hours, cost, energy (default: days, gpu_hours, cost).",
                                                        rich_help_panel="Budget check")] = None,
    days: Annotated[Optional[float], typer.Option("--days", help="Solve each scenario for the fewest GPUs (whole "
                                                  "nodes) that finish within this many days (leave -n out).",
                                                  rich_help_panel=H_PLAN)] = None,
    allow_new: Annotated[bool, typer.Option("--allow-new", help="With --fail-on-increase: scenarios missing from "
                                            "--against pass (default: exit 1).", rich_help_panel="Budget check")] = False,
    allow_missing: Annotated[bool, typer.Option("--allow-missing", help="With --fail-on-increase: --against "
                                                "scenarios no longer compared pass (default: exit 1).",
                                                rich_help_panel="Budget check")] = False,
    **opts: Any,
) -> None:
    """Scenarios side by side: models × clusters × GPU counts, or a scenarios file."""
    from .commands.compare import run

    opts["_explicit"] = explicit_options()
    opts.update(model="gpt3-175b", cluster="dgx-a100", gpu=None, gpus=None, presets=presets)
    from .args import CompareArgs

    args = CompareArgs(models=tuple(model or ()), clusters=tuple(cluster or ()), gpu_types=tuple(gpu or ()),
                       gpus=tuple(gpus or ()), scenario_file=scenarios, sort=sort, baseline=baseline, against=against,
                       fail_on_increase=fail_on_increase, metrics=tuple(metric or ()), allow_new=allow_new,
                       allow_missing=allow_missing, days=days)
    raise typer.Exit(run(opts, args))


@app.command(
    epilog=examples(
        'mpg plan --days 30 -c dgx-h100 -n 1024',
        'mpg plan --days 90 -c dgx-a100 -n 512 --template gpt --format json',
        'mpg plan --budget-usd 2e6 -c dgx-h100 -n 1024',
    )
)
@shared("inputs", "run", "efficiency", "memory", "output")
def plan(
    days: Annotated[Optional[float], typer.Option("--days", help="Wall-clock days available (or give a budget).",
                                                  rich_help_panel=H_PLAN)] = None,
    cluster: Annotated[str, typer.Option("--cluster", "-c", help="Cluster preset or file.",
                                         rich_help_panel="Model and hardware")] = "dgx-h100",
    gpus: Annotated[Optional[int], typer.Option("--gpus", "-n", min=1, help="GPU count (default: the whole cluster).",
                                                rich_help_panel="Model and hardware")] = None,
    gpu: Annotated[Optional[str], typer.Option("--gpu", help="GPU type overriding the cluster's.",
                                               rich_help_panel="Model and hardware")] = None,
    template: Annotated[str, typer.Option("--template", help="Model family shape: llama (default) or gpt.",
                                          rich_help_panel=H_PLAN)] = "llama",
    presets: PresetsOpt = None,
    budget_gpu_hours: Annotated[Optional[float], typer.Option("--budget-gpu-hours", help="The largest model this "
                                                              "many GPU-hours train (with or without --days).",
                                                              rich_help_panel=H_PLAN)] = None,
    budget_usd: Annotated[Optional[float], typer.Option("--budget-usd", help="The largest model this many dollars "
                                                        "train (at --price or the preset's price).",
                                                        rich_help_panel=H_PLAN)] = None,
    **opts: Any,
) -> None:
    """The largest compute-optimal dense model (20 tokens per parameter) trainable in D days or on a budget."""
    from .commands.plan import run

    opts["_explicit"] = explicit_options()
    opts.update(cluster=cluster, gpus=None if gpus is None else str(gpus), gpu=gpu, presets=presets)
    raise typer.Exit(run(opts, days, template, budget_gpu_hours, budget_usd))


@app.command(
    epilog=examples(
        'mpg fit -m llama3-405b -c dgx-h100 -n 1024',
        'mpg fit -m llama2-7b --gpu a100-80gb -n 2',
        'mpg fit -m gpt3-175b -c dgx-a100 --min-gpus',
        'mpg fit -m gpt3-175b -c dgx-a100 -n 1024 --tp 8 --pp 8 --format json',
    )
)
@shared("model", "inputs", "run", "layout", "efficiency", "memory", "output")
def fit(
    gpus: OneGpusOpt = None,
    top: Annotated[int, typer.Option("--top", min=1, max=1000, help="How many layouts to show.",
                                     rich_help_panel="Output")] = 10,
    min_gpus: Annotated[bool, typer.Option("--min-gpus", help="Find the smallest GPU count (whole nodes, or single "
                                           "GPUs below a node) that holds the model.", rich_help_panel="Output")] = False,
    **opts: Any,
) -> None:
    """Does it fit in GPU memory, and which parallel layout trains fastest?"""
    from .commands.fit import run

    opts["gpus"] = gpus
    opts["_explicit"] = explicit_options()
    raise typer.Exit(run(opts, top, min_gpus))


@app.command(
    epilog=examples(
        'mpg calibrate train.log -m llama3-8b -c dgx-h100 -n 64 --tp 1 --pp 1 --tokens 15T --save calib.yaml',
        'mpg calibrate -m gpt3-175b -c dgx-a100 -n 1024 --tp 8 --pp 8 --step-time 30.5 --global-batch 1536',
        'mpg estimate -m llama3-8b -c dgx-h100 -n 512 --calibration calib.yaml',
        'Logs: Megatron-LM, NeMo/Lightning, torchtitan, Hugging Face Trainer, DeepSpeed (detected).',
    )
)
@shared("model", "inputs", "run", "layout", "memory", "output")
def calibrate(
    gpus: OneGpusOpt = None,
    log: Annotated[Optional[str], typer.Argument(help="Training log of a short run ('-' reads standard input; "
                                                 "optional: or give a measured figure).", show_default=False)] = None,
    step_time: Annotated[Optional[float], typer.Option("--step-time", help="Measured seconds per iteration.",
                                                       rich_help_panel="Measured")] = None,
    tokens_per_second: Annotated[Optional[float], typer.Option("--tokens-per-second", help="Measured whole-job "
                                                               "tokens/s.", rich_help_panel="Measured")] = None,
    tflops: Annotated[Optional[float], typer.Option("--tflops", help="Measured hardware TFLOP/s per GPU (recompute "
                                                    "counted).", rich_help_panel="Measured")] = None,
    mfu: Annotated[Optional[float], typer.Option("--mfu", help="Measured model FLOPs utilisation, 0-1.",
                                                 rich_help_panel="Measured")] = None,
    warmup: Annotated[Optional[int], typer.Option("--warmup", min=0, help="Skip this many leading log records "
                                                  "(default: automatic).", rich_help_panel="Measured")] = None,
    log_format: Annotated[Optional[str], typer.Option("--log-format", help="Force the log format (megatron, nemo, "
                                                      "torchtitan, hf-trainer, deepspeed).",
                                                      rich_help_panel="Measured")] = None,
    save: Annotated[Optional[str], typer.Option("--save", help="Write a calibration file (atomically).",
                                                rich_help_panel="Output")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --save file.",
                                        rich_help_panel="Output")] = False,
    **opts: Any,
) -> None:
    """Measured miles per gallon from a short partial run: the ratio to the step-time model, and the full run."""
    from .commands.calibrate import run

    opts["gpus"] = gpus
    opts["_explicit"] = explicit_options()
    from .args import CalibrateArgs

    raise typer.Exit(run(opts, CalibrateArgs(log=log, step_time=step_time, tokens_per_second=tokens_per_second,
                                             tflops=tflops, mfu=mfu, warmup=warmup, log_format=log_format, save=save,
                                             force=force)))


@app.command(
    epilog=examples(
        'mpg report -m llama3-70b -c dgx-h100 -n 512 --tokens 15T -o plan.html',
        'mpg report --scenarios plan.yaml -o plan.html',
        'mpg report -m llama3-8b -c dgx-h100 -n 64 --calibration calib.yaml --format json -o plan.json',
    )
)
@shared("model", "run", "layout", "efficiency", "memory", "gates")
def report(
    scenarios: Annotated[Optional[str], typer.Option("--scenarios", help="YAML file of scenarios (as for compare): "
                                                     "side-by-side bars; the first is detailed.",
                                                     rich_help_panel="Scenarios")] = None,
    days: Annotated[Optional[float], typer.Option("--days", help="Solve for the fewest GPUs that finish within this "
                                                  "many days (as estimate).", rich_help_panel=H_PLAN)] = None,
    budget_gpu_hours: Annotated[Optional[float], typer.Option("--budget-gpu-hours", help="Solve for the tokens this "
                                                              "many GPU-hours buy.", rich_help_panel=H_PLAN)] = None,
    budget_usd: Annotated[Optional[float], typer.Option("--budget-usd", help="Solve for the tokens this many dollars "
                                                        "buy.", rich_help_panel=H_PLAN)] = None,
    format: Annotated[ReportFmt, typer.Option("--format", "-f", help="html (the page) or json (the data behind its "
                                              "charts).", rich_help_panel=H_OUT)] = ReportFmt.html,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write to FILE (atomically), e.g. plan.html.",
                                                  rich_help_panel=H_OUT)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No warnings or confirmation line.",
                                        rich_help_panel=H_OUT)] = False,
    **opts: Any,
) -> None:
    """One self-contained HTML page of charts: summary, memory, step time, scaling, layout frontier, accuracy."""
    from .commands.report import run

    opts.update(quiet=quiet)
    from .args import ReportArgs

    raise typer.Exit(run(opts, ReportArgs(scenario_file=scenarios, days=days, budget_gpu_hours=budget_gpu_hours,
                                          budget_usd=budget_usd, format=format.value, output=output, quiet=quiet)))


@app.command()
def validate(
    format: Annotated[Fmt, typer.Option("--format", "-f", help="Output format.")] = Fmt.table,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write to FILE (atomically).")] = None,
    group: Annotated[Optional[str], typer.Option("--group", help="Only runs whose group contains this text "
                                                 "(e.g. narayanan, korthikanti, megatron, llmfoundry).")] = None,
    max_median_error: Annotated[Optional[float], typer.Option("--max-median-error",
                                                              help="Exit 1 when the median |error| is larger (e.g. 0.10).")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Predict every published run shipped with mpg and compare with the measured tokens/s per GPU."""
    from .commands.validate import run

    raise typer.Exit(run(format.value, output, group, max_median_error))


presets_app = typer.Typer(help="List and show model, GPU and cluster presets (built-in and your own).",
                          no_args_is_help=True)
app.add_typer(presets_app, name="presets")


@presets_app.command("list")
def presets_list(
    kind: Annotated[Optional[str], typer.Argument(help="models, gpus or clusters (default: all).")] = None,
    presets: PresetsOpt = None,
    format: Annotated[Fmt, typer.Option("--format", "-f", help="Output format.")] = Fmt.table,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write to FILE (atomically).")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """List presets and where each comes from (built-in, user directory, $MPG_PRESETS, --presets)."""
    from .commands.presets_cmd import list_presets

    raise typer.Exit(list_presets(kind, presets, format.value, output))


@presets_app.command("show")
def presets_show(
    name: Annotated[str, typer.Argument(help="Preset name (or a file path).")],
    kind: Annotated[Optional[str], typer.Option("--kind", help="models, gpus or clusters, when a name is ambiguous.")] = None,
    presets: PresetsOpt = None,
    format: Annotated[Fmt, typer.Option("--format", "-f", help="Output format.")] = Fmt.table,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write to FILE (atomically).")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Show a preset's resolved values (defaults filled in) and where it came from."""
    from .commands.presets_cmd import show_preset

    raise typer.Exit(show_preset(name, kind, presets, format.value, output))


def _only(name: str) -> typer.Typer:
    """The app with only the named command (or command group) built.

    Typer builds every command's options from its signature before it parses the command line (~3 ms per
    command); the one named first on the command line is the only one a run can reach, so it is the only one
    built. Help, usage lines and errors are unchanged: a subcommand's help never lists its siblings."""
    import copy

    narrowed = copy.copy(app)
    narrowed.registered_commands = [c for c in app.registered_commands if _name(c) == name]
    narrowed.registered_groups = [g for g in app.registered_groups if g.name == name]
    return narrowed


def _name(info: Any) -> str:
    return info.name or info.callback.__name__.replace("_", "-")


def _narrowable(argv: list[str]) -> bool:
    """A subcommand is named first, and no shell is asking for completions (they list every command)."""
    if not argv or any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ):
        return False
    return any(_name(c) == argv[0] for c in app.registered_commands) or any(
        g.name == argv[0] for g in app.registered_groups)


def main() -> None:
    """Console-script entry point."""
    argv = sys.argv[1:]
    (_only(argv[0]) if _narrowable(argv) else app)()


if __name__ == "__main__":  # pragma: no cover
    main()
