"""Shared test harness: a hard time limit for one CLI invocation (SIGALRM), for the fuzz and hostile layers."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Any, Iterator


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
