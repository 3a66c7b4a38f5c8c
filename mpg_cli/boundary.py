"""The one error boundary around every mpg invocation.

Whatever happens inside a command ends as one of these, never a traceback:

* ``MpgError`` (and Click usage errors such as ``--tp abc`` or ``--zero 4``): ``ERROR: …`` plus
  ``TIP: …`` on stderr, through ``report``, exit 2 (a gate failure exits 1);
* Ctrl-C (``KeyboardInterrupt``): the line ``Interrupted.``, exit 130 (128 + SIGINT, the shell convention);
* a closed or broken stdout (``mpg validate | head -c 10``, ``mpg --version >&-``): quiet, exit 141
  (128 + SIGPIPE, what the shell reports for a process killed by a broken pipe);
* stdout that cannot take the output (``> /dev/full``): ``ERROR: cannot write to standard output``, exit 2.

Streams whose encoding cannot show a character (``PYTHONIOENCODING=ascii``, a C locale) degrade to
ASCII (``×`` → ``x``, ``—`` → ``-``, others ``?``) instead of raising ``UnicodeEncodeError``.
"""

from __future__ import annotations

import codecs
import errno
import os
import sys
from typing import Any, Callable

EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
MAX_LINE = 600  # characters of one ERROR/TIP line

_ASCII = {"×": "x", "—": "-", "–": "-", "·": ".", "µ": "u", "•": "*", "…": "...", "≈": "~", "→": "->", "±": "+/-",
          "‘": "'", "’": "'", "“": '"', "”": '"', "≤": "<=", "≥": ">=", "÷": "/", "²": "^2", "│": "|", "─": "-",
          "━": "-", "┃": "|", "╇": "+", "┼": "+", "\u00a0": " "}


def _ascii_fallback(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    bad = exc.object[exc.start:exc.end]
    return "".join(_ASCII.get(ch, "?") for ch in bad), exc.end


codecs.register_error("mpg-ascii", _ascii_fallback)


class _Closed:
    """Stands in for a closed stdout/stderr (``>&-``): any write is a broken pipe."""

    encoding = "utf-8"
    errors = "strict"

    def write(self, text: str) -> int:
        raise BrokenPipeError(errno.EPIPE, "stream closed")

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError(errno.EBADF, "stream closed")


class _Discard(_Closed):
    def write(self, text: str) -> int:
        return len(text)


def prepare_streams() -> None:
    """Closed streams become stand-ins; streams that cannot encode everything degrade to ASCII."""
    if sys.stdout is None:
        sys.stdout = _Closed()  # type: ignore[assignment]
    if sys.stderr is None:
        sys.stderr = _Discard()  # type: ignore[assignment]  # nowhere to say anything: keep the exit code
    for stream in (sys.stdout, sys.stderr):
        enc = (getattr(stream, "encoding", None) or "").lower().replace("_", "-")
        if enc.startswith("utf") or not hasattr(stream, "reconfigure"):
            continue
        try:
            stream.reconfigure(errors="mpg-ascii")
        except (ValueError, OSError, AttributeError):
            pass


def report(message: str, hint: str | None = None) -> None:
    """The one ``ERROR:``/``TIP:`` formatter (user text in either is escaped: one line each)."""
    from .sanitize import clean_line

    def short(text: str) -> str:  # a 5,000-digit value echoed back stays one readable line
        text = clean_line(text)
        return text if len(text) <= MAX_LINE else text[: MAX_LINE - 12] + " …(cut)"

    try:
        sys.stderr.write(f"ERROR: {short(message)}\n")
        if hint:
            sys.stderr.write(f"TIP: {short(hint)}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr is gone too: the exit code still says what happened


def _silence_stdout() -> None:
    """After a broken pipe: point fd 1 at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
    try:
        sys.stdout = _Discard()  # type: ignore[assignment]
    except Exception:  # noqa: BLE001
        pass


def _usage_message(exc: Any) -> tuple[str, str]:
    """Click's usage error as (message, tip): the tip names the command's --help."""
    msg = exc.format_message()
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None) or "mpg"
    return msg, f"run '{path} --help' for the options and their values"


def run(call: Callable[[], Any]) -> int:
    """Run ``call`` (Click's main in non-standalone mode) and turn every outcome into an exit code."""
    from typer._click import exceptions as click_exc

    from . import safeio
    from .errors import MpgError

    safeio.reset()
    prepare_streams()
    try:
        try:
            rv = call()
            code = rv if isinstance(rv, int) else 0
        finally:
            sys.stdout.flush()
        return code
    except click_exc.NoArgsIsHelpError as exc:
        try:
            sys.stdout.write(exc.format_message() + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
            return EXIT_BROKEN_PIPE
        return 0
    except click_exc.UsageError as exc:
        report(*_usage_message(exc))
        return 2
    except click_exc.ClickException as exc:
        report(exc.format_message(), None)
        return int(getattr(exc, "exit_code", 2) or 2)
    except KeyboardInterrupt:
        _interrupted()
        return EXIT_INTERRUPTED
    except MpgError as exc:  # raised outside a command's invoke (e.g. in a parameter callback)
        report(exc.message, exc.hint)
        return int(exc.exit_code)
    except OSError as exc:
        code = stream_error(exc)
        if code is None:
            raise
        return code


def stream_error(exc: OSError) -> int | None:
    """The exit code for an error writing the output (broken pipe: quiet 141; disk full: ERROR, 2); else None."""
    if isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EIO, errno.EBADF, errno.EDQUOT):
        _silence_stdout()
        report(f"cannot write the output: {exc.strerror or exc}", "check the disk or the redirection")
        return 2
    return None


def _interrupted() -> None:
    try:
        sys.stderr.write("Interrupted.\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
