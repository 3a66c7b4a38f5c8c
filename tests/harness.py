"""Shared test harness: Hypothesis profiles (fast by default, thorough on demand) and a hard time limit for one
CLI invocation (SIGALRM), for the fuzz and hostile layers.

Profiles (issue 11: "a fast default, a thorough one on demand"): ``fast`` is loaded unless
``HYPOTHESIS_PROFILE=thorough`` (or the older ``MPG_FUZZ=thorough``) is set, or pytest is given
``--hypothesis-profile thorough``. A test asks for its example count with ``examples(fast, thorough)``.
"""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from typing import Any, Iterator

from hypothesis import HealthCheck, settings

FAST, THOROUGH = "fast", "thorough"
# Every property here runs real searches or CLI invocations (tens of ms an example): no per-example deadline, and
# Hypothesis' "too slow" health check is expected, not a fault. Examples for tests that name no count of their own:
# The fast profile is derandomized (the same examples every run: CI does not flake on a new random draw); the
# thorough one draws new examples each run, to find what the fixed set misses.
settings.register_profile(FAST, max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(THOROUGH, max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def profile_from_env(environ: Any = os.environ) -> str:
    """The profile the environment asks for: HYPOTHESIS_PROFILE, else 'thorough' for MPG_FUZZ=thorough, else 'fast'."""
    name = environ.get("HYPOTHESIS_PROFILE", "").strip().lower()
    if name:
        return name
    return THOROUGH if environ.get("MPG_FUZZ", "").strip().lower() == THOROUGH else FAST


def thorough() -> bool:
    """True when the thorough profile is active (also with pytest's --hypothesis-verbosity, which renames it)."""
    return settings.get_current_profile_name().startswith(THOROUGH)


def examples(fast: int, thorough_count: int | None = None) -> int:
    """``max_examples`` for one test: ``fast`` by default, ``thorough_count`` (10 × ``fast`` if not given) when the
    thorough profile is active. Called when the test module is imported, after the profile is loaded."""
    if thorough():
        return thorough_count if thorough_count is not None else 10 * fast
    return fast


class Hang(BaseException):
    """An invocation ran past its limit (BaseException: the CLI cannot swallow it)."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ``Hang`` in the main thread when the block runs longer than ``seconds``."""
    def on_alarm(signum: int, frame: Any) -> None:
        raise Hang(f"mpg invocation still running after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
