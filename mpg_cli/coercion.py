"""Cheap option coercion for Typer >= 0.29 (start-up time, issue 11).

Typer 0.29 converts every parameter's value (the defaults too) through a pydantic ``TypeAdapter`` that it builds
on first use (``typer._coercion.build_runtime_param``). The first one imports pydantic (~55 ms on the 2-core
development machine, measured with ``python -X importtime``) and the ~60 of an estimate command take ~16 ms more,
although nearly every value is ``None``, a default already of the right type, or a plain number or name.

``install(params)`` (called by ``group.MpgGroup`` for the group's and the invoked command's parameters,
the help option included) gives each parameter a ``LazyRuntimeParam`` that converts those common values itself and
hands every other value to the adapter Typer would have built (built then, once), so a value that Typer refuses
is refused with Typer's own message and exit code 2. The fast path only accepts values whose conversion is
unambiguous, and returns what Typer's adapter returns for them (``tests/test_coercion.py`` compares the two for
every option of every command):

* ``None``: ``None`` (``()`` for a repeated option), as ``typer._coercion.RuntimeParam.coerce`` does;
* a value already of the declared type (``str``, ``bool``, an ``int`` or finite ``float`` inside the option's
  ``min``/``max``, a member of the option's ``Enum``): itself;
* a string of ASCII digits (at most 18) for an ``int``, or a plain decimal (``12``, ``0.5``, ``1e-5``) for a
  ``float``, inside ``min``/``max``: ``int()`` / ``float()`` of it;
* an exact choice name for an ``Enum`` (Typer's own ``coerce_cli_choice``);
* a list of strings for a repeated ``str`` option: the list.

With an older Typer (Click types, no ``_runtime_param``) ``install`` leaves the parameters alone.
"""

from __future__ import annotations

import math
import re
from enum import Enum
from typing import Any

_MISS = object()
_INT = re.compile(r"[0-9]{1,18}", re.ASCII)
_FLOAT = re.compile(r"[0-9]{1,18}(\.[0-9]{1,18})?([eE][+-]?[0-9]{1,3})?", re.ASCII)


class LazyRuntimeParam:
    """Stands in for Typer's ``RuntimeParam`` of one parameter: the fast path above, else Typer's adapter."""

    def __init__(self, descriptor: Any) -> None:
        self.descriptor = descriptor
        self.annotation = descriptor.annotation
        self.parameter_info = descriptor.parameter_info
        self._real: Any = None

    def real(self) -> Any:
        """The runtime parameter Typer builds (a pydantic adapter), built on first need."""
        if self._real is None:
            from typer._coercion import build_runtime_param

            self._real = build_runtime_param(self.descriptor)
        return self._real

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        """Typer's ``RuntimeParam.coerce`` contract: the converted value, or ``BadParameter`` from Typer."""
        multi = param.multiple or param.nargs == -1
        if value is None:
            return () if multi else None
        out = self._fast(value, multi, ctx)
        if out is not _MISS:
            return out
        return self.real().coerce(value, param=param, ctx=ctx)

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        return self.real()._coerce_value(value, param=param, ctx=ctx)

    def __getattr__(self, name: str) -> Any:
        """Anything else a later Typer asks of a runtime parameter: Typer's own (built on first need)."""
        if name.startswith("__") or name in ("descriptor", "annotation", "parameter_info", "_real"):
            raise AttributeError(name)
        return getattr(self.real(), name)

    def _fast(self, value: Any, multi: bool, ctx: Any) -> Any:
        info = self.parameter_info
        if info.parser is not None or getattr(info, "clamp", False) or self.descriptor.file_annotation is not None:
            return _MISS
        ann = self.annotation
        if multi:
            if ann == list[str] and isinstance(value, (list, tuple)) and all(type(v) is str for v in value):
                return list(value)
            return _MISS
        if ann is str:
            return value if type(value) is str else _MISS
        if ann is bool:
            return value if type(value) is bool else _MISS
        if ann is int:
            if type(value) is str and _INT.fullmatch(value):
                return _in_range(int(value), info)
            return _in_range(value, info) if type(value) is int else _MISS
        if ann is float:
            if type(value) is str and _FLOAT.fullmatch(value):
                value = float(value)
            if type(value) is float and math.isfinite(value):
                return _in_range(value, info)
            return _MISS
        if isinstance(ann, type) and issubclass(ann, Enum):
            if isinstance(value, ann):
                return value
            if type(value) is str:
                from typer._param_types import coerce_cli_choice

                try:
                    return coerce_cli_choice(value, choices=tuple(ann), case_sensitive=info.case_sensitive, ctx=ctx)
                except ValueError:  # not a choice: Typer's adapter says so, in its words
                    return _MISS
        return _MISS


def _in_range(value: Any, info: Any) -> Any:
    """``value`` when inside the option's ``min``/``max`` (Typer's ``Field(ge=min, le=max)``), else a miss."""
    if info.min is not None and not value >= info.min:
        return _MISS
    if info.max is not None and not value <= info.max:
        return _MISS
    return value


def install(params: Any) -> None:
    """Give each Typer parameter in ``params`` the lazy runtime parameter (one already built is kept)."""
    for param in params:
        if hasattr(param, "_runtime_param") and hasattr(param, "type_descriptor") and param._runtime_param is None:
            param._runtime_param = LazyRuntimeParam(param.type_descriptor)
