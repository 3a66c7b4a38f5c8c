"""One text sanitiser for everything mpg prints from user data, and the CSV formula guard.

``clean`` makes a string safe for one line of a terminal: C0/C1 control characters (ESC, NUL, BEL,
newlines, carriage returns, DEL), Unicode line/paragraph separators, bidirectional overrides and lone
surrogates (undecodable bytes in argv) become visible escapes such as ``\\x1b`` or ``\\n``. So a name
can neither colour, retitle or clear the terminal nor start a forged ``ERROR:`` line.

``csv_cell`` additionally prefixes ``'`` to a text cell a spreadsheet would evaluate (starting with
``= + - @``, tab or CR: the OWASP "CSV injection" guidance); numbers are left alone.
"""

from __future__ import annotations

import re
from typing import Any

_BAD = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_BAD_NL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: "re.Match[str]") -> str:
    ch = m.group(0)
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: Any, *, keep_newlines: bool = False) -> str:
    """``text`` with control characters shown as escapes (tabs and newlines kept only if asked)."""
    return (_BAD if keep_newlines else _BAD_NL).sub(_escape, str(text))


def clean_line(text: Any) -> str:
    """One output line: every control character (newlines and tabs too) escaped."""
    return _BAD_NL.sub(_escape, str(text))


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell: numbers as they are; text cleaned and guarded against spreadsheet formulas."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    s = _BAD_NL.sub(_escape, str(value))
    if s.startswith(_FORMULA):
        try:
            float(s)  # '-1.5' is a number, not a formula
            return s
        except ValueError:
            return "'" + s
    return s
