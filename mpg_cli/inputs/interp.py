"""OmegaConf-style ``${...}`` interpolation inside one YAML document (NeMo, llm-foundry/Composer).

Supported, as OmegaConf resolves them (omegaconf.readthedocs.io, "Variable interpolation"):
absolute references ``${model.hidden_size}``, relative ones ``${.hidden_size}`` (a sibling) and
``${..seq_length}`` (the parent's sibling), string interpolation (``gpt_${model.num_layers}``), and
the NeMo-Framework-Launcher resolver ``${multiply:4, ${.hidden_size}}`` (its ``multiply`` resolver
is a product of its arguments). A reference to a key outside the file (an environment variable,
a command-line override, a missing key) is left unresolved; a reader that needs that value
reports it as an error naming the key.
"""

from __future__ import annotations

import re
from typing import Any, Optional

_FULL = re.compile(r"^\$\{([^${}]*)\}$")
_INNER = re.compile(r"\$\{([^${}]*)\}")


class Unresolved(Exception):
    """A ${...} reference that does not name a key of the same file."""


def _lookup(root: Any, parts: tuple[str, ...], ref: str) -> Any:
    node = root
    for p in parts:
        if isinstance(node, dict) and p in node:
            node = node[p]
        elif isinstance(node, list) and p.isdigit() and int(p) < len(node):
            node = node[int(p)]
        else:
            raise Unresolved(ref)
    return node


def _resolver(name: str, args: list[Any], ref: str) -> Any:
    if name == "multiply":
        out: Any = 1
        for a in args:
            if isinstance(a, bool) or not isinstance(a, (int, float)):
                raise Unresolved(ref)
            out *= a
        return out
    raise Unresolved(ref)


def _scalar(text: str) -> Any:
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


def resolve(root: Any) -> Any:
    """A copy of ``root`` with every resolvable ${...} replaced (unresolvable strings are kept as they are)."""
    cache: dict[tuple[str, ...], Any] = {}

    def value_at(path: tuple[str, ...], value: Any, depth: int) -> Any:
        if isinstance(value, dict):
            return {k: value_at(path + (str(k),), v, depth) for k, v in value.items()}
        if isinstance(value, list):
            return [value_at(path + (str(i),), v, depth) for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            try:
                return string(path, value, depth)
            except Unresolved:
                return value
        return value

    def ref_value(path: tuple[str, ...], ref: str, depth: int) -> Any:
        if depth > 20:
            raise Unresolved(ref)
        ref = ref.strip()
        if ":" in ref:  # a resolver: name:arg, arg
            name, _, rest = ref.partition(":")
            args = [_scalar(a) for a in rest.split(",")]
            return _resolver(name.strip(), args, ref)
        tpath = _target_path(path, ref)
        target = _lookup(root, tpath, ref)
        if isinstance(target, str) and "${" in target:
            if tpath not in cache:
                cache[tpath] = string(tpath, target, depth + 1)
            return cache[tpath]
        return target

    def string(path: tuple[str, ...], text: str, depth: int) -> Any:
        # innermost first: ${multiply:4, ${.hidden_size}} -> ${multiply:4, 4096}
        for _ in range(20):
            m = _FULL.match(text)
            if m:
                return ref_value(path, m.group(1), depth)
            inner = _INNER.search(text)
            if inner is None:
                return text
            v = ref_value(path, inner.group(1), depth)
            if isinstance(v, (dict, list)):
                raise Unresolved(inner.group(1))
            text = text[: inner.start()] + str(v) + text[inner.end():]
        raise Unresolved(text)

    return value_at((), root, 0)


def _target_path(path: tuple[str, ...], ref: str) -> tuple[str, ...]:
    if ref.startswith("."):
        dots = len(ref) - len(ref.lstrip("."))
        return tuple(list(path[: max(0, len(path) - dots)]) + [p for p in ref.lstrip(".").split(".") if p])
    return tuple(p for p in ref.split(".") if p)


def unresolved(value: Any) -> Optional[str]:
    """The ${...} text of a value that stayed unresolved, else None."""
    return value if isinstance(value, str) and "${" in value else None
