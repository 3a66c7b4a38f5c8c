"""Render results for people: the rows of the human tables, Rich tables, Markdown of one estimate, writing.

The machine formats (JSON dictionaries, JSON/CSV/Markdown text) are in ``output/documents.py`` and are
re-exported here; ``output/emit.py`` picks the format and writes it.
"""

from __future__ import annotations

import io
import os
import sys
from typing import Any, Optional, Sequence

from .core.estimate import Result
from .humanize import fmt
from .output.assumptions import assumption_texts
from .output.documents import (  # noqa: F401 - re-exported: commands render through this module
    estimate_body,
    estimate_dict,
    flatten,
    inputs_dict,
    layout_dict,
    md_table,
    memory_dict,
    throughput_dict,
    to_csv,
    to_json,
)
from .output.schema import SCHEMA_VERSION as SCHEMA_VERSION  # re-exported: the contract is output/schema.py
from .output.safe_table import SafeTable, _renderable
from .sanitize import clean_line


# ---------------------------------------------------------------- human rows (shared by table and markdown)

def layout_text(r: Result) -> str:
    lay = r.layout
    parts = [f"tp {lay.tp}", f"pp {lay.pp}", f"dp {lay.dp}"]
    if lay.ep > 1:
        parts.append(f"ep {lay.ep}")
    if lay.cp > 1:
        parts.append(f"cp {lay.cp}")
    parts += [f"micro-batch {lay.micro_batch}"]
    if lay.virtual_stages > 1:
        parts.append(f"v {lay.virtual_stages}")
    parts += [f"ZeRO {lay.zero}", f"recompute {lay.recompute}"]
    if lay.sequence_parallel:
        parts.append("SP")
    return ", ".join(parts)


def input_rows(r: Result) -> list[tuple[str, str]]:
    req = r.request
    gpu = req.cluster.gpu
    eff = {"tflops": "given (--tflops)", "mfu": "given (--mfu)"}.get(req.efficiency.source, "step-time model")
    if req.efficiency.calibration_ratio != 1.0:
        eff += f", calibrated ×{req.efficiency.calibration_ratio:.3f}"
    return [
        ("Model", f"{req.model.name} ({fmt(r.params_total, 'params')} params"
                  + (f", {fmt(r.params_active, 'params')} active" if r.params_active != r.params_total else "") + ")"),
        ("Cluster", f"{req.cluster.name}: {req.gpus:,} × {gpu.name} ({req.cluster.gpus_per_node}/node)"),
        ("Tokens", fmt(r.tokens, "tokens")),
        ("Batch", f"{r.global_batch:,} × {r.seq_length:,} tokens ({fmt(r.global_batch * r.seq_length, 'tokens')}/step)"),
        ("Layout", f"{layout_text(r)} [{r.layout_source}]"),
        ("Precision", f"{req.precision} (dense peak {r.peak_tflops:,.1f} TFLOP/s)"),
        ("Throughput from", eff),
    ]


def _range(iv: Any, key: str, unit: str) -> str:
    """' (80 %: 31.2-39.0)' for a result's range, or ''."""
    if iv is None or getattr(iv, key) is None:
        return ""
    lo, hi = getattr(iv, key)
    if lo == hi:  # e.g. the throughput when --tflops/--mfu gives it
        return ""
    return f" ({iv.level:.0%}: {fmt(lo, unit)} - {fmt(hi, unit)})"


def goodput_rows(r: Result) -> list[tuple[str, str]]:
    """The goodput model's parts: expected interruptions, checkpoint interval and write, time lost to each cause."""
    g = r.goodput
    if g is None:
        return []
    if g.source == "fixed":
        return [("Goodput", f"{g.fraction:.1%} (fixed by --goodput)")]
    wall = g.wall_s or 1.0
    lost = (f"failures (redone work) {fmt(g.lost_failures_s / 86400, 'days')}, checkpoints "
            f"{fmt(g.lost_checkpoints_s / 86400, 'days')}, restarts {fmt(g.lost_restarts_s / 86400, 'days')}"
            + (f", maintenance {fmt(g.lost_maintenance_s / 86400, 'days')}" if g.lost_maintenance_s else ""))
    rows = [("Goodput", f"{g.fraction:.1%} effective training time (steady {fmt(r.steady_days, 'days')} / wall "
                        f"{fmt(r.days, 'days')})"),
            ("Interruptions", f"{g.interruptions_expected:,.1f} expected ({g.interruptions_per_day:.2f}/day; job MTBF "
                              + (f"{g.job_mtbf_hours:,.1f} h)" if g.job_mtbf_hours is not None else "none)")),
            ("Checkpoints", f"{fmt(g.checkpoint_bytes, 'bytes')} every {fmt(g.checkpoint_interval_s, 'seconds')}, "
                            f"{fmt(g.checkpoint_write_s, 'seconds')} blocking each"),
            ("Time lost", f"{lost} ({1 - g.fraction:.1%} of {fmt(wall / 86400, 'days')})")]
    return rows


def result_rows(r: Result) -> list[tuple[str, str]]:
    iv = r.interval
    rows = [
        ("Time to train", f"{fmt(r.days, 'days')}" + _range(iv, "days", "days")),
        ("GPU-hours", fmt(r.gpu_hours, "gpu_hours") + _range(iv, "gpu_hours", "gpu_hours")),
        ("Cost", fmt(r.cost_usd, "usd") + (f" at ${r.price_usd_per_gpu_hour:g}/GPU-h" + _range(iv, "cost_usd", "usd") if r.cost_usd is not None else " (no price: set --price)")),
        ("Energy", fmt(r.energy_kwh, "kwh") + _range(iv, "energy_kwh", "kwh")),
        *goodput_rows(r),
        ("Achieved (hardware)", f"{fmt(r.tflops_per_gpu, 'tflops')} per GPU (HFU {fmt(r.hfu, 'percent')})"),
        ("Achieved (model)", f"{fmt(r.model_tflops_per_gpu, 'tflops')} per GPU (MFU {fmt(r.mfu, 'percent')})"),
        ("Tokens/s", f"{fmt(r.tokens_per_second, 'tokens_s')} ({fmt(r.tokens_per_second / r.request.gpus, 'tokens_s')} per GPU)"
                     + _range(iv, "tokens_per_second", "tokens_s")),
        ("Step time", f"{fmt(r.step_time_s, 'seconds')} × {r.iterations:,.0f} iterations"),
        ("Training FLOPs", f"{fmt(r.total_model_flops, 'flops')} model, {fmt(r.total_hardware_flops, 'flops')} hardware"),
    ]
    return rows


def memory_rows(r: Result) -> list[tuple[str, str]]:
    m = r.memory
    verdict = "yes" if m.fits else "NO"
    return [
        ("Weights", fmt(m.weights, "bytes")), ("Gradients", fmt(m.gradients, "bytes")),
        ("Optimizer states", fmt(m.optimizer, "bytes")), ("Activations", fmt(m.activations, "bytes")),
        ("CUDA/NCCL reserve", fmt(m.overhead, "bytes")),
        ("Total per GPU", f"{fmt(m.total, 'bytes')} of {fmt(m.capacity, 'bytes')} ({fmt(m.fraction_of_capacity, 'percent')}; "
                          f"usable {fmt(m.usable, 'bytes')})"),
        ("Fits", f"{verdict} (most loaded: {m.stage} stage)"),
    ]


def breakdown_rows(r: Result) -> list[tuple[str, str, str]]:
    parts = r.step_breakdown_s()
    if parts is None:
        return []
    total = r.step_time_s
    names = {"compute": "Compute (forward + backward)", "recompute": "Recompute", "tp_communication": "TP communication",
             "pipeline_bubble": "Pipeline bubble", "pp_communication": "PP communication",
             "dp_communication_exposed": "DP communication (exposed)", "moe_all_to_all": "MoE all-to-all",
             "optimizer": "Optimizer step", "other": "Other"}
    rows = [(names[k], fmt(v, "seconds"), fmt(v / total, "percent")) for k, v in parts.items()]
    rows.append(("Iteration", fmt(total, "seconds"), "100.0%"))
    return rows


def estimate_markdown(r: Result, explain: bool = False) -> str:
    parts = ["## Inputs\n", md_table(["", ""], [list(x) for x in input_rows(r)]),
             "\n## Results\n", md_table(["", ""], [list(x) for x in result_rows(r)]),
             "\n## Memory per GPU\n", md_table(["", ""], [list(x) for x in memory_rows(r)])]
    if explain and r.step:
        parts += ["\n## Step time\n", md_table(["part", "time", "share"], [list(x) for x in breakdown_rows(r)])]
    parts += ["\n## Assumptions\n", "".join(f"- {clean_line(a)}\n" for a in assumption_texts(r.assumptions))]
    if r.warnings:
        parts += ["\n## Warnings\n", "".join(f"- {clean_line(w)}\n" for w in r.warnings)]
    return "".join(parts)


# ---------------------------------------------------------------- Rich (tables for terminals)

def _output_width() -> int:
    """Columns for tables: $COLUMNS, else the terminal's (stdout's, or stderr's when stdout is piped), else 160.

    Piped output is not padded: trailing spaces are stripped (``_strip``), so 160 is only a ceiling."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return min(int(env), 1000)
    for fd in (1, 2):
        try:
            if os.isatty(fd):
                return max(20, os.get_terminal_size(fd).columns)
        except (OSError, ValueError):
            continue
    return 160


def terminal_colours(environ: Any = None) -> Optional[str]:
    """The colour system ``console()`` on stdout (a terminal) would use, as Rich's Console detects it
    (rich/console.py): 'truecolor' (COLORTERM truecolor or 24bit), '256' (TERM ending -256color or -kitty) or
    'standard'; None where anything else could change Rich's output (Windows, IDLE, Jupyter, a dumb terminal,
    NO_COLOR, FORCE_COLOR, TTY_COMPATIBLE, TTY_INTERACTIVE, a stream that is not UTF-8): Rich draws there."""
    env = os.environ if environ is None else environ
    if sys.platform == "win32" or "idlelib" in sys.modules or "IPython" in sys.modules:
        return None
    if any(k in env for k in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JUPYTER_COLUMNS",
                              "DATABRICKS_RUNTIME_VERSION")):
        return None
    if not (getattr(sys.stdout, "encoding", None) or "utf-8").lower().startswith("utf"):
        return None
    term = env.get("TERM", "").strip().lower()
    if term in ("dumb", "unknown"):  # (Rich's own test does not strip: any TERM that is dumb either way goes to Rich)
        return None
    if env.get("COLORTERM", "").strip().lower() in ("truecolor", "24bit"):
        return "truecolor"
    return {"kitty": "256", "256color": "256"}.get(term.rpartition("-")[2], "standard")


def console(file: Any = None, width: Optional[int] = None):
    """A Rich console: plain text when NO_COLOR is set or output is not a terminal."""
    from rich.console import Console

    no_color = bool(os.environ.get("NO_COLOR"))
    stream = file if file is not None else sys.stdout
    c = Console(file=stream, width=width or _output_width(), no_color=no_color, highlight=False, soft_wrap=False)

    def broken_pipe() -> None:  # Rich would exit 1 (the gate-failed code); the CLI boundary exits quietly
        raise BrokenPipeError(32, "Broken pipe")

    c.on_broken_pipe = broken_pipe  # type: ignore[method-assign]
    return c


def kv_table(title: str, rows: Sequence[tuple[str, ...]], headers: Optional[list[str]] = None,
             drop: tuple[str, ...] = ()) -> SafeTable:
    """A two-column (or headed) table of user-facing text: escaped, numbers never truncated (SafeTable);
    ``drop`` names low-priority columns left out (in order) on a narrow console before rows are stacked."""
    return SafeTable(title, [tuple(c if _renderable(c) else str(c) for c in row) for row in rows], headers, drop)


def memory_table(r: Result, title: str = "Memory per GPU"):
    """The memory rows with proportional bars (stacked total against capacity; ``output.bars``)."""
    from .output.bars import memory_bars

    return kv_table(title, [(*row, bar) for row, bar in zip(memory_rows(r), memory_bars(r.memory))])


def breakdown_table(r: Result):
    """Where one iteration's time goes, with a bar per part and the stacked iteration."""
    from .output.bars import step_bars

    rows = breakdown_rows(r)
    bars = step_bars(r.step_breakdown_s() or {}, r.step_time_s)
    return kv_table("Where one iteration's time goes", [(*row, bar) for row, bar in zip(rows, bars)],
                    ["part", "time", "share", ""])


def estimate_tables(r: Result, explain: bool = False) -> list[Any]:
    tables = [kv_table("Inputs", input_rows(r)), kv_table("Results", result_rows(r)), memory_table(r)]
    if explain and r.step:
        tables.append(breakdown_table(r))
    tables.append(kv_table("Assumptions (override with the flags named)", [("•", a) for a in assumption_texts(r.assumptions)]))
    return tables


def _strip(text: str) -> str:
    """No padding: trailing spaces of every line removed."""
    return "\n".join(line.rstrip() for line in text.split("\n"))


def print_tables(tables: list[Any]) -> None:
    """Print Rich renderables to stdout (to a terminal directly; piped, as text without trailing spaces)."""
    if getattr(sys.stdout, "isatty", lambda: False)():
        colours = terminal_colours()
        if colours is not None:  # the same output Rich writes, without importing Rich (output/plain_tables.py)
            from .output.plain_tables import render_ansi

            text = render_ansi(tables, _output_width(), colours)
            if text is not None:
                sys.stdout.write(text)
                sys.stdout.flush()
                return
        c = console()
        for t in tables:
            c.print(t)
        return
    sys.stdout.write(tables_to_text(tables))
    sys.stdout.flush()


def titled_table(title: str, headers: list[str], body: list[list[str]], fmt_name: str, output: Optional[str],
                 drop: tuple[str, ...] = ()) -> None:
    """One table with a title, as Markdown (``--format markdown``) or a Rich table."""
    if fmt_name == "markdown":
        emit(f"## {clean_line(title)}\n\n" + md_table(headers, body), output)
    else:
        show_tables([kv_table(title, [tuple(row) for row in body], headers, drop)], output)


def titled_markdown(title: str, headers: list[str], body: list[list[str]]) -> str:
    """One table with a title, as Markdown."""
    return f"## {clean_line(title)}\n\n" + md_table(headers, body)


def show_tables(tables: list[Any], output: Optional[str] = None) -> None:
    """Tables to the terminal, or as plain text to --output (atomically)."""
    if output is not None:
        write_atomic(output, tables_to_text(tables))
    else:
        print_tables(tables)


def tables_to_text(tables: list[Any], width: Optional[int] = None) -> str:
    """Render tables to plain text (for pipes and --output): no colour, no trailing spaces. mpg's own tables are
    laid out without importing Rich where that is exact (``output/plain_tables.py``); anything else by Rich."""
    from .output.plain_tables import render

    width = width or _output_width()
    text = render(tables, width)
    if text is not None:
        return text
    from rich.console import Console

    buf = io.StringIO()
    c = Console(file=buf, width=width or _output_width(), no_color=True, color_system=None, highlight=False,
                soft_wrap=False)
    for t in tables:
        c.print(t)
    return _strip(buf.getvalue())


# ---------------------------------------------------------------- writing

def write_atomic(path: str, text: str, flag: str = "--output") -> None:
    """Write ``text`` to ``path`` with the one safe writer (mpg_cli/safeio.py): atomic for regular files,
    through special files and symlinks, never onto one of the command's inputs, no temp file left behind."""
    from .safeio import write_output

    write_output(path, text, flag)


def emit(text: str, output: Optional[str]) -> None:
    """Machine-format text to stdout (directly, not through Rich) or to --output."""
    if output is not None:
        write_atomic(output, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
