"""Tests for mpg_cli.logparse: steady-state throughput from real-looking training logs.

Each fixture in tests/fixtures/logs was written around known design values: the
steady-state records are one record exactly at the design value plus equally many
records above and below it (noise within +-3%), so the steady-state median is
exactly the design value. Warm-up records are clearly slower. The constants below
restate each design; expected values are computed from them, not from the parser.
"""

from __future__ import annotations

import ast
import math
import random
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import examples

from mpg_cli import logparse
from mpg_cli.errors import InputError, LogFormatError
from mpg_cli.logparse import SUPPORTED_FORMATS, LogSummary, detect_format, parse_log

LOGS = Path(__file__).parent / "fixtures" / "logs"
GiB = 2**30
MiB = 2**20


def read(name: str) -> str:
    return (LOGS / name).read_text(encoding="utf-8", errors="replace")


def parse(name: str, **kw) -> LogSummary:
    return parse_log(read(name), name, **kw)


def close(actual, expected, rel=0.01) -> bool:
    return actual is not None and math.isclose(actual, expected, rel_tol=rel)


# --------------------------------------------------------------------------- designs

# megatron.log: 31 records every 10 iterations; 3 counted + 1 slow (>1.5x) warm-up
MEG_STEP_MS, MEG_TFLOPS, MEG_GB, MEG_SEQ, MEG_WORLD = 11200.0, 145.0, 256, 4096, 256
MEG_MAX_ALLOCATED_MB = 61234.5  # the highest 'max allocated' over the rank reports
# megatron_old.log: no timestamps, no throughput field, no arguments block
OLD_STEP_MS, OLD_GB = 2500.0, 512
# nemo.log: Lightning tqdm bar ('\r' separated), 40 steps (one redrawn twice), 64 GPUs
NEMO_STEP, NEMO_GB, NEMO_SEQ, NEMO_WORLD = 6.4, 256, 4096, 64
# nemo2_truncated.log: NeMo 2 lines, 26 complete records + a cut-off last line
NEMO2_STEP, NEMO2_GB, NEMO2_TFLOPS = 2.2, 128, 412.5
# torchtitan.log: 8 GPUs FSDP, local batch 2, seq 8192, logged at steps 1,10,..,300
TT_LOCAL_BATCH, TT_SEQ, TT_GPUS, TT_STEP, TT_TFLOPS, TT_PEAK_TFLOPS = 2, 8192, 8, 4.0, 250.0, 989.0
TT_TPS = round(TT_LOCAL_BATCH * TT_SEQ / TT_STEP)  # per GPU
TT_PEAK_MEM_GIB = 61.37
# torchtitan_old.log: ANSI colours, 'wps', local batch 8, seq 2048
TTO_TPS = round(8 * 2048 / 5.5)
TTO_MFU_PCT = 41.35
# hf_trainer.log: final summary of a 200-step run
HF_RUNTIME, HF_STEPS, HF_SAMPLES_PER_S, HF_GB = 1234.5, 200, 20.737, 128
# hf_trainer_killed.log: no summary; tqdm s/it median
HFK_STEP = 6.25
# deepspeed.log: train_batch_size 512, CurrSamplesPerSec median 51.2, max_seq_len 2048, 64 GPUs
DS_GB, DS_SPS, DS_SEQ, DS_WORLD, DS_PROFILER_TFLOPS, DS_PEAK_GIB = 512, 51.2, 2048, 64, 148.37, 30.12

FIXTURE_FORMATS = {
    "megatron.log": "megatron",
    "megatron_old.log": "megatron",
    "nemo.log": "nemo",
    "nemo2_truncated.log": "nemo",
    "torchtitan.log": "torchtitan",
    "torchtitan_old.log": "torchtitan",
    "hf_trainer.log": "hf-trainer",
    "hf_trainer_killed.log": "hf-trainer",
    "deepspeed.log": "deepspeed",
}


# --------------------------------------------------------------------------- per format


def test_megatron_medians():
    """Megatron: median step time, TFLOP/s and derived tokens/s match the fixture design."""
    s = parse("megatron.log")
    step = MEG_STEP_MS / 1000
    assert s.format == "megatron"
    assert close(s.step_time_s, step)
    assert close(s.tflops_per_gpu, MEG_TFLOPS)
    assert close(s.tokens_per_second, MEG_GB * MEG_SEQ / step)
    assert close(s.tokens_per_second_per_gpu, MEG_GB * MEG_SEQ / step / MEG_WORLD)
    assert close(s.samples_per_second, MEG_GB / step)
    assert (s.global_batch, s.seq_length) == (MEG_GB, MEG_SEQ)
    assert s.mfu is None
    assert any("throughput per GPU" in n for n in s.notes)


def test_megatron_warmup_count_and_slow_record():
    """Megatron: 3 counted warm-up records (10% of 31) plus 1 record >1.5x the median are skipped."""
    s = parse("megatron.log")
    assert (s.steps_total, s.warmup_skipped, s.steps_used) == (31, 4, 27)
    assert any("1.5x" in n for n in s.notes)


def test_megatron_memory_mb_is_mib():
    """Megatron: peak memory is the highest 'max allocated', with Megatron's MB read as MiB."""
    s = parse("megatron.log")
    assert s.peak_memory_bytes == pytest.approx(MEG_MAX_ALLOCATED_MB * MiB)


def test_megatron_old_format_without_throughput_field():
    """Older Megatron lines (no timestamp, no TFLOP/s field) still give step time; TFLOP/s stays None."""
    s = parse("megatron_old.log")
    assert close(s.step_time_s, OLD_STEP_MS / 1000)
    assert s.tflops_per_gpu is None
    assert s.tokens_per_second is None  # no seq length anywhere in this log
    assert close(s.samples_per_second, OLD_GB / (OLD_STEP_MS / 1000))
    assert (s.steps_total, s.warmup_skipped, s.steps_used) == (13, 2, 11)


def test_megatron_deepspeed_fields():
    """Megatron-DeepSpeed lines: 'TFLOPs', 'samples per second', 'tgs' and 'actual seqlen' are read."""
    lines = []
    for i in range(10):
        ms = 20000.0 if i < 2 else [990.0, 1000.0, 1010.0, 995.0, 1005.0, 1000.0, 1002.0, 998.0][i - 2]
        lines.append(
            f" iteration {10 * (i + 1)}/ 1000 | consumed samples: {640 * (i + 1)} | consumed tokens: {1310720 * (i + 1)} | "
            f"elapsed time per iteration (ms): {ms} | learning rate: 1.0E-04 | global batch size: 64 | lm loss: 3.0E+00 | "
            f"loss scale: 1.0 | actual seqlen:  2048 | number of skipped iterations:   0 | number of nan iterations:   0 | "
            f"samples per second: {64000 / ms:.3f} | tokens per gpu per second (tgs): {64 * 2048 * 1000 / ms / 8:.1f} | "
            f"TFLOPs: {150.0 * 1000 / ms:.2f} |"
        )
    s = parse_log("\n".join(lines) + "\n", "mds.log")
    assert s.format == "megatron"
    assert close(s.step_time_s, 1.0)
    assert close(s.tflops_per_gpu, 150.0)
    assert close(s.samples_per_second, 64.0)
    assert close(s.tokens_per_second_per_gpu, 64 * 2048 / 8)
    assert close(s.tokens_per_second, 64 * 2048 / 1.0)
    assert s.seq_length == 2048
    assert any("Megatron-DeepSpeed" in n for n in s.notes)


def test_nemo_progress_bar():
    """NeMo 1 tqdm bar: median train_step_timing, batch from config, tokens/s for 64 GPUs."""
    s = parse("nemo.log")
    assert s.format == "nemo"
    assert close(s.step_time_s, NEMO_STEP)
    assert close(s.tokens_per_second, NEMO_GB * NEMO_SEQ / NEMO_STEP)
    assert close(s.tokens_per_second_per_gpu, NEMO_GB * NEMO_SEQ / NEMO_STEP / NEMO_WORLD)
    assert (s.global_batch, s.seq_length) == (NEMO_GB, NEMO_SEQ)


def test_nemo_redrawn_step_counted_once_and_warmup():
    """NeMo: a step tqdm redraws is one record; 4 counted + 1 slow warm-up records are skipped."""
    s = parse("nemo.log")
    assert (s.steps_total, s.warmup_skipped, s.steps_used) == (40, 5, 35)


def test_nemo_unterminated_but_complete_last_segment_is_kept():
    """NeMo: a killed run's last tqdm segment has no line end but is whole, so it is kept silently."""
    text = read("nemo.log")
    assert not text.endswith(("\n", "\r"))
    s = parse_log(text, "nemo.log")
    assert s.steps_total == 40
    assert not any("cut off" in n for n in s.notes)


def test_nemo2_lines_and_truncated_last_record():
    """NeMo 2: step time and TFLOPS_per_GPU medians; the cut-off final record is ignored with a note."""
    s = parse("nemo2_truncated.log")
    assert s.format == "nemo"
    assert close(s.step_time_s, NEMO2_STEP)
    assert close(s.tflops_per_gpu, NEMO2_TFLOPS)
    assert s.global_batch == NEMO2_GB
    assert (s.steps_total, s.warmup_skipped, s.steps_used) == (26, 3, 23)
    assert any("cut off" in n for n in s.notes)


def test_torchtitan_medians():
    """torchtitan: median tps, tflops, step time (from timestamps) and job tokens/s match the design."""
    s = parse("torchtitan.log")
    assert s.format == "torchtitan"
    assert close(s.tokens_per_second_per_gpu, TT_TPS)
    assert close(s.tflops_per_gpu, TT_TFLOPS)
    assert close(s.step_time_s, TT_STEP)
    assert close(s.tokens_per_second, TT_TPS * TT_GPUS)
    assert close(s.tokens_per_second, TT_LOCAL_BATCH * TT_GPUS * TT_SEQ / TT_STEP)
    assert (s.global_batch, s.seq_length) == (TT_LOCAL_BATCH * TT_GPUS, TT_SEQ)
    assert (s.steps_total, s.warmup_skipped, s.steps_used) == (31, 4, 27)


def test_torchtitan_mfu_percent_to_fraction():
    """torchtitan prints mfu as a percentage; the summary holds a 0-1 fraction."""
    s = parse("torchtitan.log")
    assert close(s.mfu, TT_TFLOPS / TT_PEAK_TFLOPS)
    assert 0 < s.mfu < 1
    assert close(parse("torchtitan_old.log").mfu, TTO_MFU_PCT / 100)


def test_torchtitan_memory_gib():
    """torchtitan 'memory: 61.37GiB(..%)' becomes bytes (2^30 per GiB); max over used records."""
    s = parse("torchtitan.log")
    assert s.peak_memory_bytes == pytest.approx(TT_PEAK_MEM_GIB * GiB)


def test_torchtitan_old_ansi_and_wps():
    """Older torchtitan: ANSI colour codes are stripped and 'wps' is read as per-GPU tokens/s."""
    text = read("torchtitan_old.log")
    assert "\x1b[" in text
    s = parse_log(text, "old.log")
    assert s.format == "torchtitan"
    assert close(s.tokens_per_second_per_gpu, TTO_TPS)
    assert s.tflops_per_gpu is None
    assert (s.steps_total, s.warmup_skipped, s.steps_used) == (13, 2, 11)


def test_torchtitan_escape_less_colour_codes():
    """torchtitan colour codes whose ESC byte was lost ('[31mstep:') are stripped too."""
    text = read("torchtitan.log").replace("\x1b", "")
    s = parse_log(text, "t.log")
    assert close(s.tokens_per_second_per_gpu, TT_TPS)


def test_torchtitan_other_ranks_ignored():
    """torchtitan: when several ranks print step lines, only the lowest rank's are used."""
    lines = read("torchtitan.log").splitlines()
    extra = [ln.replace("[rank0]:", "[rank3]:").replace("tps: ", "tps: 1") for ln in lines if "step:" in ln]
    s = parse_log("\n".join(lines + extra) + "\n", "t.log")
    assert s.steps_total == 31
    assert close(s.tokens_per_second_per_gpu, TT_TPS)
    assert any("rank" in n for n in s.notes)


def test_hf_trainer_summary():
    """HF Trainer: whole-run average from the final summary, steps_used 1, noted as such."""
    s = parse("hf_trainer.log")
    assert s.format == "hf-trainer"
    assert close(s.step_time_s, HF_RUNTIME / HF_STEPS)
    assert close(s.step_time_s, 1 / 0.162)  # 1 / train_steps_per_second
    assert close(s.samples_per_second, HF_SAMPLES_PER_S)
    assert s.global_batch == HF_GB
    assert (s.steps_total, s.steps_used, s.warmup_skipped) == (1, 1, 0)
    assert any("whole-run average" in n for n in s.notes)


def test_hf_trainer_killed_uses_tqdm_rate():
    """HF Trainer without a summary: tqdm's s/it on the training bar (not the eval bar) is used."""
    s = parse("hf_trainer_killed.log")
    assert close(s.step_time_s, HFK_STEP)
    assert (s.steps_total, s.warmup_skipped, s.steps_used) == (31, 4, 27)
    assert any("tqdm" in n for n in s.notes)


def test_deepspeed_medians():
    """DeepSpeed: median CurrSamplesPerSec, step time = train_batch_size / samples/s, tokens/s."""
    s = parse("deepspeed.log")
    step = DS_GB / DS_SPS
    assert s.format == "deepspeed"
    assert close(s.samples_per_second, DS_SPS)
    assert close(s.step_time_s, step)
    assert close(s.tokens_per_second, DS_GB * DS_SEQ / step)
    assert close(s.tokens_per_second_per_gpu, DS_GB * DS_SEQ / step / DS_WORLD)
    assert close(s.tflops_per_gpu, DS_PROFILER_TFLOPS)
    assert (s.steps_total, s.warmup_skipped, s.steps_used) == (31, 4, 27)
    assert any("flops profiler" in n for n in s.notes)


def test_deepspeed_memory_gb_is_gib():
    """DeepSpeed MaxMemAllocated 'GB' is GiB (DeepSpeed divides by 2^30)."""
    s = parse("deepspeed.log")
    assert s.peak_memory_bytes == pytest.approx(DS_PEAK_GIB * GiB)


def test_deepspeed_without_batch_size_has_no_step_time():
    """DeepSpeed without a train_batch_size line: samples/s still reported, step time None, noted."""
    text = "\n".join(ln for ln in read("deepspeed.log").splitlines() if "train_batch_size" not in ln) + "\n"
    s = parse_log(text, "ds.log")
    assert close(s.samples_per_second, DS_SPS)
    assert s.step_time_s is None
    assert any("train_batch_size" in n for n in s.notes)


def test_memory_unit_conversion():
    """Memory units: GB/MB are decimal unless the framework means binary; GiB/MiB are binary."""
    assert logparse._to_bytes(1.5, "GB") == 1.5e9
    assert logparse._to_bytes(1.5, "GiB") == 1.5 * GiB
    assert logparse._to_bytes(100.0, "MiB") == 100 * MiB
    assert logparse._to_bytes(100.0, "MB", binary=True) == 100 * MiB
    assert logparse._to_bytes(2.0, "GB", binary=True) == 2 * GiB
    assert logparse._to_bytes(1.0, "furlongs") is None


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize("name,fmt", sorted(FIXTURE_FORMATS.items()))
def test_detection(name, fmt):
    """detect_format names the framework that wrote each fixture."""
    assert detect_format(read(name)) == fmt


def test_unknown_format_lists_supported_formats():
    """An unrecognised log raises LogFormatError listing every supported format."""
    with pytest.raises(LogFormatError) as e:
        detect_format(read("unknown.log"))
    for fmt in SUPPORTED_FORMATS:
        assert fmt in e.value.message
    with pytest.raises(LogFormatError) as e:
        parse_log(read("unknown.log"), "unknown.log")
    assert "unknown.log" in e.value.message
    assert all(fmt in e.value.message for fmt in SUPPORTED_FORMATS)


def test_recognised_framework_without_records():
    """A log with a framework's fingerprints but no throughput lines says so, naming the source."""
    text = "[2024-05-01 10:00:00,000] [INFO] [logging.py:96:log_dist] [Rank 0] step=10, skipped=0, lr=[0.0001], mom=[(0.9, 0.95)]\n"
    with pytest.raises(LogFormatError) as e:
        parse_log(text, "ds-no-timer.log")
    assert "ds-no-timer.log" in e.value.message and "deepspeed" in e.value.message
    assert all(fmt in e.value.message for fmt in SUPPORTED_FORMATS)


def test_forced_format_and_aliases():
    """fmt= forces a format (aliases accepted); an unknown name is an InputError with a hint."""
    assert parse("megatron.log", fmt="Megatron-LM").format == "megatron"
    assert parse("hf_trainer.log", fmt="hf").format == "hf-trainer"
    with pytest.raises(LogFormatError):
        parse("megatron.log", fmt="torchtitan")  # no torchtitan records in it
    with pytest.raises(InputError) as e:
        parse("megatron.log", fmt="megatorn")
    assert "megatron" in (e.value.hint or "")


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("text", ["", "   \n\n", "\ufeff"])
def test_empty_log(text):
    """An empty (or blank) file raises LogFormatError naming the source and the formats."""
    with pytest.raises(LogFormatError) as e:
        parse_log(text, "empty.log")
    assert "empty.log" in e.value.message and "is empty" in e.value.message
    assert all(fmt in e.value.message for fmt in SUPPORTED_FORMATS)
    assert read("empty.log") == ""


def test_binary_garbage():
    """Binary garbage (decoded with replacement) raises LogFormatError, not a crash."""
    rng = random.Random(0)
    blob = bytes(rng.randrange(256) for _ in range(20000)).decode("utf-8", errors="replace")
    with pytest.raises(LogFormatError) as e:
        parse_log(blob, "core.bin")
    assert "core.bin" in e.value.message


@pytest.mark.parametrize(
    "name,marker,chop",
    [
        ("megatron.log", "iteration", 40),
        ("megatron.log", "iteration", 2),
        ("torchtitan.log", "step:", 8),  # cuts 'mfu: 25.31%' to 'mfu: 25.3'
        ("deepspeed.log", "CurrSamplesPerSec", 4),
        ("nemo.log", "train_step_timing", 10),
        ("hf_trainer_killed.log", "s/it", 5),
    ],
)
def test_truncated_final_line_ignored(name, marker, chop):
    """A final record cut off mid-line is ignored with a note; the rest still parses."""
    full = parse(name)
    text = read(name)
    end = text.rfind(marker)
    end = min(i for i in (text.find("\n", end), text.find("\r", end), len(text)) if i >= 0)
    s = parse_log(text[: end - chop], name)  # the log stops inside the last record
    assert s.format == full.format
    assert s.steps_total == full.steps_total - 1
    assert any("cut off" in n for n in s.notes)


def test_complete_final_line_without_newline_kept():
    """A whole final record that merely lacks a line end is kept."""
    full = parse("megatron.log")
    s = parse_log(read("megatron.log").rstrip("\n"), "megatron.log")
    assert s.steps_total == full.steps_total
    assert not any("cut off" in n for n in s.notes)


# --------------------------------------------------------------------------- warm-up


def test_warmup_override_is_exact():
    """warmup=N skips exactly N records (no extra slow-record rule)."""
    s = parse("megatron.log", warmup=0)
    assert (s.warmup_skipped, s.steps_used) == (0, 31)
    s = parse("megatron.log", warmup=10)
    assert (s.warmup_skipped, s.steps_used) == (10, 21)
    assert any("exactly 10" in n for n in s.notes)


def test_too_few_steady_records():
    """Fewer than 3 records after warm-up raises 'only N steady-state iterations'."""
    with pytest.raises(LogFormatError) as e:
        parse("megatron.log", warmup=29)
    assert "only 2 steady-state iterations" in e.value.message
    assert "lower --warmup" in e.value.message
    short = "\n".join(read("megatron.log").splitlines()[:40]) + "\n"  # 4 iteration lines
    with pytest.raises(LogFormatError) as e:
        parse_log(short, "short.log")
    assert "steady-state iterations" in e.value.message and "short.log" in e.value.message


def test_bad_warmup_value():
    """A negative or non-integer warmup is an InputError."""
    for bad in (-1, 1.5, True):
        with pytest.raises(InputError):
            parse("megatron.log", warmup=bad)


def _megatron_lines(times_ms):
    return "".join(
        f" iteration {i + 1:>6}/ 1000 | consumed samples: {(i + 1) * 8} | elapsed time per iteration (ms): {ms:.3f} | "
        f"global batch size: 8 | lm loss: 2.0E+00 |\n"
        for i, ms in enumerate(times_ms)
    )


@settings(max_examples=examples(60, 600), deadline=None)
@given(
    st.integers(min_value=0, max_value=6),
    st.integers(min_value=2, max_value=40),
    st.floats(min_value=50.0, max_value=50000.0),
    st.randoms(use_true_random=False),
)
def test_median_recovered_under_noise(n_slow, half, design_ms, rng):
    """Property: slow warm-up lines are skipped and the median equals the design value exactly."""
    offsets = [rng.uniform(0.001, 0.03) for _ in range(half)] + [-rng.uniform(0.001, 0.03) for _ in range(half)] + [0.0]
    rng.shuffle(offsets)
    warm = [design_ms * rng.uniform(2.0, 6.0) for _ in range(n_slow)]
    n = n_slow + len(offsets)
    s = parse_log(_megatron_lines(warm + [design_ms * (1 + e) for e in offsets]), "p.log")
    assert s.warmup_skipped == max(n_slow, 2, n // 10)
    assert s.step_time_s == pytest.approx(design_ms / 1000, rel=0.03)
    if s.warmup_skipped == n_slow:  # only the slow lines went: the median is the design record
        assert s.step_time_s == pytest.approx(round(design_ms, 3) / 1000, rel=1e-6)


# --------------------------------------------------------------------------- module hygiene


def test_module_imports_and_no_asserts():
    """The log reader (mpg_cli/inputs/logs/, one module per dialect) imports only the standard library, mpg_cli.errors,
    the Megatron argument reader and its own modules, and never asserts."""
    files = sorted((Path(logparse.__file__).parent / "inputs" / "logs").glob("*.py"))
    assert {f.stem for f in files} >= {"megatron", "nemo", "torchtitan", "hf_trainer", "deepspeed"}
    allowed = set(sys.stdlib_module_names) | {"__future__"}
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            assert not isinstance(node, ast.Assert), path.name
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] in allowed for a in node.names), path.name
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 1 or node.module in ("mpg_cli.errors", "mpg_cli.inputs.megatron_args") or \
                    (node.module or "").split(".")[0] in allowed, path.name
