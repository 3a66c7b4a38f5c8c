"""One exception family and one set of exit codes for the whole tool.

Every user-facing failure raises an ``MpgError`` subclass; the core raises them too (this module imports
only the standard library). The CLI boundary (``mpg_cli.boundary.report_error``, called from
``mpg_cli.group.MpgGroup``) prints ``ERROR: …`` and, when present, ``TIP: …`` to stderr, or one
``GATE FAILED: …`` line per failed gate, and exits with ``exit_code``.
"""

from __future__ import annotations

import difflib
from enum import IntEnum
from typing import Iterable


class ExitCode(IntEnum):
    """Process exit codes: a contract for scripts and CI."""

    OK = 0
    GATE_FAILED = 1  # a requested gate (--max-days, --require-fit, ...) failed, or nothing fits
    BAD_INPUT = 2  # the input could not be understood


class MpgError(Exception):
    """Base of every error the CLI reports without a traceback."""

    exit_code: ExitCode = ExitCode.BAD_INPUT

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InputError(MpgError):
    """A flag value or combination of flags is invalid."""


class PresetError(MpgError):
    """A preset or input file is missing, malformed or inconsistent."""


class LayoutError(InputError):
    """A parallel layout is inconsistent (e.g. tp*pp*dp != gpus)."""


class LogFormatError(MpgError):
    """A training log could not be read or recognised."""


class GateFailed(MpgError):
    """A requested gate failed, or nothing fits (exit 1): raised after the command wrote its output.

    ``gates`` holds one line per failed gate (``gpu_hours 61,200 > 50,000 (+22.4%)``); the boundary prints
    each as ``GATE FAILED: …``. Without gates (``mpg fit``: no layout fits) the message prints as ``ERROR: …``.
    """

    exit_code = ExitCode.GATE_FAILED

    def __init__(self, message: str, hint: str | None = None, gates: Iterable[str] = ()) -> None:
        super().__init__(message, hint)
        self.gates = tuple(gates)

    @classmethod
    def of(cls, gates: Iterable[str]) -> GateFailed:
        """The failure for a list of failed gates."""
        lines = tuple(gates)
        return cls(f"{len(lines)} gate(s) failed", gates=lines)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """Return a 'did you mean X?' hint for the closest of ``choices``, if any is close."""
    matches = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"did you mean {matches[0]!r}?" if matches else None
