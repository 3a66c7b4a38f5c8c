"""From parsed records to a ``LogSummary``: warm-up skipping, medians, derived figures; ``parse_log``.

Part of :mod:`mpg_cli.inputs.logs` (standard library and :mod:`mpg_cli.errors` only; nothing asserts).
"""

from __future__ import annotations

import statistics

from mpg_cli.errors import InputError, LogFormatError
from .base import LogSummary, _MIN_STEADY, _Parsed, _Record, _WARMUP_RATIO, _clean, _looks_binary
from .formats import _SPECS, _detect, _formats_list, _normalise_fmt

def _cost(rec: _Record, cost_field: str) -> float | None:
    """Bigger is slower: step time, or 1/throughput."""
    value = getattr(rec, cost_field)
    if value is None or value <= 0:
        return None
    return value if cost_field == "step_time_s" else 1.0 / value


def _median(values) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def _derive(rec: _Record, p: _Parsed, how: set[str]) -> None:
    """Fill per-record values that follow from what the log printed."""
    gb = rec.global_batch if rec.global_batch is not None else p.global_batch
    seq = rec.seq_length if rec.seq_length is not None else p.seq_length
    world = p.world_size
    if rec.step_time_s is None and gb and rec.samples_per_second:
        rec.step_time_s = gb / rec.samples_per_second
        how.add("step time = global batch / samples/s")
    if rec.tokens_per_second is None and rec.tokens_per_second_per_gpu is not None and world:
        rec.tokens_per_second = rec.tokens_per_second_per_gpu * world
        how.add(f"tokens/s = per-GPU tokens/s x {world} GPUs")
    if rec.tokens_per_second is None and gb and seq and rec.step_time_s:
        rec.tokens_per_second = gb * seq / rec.step_time_s
        how.add("tokens/s = global batch x seq length / step time")
    if rec.samples_per_second is None and gb and rec.step_time_s:
        rec.samples_per_second = gb / rec.step_time_s
        how.add("samples/s = global batch / step time")
    if rec.tokens_per_second_per_gpu is None and rec.tokens_per_second is not None and world:
        rec.tokens_per_second_per_gpu = rec.tokens_per_second / world
        how.add(f"per-GPU tokens/s = tokens/s / {world} GPUs (world size from the log)")


def _summarise(fmt: str, p: _Parsed, source: str, warmup: int | None, notes: list[str]) -> LogSummary:
    notes.extend(p.notes)
    if not p.records:
        raise LogFormatError(
            f"{source}: looks like a {fmt} log but has no throughput records "
            f"(expected {p.expected}); supported formats: {_formats_list()}",
            hint="log at least a few dozen training steps with timing enabled, or pass the right format",
        )
    how: set[str] = set()
    for rec in p.records:
        _derive(rec, p, how)
    total = len(p.records)
    records = [r for r in p.records if _cost(r, p.cost_field) is not None]
    if len(records) < total:
        notes.append(f"{total - len(records)} record(s) without a usable {p.cost_field} ignored")

    skipped = _warmup(p, records, total, source, warmup, notes)
    used = records[skipped:]

    step_time = _median(r.step_time_s for r in used)
    tps = _median(r.tokens_per_second for r in used)
    tps_gpu = _median(r.tokens_per_second_per_gpu for r in used)
    sps = _median(r.samples_per_second for r in used)
    tflops = _median(r.tflops_per_gpu for r in used)
    mfu = _median(r.mfu for r in used)
    if tflops is None and p.tflops_single is not None:
        tflops = p.tflops_single
    mems = [r.memory_bytes for r in used if r.memory_bytes is not None]
    peak = max(mems) if mems else p.peak_memory_bytes

    global_batch, seq_length = _batch_and_seq(p, used, notes)
    for text in sorted(how):
        notes.append(f"derived: {text}")
    if step_time is None and fmt != "deepspeed":
        notes.append("step time not found in the log")
    if tps is None:
        notes.append("whole-job tokens/s unknown (needs global batch and seq length, or per-GPU tokens/s and GPU count)")
    if warmup is not None and not p.whole_run:
        notes.append(f"warm-up: skipped exactly {skipped} record(s) as requested")
    return LogSummary(
        format=fmt,
        steps_total=total,
        steps_used=len(used),
        warmup_skipped=skipped,
        step_time_s=step_time,
        tokens_per_second=tps,
        tokens_per_second_per_gpu=tps_gpu,
        samples_per_second=sps,
        tflops_per_gpu=tflops,
        mfu=mfu,
        global_batch=global_batch,
        seq_length=seq_length,
        peak_memory_bytes=peak,
        notes=tuple(notes),
        world_size=p.world_size,
        layout=tuple(sorted(p.layout.items())),
    )


def _batch_and_seq(p: _Parsed, used: list[_Record], notes: list[str]) -> tuple[int | None, int | None]:
    """The last global batch and sequence length of the used records (else the log's), noting a changing batch."""
    gbs = [r.global_batch for r in used if r.global_batch is not None]
    global_batch = gbs[-1] if gbs else p.global_batch
    if len(set(gbs)) > 1:
        notes.append(f"global batch changed within the used records ({min(gbs)}..{max(gbs)}); reported the last")
    seqs = [r.seq_length for r in used if r.seq_length is not None]
    return global_batch, seqs[-1] if seqs else p.seq_length


def _warmup(p: _Parsed, records: list[_Record], total: int, source: str, warmup: int | None,
            notes: list[str]) -> int:
    """How many leading records to skip as warm-up: ``warmup`` when given, else the larger of 2 and a tenth,
    then each further record slower than _WARMUP_RATIO × the median of the rest; a LogFormatError when fewer
    than _MIN_STEADY remain. 0 for a log with only a whole-run average."""
    if p.whole_run:
        if warmup:
            notes.append("warm-up setting ignored: the log only has a whole-run average")
        return 0
    costs = [c for c in (_cost(r, p.cost_field) for r in records) if c is not None]  # all usable (filtered above)
    n = len(records)
    if warmup is not None:
        skipped = min(warmup, n)
    else:
        skipped = min(max(2, n // 10), n)
        rest = costs[skipped:]
        if rest:
            limit = _WARMUP_RATIO * statistics.median(rest)
            counted = skipped
            while skipped < n and costs[skipped] > limit:
                skipped += 1
            if skipped > counted:
                notes.append(
                    f"skipped {skipped - counted} more leading record(s) slower than "
                    f"{_WARMUP_RATIO}x the median of the rest"
                )
    used_n = n - skipped
    if used_n < _MIN_STEADY:
        raise LogFormatError(
            f"{source}: only {used_n} steady-state iterations (of {total} throughput records, "
            f"{skipped} skipped as warm-up); run longer or lower --warmup",
            hint=f"at least {_MIN_STEADY} records after warm-up are needed",
        )
    return skipped


def parse_log(text: str, source: str, *, warmup: int | None = None, fmt: str | None = None,
              notes: tuple[str, ...] = ()) -> LogSummary:
    """Parse a training log's text; ``source`` names it in messages (usually the path).

    ``warmup`` skips exactly that many leading throughput records instead of the
    automatic rule; ``fmt`` forces one of ``SUPPORTED_FORMATS`` instead of detecting it.
    """
    if warmup is not None and (isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0):
        raise InputError(f"warm-up must be a whole number >= 0, got {warmup!r}")
    forced = _normalise_fmt(fmt) if fmt is not None else None
    if not isinstance(text, str):
        raise LogFormatError(f"{source}: expected decoded text, got {type(text).__name__}")
    if not text.lstrip("\ufeff").strip():
        raise LogFormatError(
            f"{source}: the log is empty; supported formats: {_formats_list()}",
            hint="point calibrate at the stdout/stderr of a training run that got past a few dozen steps",
        )
    if _looks_binary(text):
        raise LogFormatError(
            f"{source}: looks like a binary file, not a text training log; supported formats: {_formats_list()}"
        )
    lines, terminated = _clean(text)
    all_notes: list[str] = list(notes)
    if forced is None:
        found, others = _detect("\n".join(lines))
        if found is None:
            raise LogFormatError(
                f"{source}: no training throughput records found in a recognised format; "
                f"supported formats: {_formats_list()}",
                hint="if the log is one of these, pass its format explicitly",
            )
        fmt_name = found
        if others:
            all_notes.append(f"also found {', '.join(others)} records; used {fmt_name} (pass the format to choose)")
    else:
        fmt_name = forced
    spec = _SPECS[fmt_name]
    if not terminated and lines and spec.marker.search(lines[-1]) and not spec.complete.search(lines[-1]):
        lines = lines[:-1]
        all_notes.append("ignored the last line: it is cut off (a partial record, no line end)")
    return _summarise(fmt_name, spec.parse(lines), source, warmup, all_notes)
