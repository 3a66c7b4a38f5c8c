"""The goodput model (core/goodput.py): each term, a direct simulation, limits, monotonicity and the CLI."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import examples

from mpg_cli.core.goodput import (FAILURES_PER_GPU_HOUR, checkpoint_bytes, expected_segment_s, model_goodput,
                                  simulate, young_daly_interval)

H = 3600.0


def _wall(steady: float, tau: float, write: float, restart: float, mtbf: float) -> float:
    return steady / tau * expected_segment_s(tau, write, restart, mtbf)


@pytest.mark.parametrize("write, mtbf", [(3.0, 11000.0), (60.0, 24 * H), (600.0, 200 * H)])
def test_young_daly_interval_is_the_optimum_of_the_expected_time(write, mtbf):
    """√(2·δ·M) minimises the exact expected wall time to within a few per cent of τ (δ ≪ M)."""
    taus = [young_daly_interval(write, mtbf) * (0.5 + i / 1000.0) for i in range(1001)]
    best = min(taus, key=lambda t: _wall(1e7, t, write, 600.0, mtbf))
    assert best == pytest.approx(math.sqrt(2 * write * mtbf), rel=0.05)
    # and the optimum is a real minimum: half or double the interval costs more
    tau = young_daly_interval(write, mtbf)
    assert _wall(1e7, tau, write, 600.0, mtbf) < _wall(1e7, tau / 2, write, 600.0, mtbf)
    assert _wall(1e7, tau, write, 600.0, mtbf) < _wall(1e7, tau * 2, write, 600.0, mtbf)


@pytest.mark.parametrize("steady, tau, write, restart, mtbf, seed", [
    (100 * H, 2 * H, 0.1 * H, 0.5 * H, 20 * H, 1),
    (50 * H, 1 * H, 0.05 * H, 0.2 * H, 5 * H, 2),
    (200 * H, 10 * H, 0.5 * H, 1.0 * H, 60 * H, 3),
])
def test_expected_losses_match_a_simulation_of_random_failures(steady, tau, write, restart, mtbf, seed):
    """The closed form's wall time and interruption count agree with a seeded Monte-Carlo of Poisson failures."""
    sim_wall, sim_fails = simulate(steady, tau, write, restart, mtbf, runs=1500, seed=seed)
    g = model_goodput(steady, 1, write * 1e9, H / mtbf, 1e9, restart - write, interval_s=tau)  # reload = write
    assert g.wall_s == pytest.approx(_wall(steady, tau, write, restart, mtbf), rel=1e-12)
    assert g.wall_s == pytest.approx(sim_wall, rel=0.02)
    assert g.interruptions_expected == pytest.approx(sim_fails, rel=0.05)
    parts = g.steady_s + g.lost_failures_s + g.lost_checkpoints_s + g.lost_restarts_s + g.lost_maintenance_s
    assert parts == pytest.approx(g.wall_s, rel=1e-12)
    assert min(g.lost_failures_s, g.lost_checkpoints_s, g.lost_restarts_s) > 0


def test_goodput_tends_to_one_as_the_failure_rate_vanishes():
    """With ever rarer failures (and free checkpoints) the goodput rises towards 1."""
    fr = [model_goodput(30 * 86400, 1024, 1e12, rate, 2e12, 600.0).fraction for rate in (1e-4, 1e-6, 1e-8, 1e-10)]
    assert fr == sorted(fr)
    assert fr[-1] > 0.9999
    assert model_goodput(30 * 86400, 1024, 1e12, 0.0, 2e12, 600.0).interruptions_expected == 0.0


def test_maintenance_fraction_takes_its_share_of_wall_time():
    """--maintenance-fraction f: the wall time is the failure model's divided by 1 − f."""
    a = model_goodput(1e6, 256, 1e11, 2e-5, 2e12, 600.0)
    b = model_goodput(1e6, 256, 1e11, 2e-5, 2e12, 600.0, maintenance_fraction=0.05)
    assert b.wall_s == pytest.approx(a.wall_s / 0.95, rel=1e-12)
    assert b.lost_maintenance_s == pytest.approx(0.05 * b.wall_s, rel=1e-9)


def test_async_checkpoint_blocks_less_and_cannot_outrun_storage():
    """Async: the blocking part is the device-to-host copy; the interval is at least the storage write."""
    sync = model_goodput(1e7, 1024, 5e12, 2e-5, 2e12, 600.0)
    asyn = model_goodput(1e7, 1024, 5e12, 2e-5, 2e12, 600.0, async_checkpoint=True)
    assert asyn.checkpoint_write_s < sync.checkpoint_write_s
    assert asyn.checkpoint_interval_s >= 5e12 / 2e12
    assert asyn.fraction >= sync.fraction


def test_checkpoint_bytes_are_weights_plus_optimizer_states():
    """A full checkpoint is 14 B/param with Adam (2 B 16-bit weights + 12 B fp32 master and moments)."""
    assert checkpoint_bytes(1e9) == 14e9
    assert checkpoint_bytes(1e9, 6.0) == 8e9


@settings(max_examples=examples(60, 600), deadline=None)
@given(n=st.integers(1, 1 << 16), k=st.integers(1, 8), ck=st.floats(1e9, 1e13), rate=st.floats(1e-7, 1e-4),
       bw=st.floats(1e10, 1e13), restart=st.floats(0.0, 3600.0), asyn=st.booleans(),
       steady=st.floats(1e5, 1e8))
def test_more_gpus_never_raise_goodput(n, k, ck, rate, bw, restart, asyn, steady):
    """At the same steady time, checkpoint and per-GPU state, more GPUs (more failures) never give a higher goodput."""
    share = ck / 64
    a = model_goodput(steady, n, ck, rate, bw, restart, async_checkpoint=asyn, copy_bytes_per_gpu=share).fraction
    b = model_goodput(steady, n * k, ck, rate, bw, restart, async_checkpoint=asyn, copy_bytes_per_gpu=share).fraction
    assert b <= a * (1 + 1e-9)


@settings(max_examples=examples(60, 600), deadline=None)
@given(n=st.integers(1, 1 << 16), ck=st.floats(1e9, 1e13), rate=st.floats(1e-7, 1e-4), bw=st.floats(1e10, 1e13),
       faster=st.floats(1.0, 100.0), restart=st.floats(0.0, 3600.0), asyn=st.booleans(), steady=st.floats(1e5, 1e8))
def test_a_shorter_checkpoint_write_never_lowers_goodput(n, ck, rate, bw, faster, restart, asyn, steady):
    """Faster storage (a shorter write and reload) never lowers the goodput."""
    a = model_goodput(steady, n, ck, rate, bw, restart, async_checkpoint=asyn).fraction
    b = model_goodput(steady, n, ck, rate, bw * faster, restart, async_checkpoint=asyn).fraction
    assert b >= a * (1 - 1e-9)


def test_default_rate_is_llama3s_interruptions():
    """The default failure rate is Llama 3's 419 unexpected interruptions in 54 days on 16,384 GPUs."""
    assert FAILURES_PER_GPU_HOUR == pytest.approx(419 / (54 * 24 * 16384))
    assert 1.9e-5 < FAILURES_PER_GPU_HOUR < 2.1e-5


# ---------------------------------------------------------------- CLI

def test_llama3_405b_full_run_reports_llama3_like_interruptions_and_goodput(invoke_json):
    """Llama 3 405B on 16,384 H100s: 6-10 interruptions a day, 85-97 % effective training time, each part shown."""
    d = invoke_json("estimate", "-m", "llama3-405b", "-c", "dgx-h100", "-n", "16384", "--tokens", "15T")
    g = d["goodput"]
    assert g["source"] == "model"
    assert 6.0 <= g["interruptions_per_day"] <= 10.0
    assert 0.85 <= g["fraction"] <= 0.97
    assert all(g["lost_s"][k] > 0 for k in ("failures", "checkpoints", "restarts"))
    assert g["checkpoint_bytes"] == pytest.approx(14 * d["params"]["total"])
    assert g["checkpoint_interval_s"] == pytest.approx(math.sqrt(2 * g["checkpoint_write_s"] * g["job_mtbf_hours"] * H))
    t = d["time"]
    assert t["days"] == pytest.approx(t["steady_state_days"] / g["fraction"])
    assert d["gpu_hours"] == pytest.approx(16384 * t["seconds"] / H)
    assert any("Llama 3 §3.3.4" in a and "--failures-per-gpu-hour" in a and "--storage-tb-s" in a
               and "--restart-minutes" in a for a in d["assumptions"])


def test_llama3_405b_table_shows_the_goodput_parts(invoke):
    """The table lists goodput, interruptions, checkpoints and the time lost to each cause."""
    out = invoke("estimate", "-m", "llama3-405b", "-c", "dgx-h100", "-n", "16384", "--tokens", "15T").stdout
    for text in ("effective training time", "expected (", "/day; job MTBF", "blocking each", "failures (redone work)",
                 "restarts", "(80%:"):
        assert text in out


def test_a_64_gpu_one_week_run_keeps_goodput_above_97_percent(invoke_json):
    """64 H100s for about a week lose under 3 % to failures, checkpoints and restarts."""
    d = invoke_json("estimate", "-m", "llama3-8b", "-c", "dgx-h100", "-n", "64", "--tokens", "350B")
    assert 4 <= d["time"]["days"] <= 10
    assert d["goodput"]["fraction"] > 0.97


def test_fixed_goodput_overrides_the_model(invoke_json):
    """--goodput 0.8 fixes the fraction: wall = steady / 0.8, no breakdown."""
    d = invoke_json("estimate", "-m", "gpt-1.7b", "-n", "8", "--tokens", "20B", "--goodput", "0.8")
    assert d["goodput"]["source"] == "fixed"
    assert d["time"]["days"] == pytest.approx(d["time"]["steady_state_days"] / 0.8)


def test_goodput_flags_change_the_answer(invoke_json):
    """A higher failure rate, a slower restart or slower storage each lower the goodput; async raises it."""
    base = ("estimate", "-m", "llama3-70b", "-c", "dgx-h100", "-n", "2048", "--tokens", "2T")
    g0 = invoke_json(*base)["goodput"]["fraction"]
    assert invoke_json(*base, "--failures-per-gpu-hour", "1e-4")["goodput"]["fraction"] < g0
    assert invoke_json(*base, "--restart-minutes", "60")["goodput"]["fraction"] < g0
    assert invoke_json(*base, "--storage-tb-s", "0.05")["goodput"]["fraction"] < g0
    assert invoke_json(*base, "--storage-tb-s", "0.05", "--async-checkpoint")["goodput"]["fraction"] > \
        invoke_json(*base, "--storage-tb-s", "0.05")["goodput"]["fraction"]
    d = invoke_json(*base, "--checkpoint-minutes", "30")
    assert d["goodput"]["checkpoint_interval_s"] == pytest.approx(1800.0)


@pytest.mark.parametrize("flag, value", [("--failures-per-gpu-hour", "-1"), ("--failures-per-gpu-hour", "2"),
                                         ("--storage-tb-s", "0"), ("--restart-minutes", "nan"),
                                         ("--checkpoint-minutes", "0"), ("--maintenance-fraction", "0.95"),
                                         ("--interval", "0.3"), ("--interval", "1")])
def test_bad_goodput_flags_are_input_errors(invoke, flag, value):
    """Out-of-range goodput and range flags exit 2 with one ERROR line."""
    res = invoke("estimate", "-m", "gpt-1.7b", "-n", "8", flag, value)
    assert res.exit_code == 2
    assert res.stderr.startswith("ERROR: ")


def test_cluster_preset_failure_keys(tmp_path, invoke_json, invoke):
    """A cluster's mtbf_hours or failures_per_gpu_hour and storage_tb_s are used; both rate keys is an error."""
    base = ("gpu: h100-sxm\ngpus_per_node: 8\nnodes: 128\nintra_node_gb_s: 450\ninter_node_gb_s: 50\n")
    (tmp_path / "c1.yaml").write_text(base + "mtbf_hours: 10000\nstorage_tb_s: 0.5\n")
    (tmp_path / "c2.yaml").write_text(base + "mtbf_hours: 10000\nfailures_per_gpu_hour: 0.0001\n")
    d = invoke_json("estimate", "-m", "llama3-8b", "-c", str(tmp_path / "c1.yaml"), "-n", "1024", "--tokens", "1T")
    assert d["goodput"]["job_mtbf_hours"] == pytest.approx(10000 / 1024)
    assert d["goodput"]["checkpoint_write_s"] == pytest.approx(d["goodput"]["checkpoint_bytes"] / 0.5e12)
    assert any("preset" in a and "goodput" in a for a in d["assumptions"])
    res = invoke("estimate", "-m", "llama3-8b", "-c", str(tmp_path / "c2.yaml"), "-n", "1024")
    assert res.exit_code == 2 and "both given" in res.stderr
