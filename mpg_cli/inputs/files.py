"""Reading input files safely: UTF-8 text (size-capped, regular files), YAML and JSON.

The one place mpg parses YAML or JSON input (presets, scenario files, calibration files, training configs):
duplicate keys, aliases, tags and odd scalars are refused with the file, line and column, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import PresetError

MAX_FILE_BYTES = 1_000_000


def _loaders():
    """(fast, strict) YAML loaders that refuse duplicate keys; the strict one also refuses every alias."""
    import yaml

    class UniqueKeys:
        def construct_mapping(self, node, deep=False):  # type: ignore[no-untyped-def]
            seen = set()
            for key_node, _ in node.value:
                key = getattr(key_node, "value", None)
                if isinstance(key, str):
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key {key!r}", key_node.start_mark)
                    seen.add(key)
            return super().construct_mapping(node, deep=deep)  # type: ignore[misc]

        def construct_object(self, node, deep=False):  # type: ignore[no-untyped-def]
            """The safe constructors raise ValueError/TypeError/OverflowError on odd scalars ('!!int abc',
            4,300+ digit integers, '!!binary' garbage): every one becomes a ConstructorError at the node."""
            try:
                return super().construct_object(node, deep=deep)  # type: ignore[misc]
            except yaml.YAMLError:
                raise
            except (ValueError, TypeError, AttributeError, OverflowError, IndexError) as exc:
                value = getattr(node, "value", "")
                shown = _show(value) if isinstance(value, str) else "a collection"
                raise yaml.constructor.ConstructorError(
                    None, None, f"cannot read {shown} as {node.tag.rsplit(':', 1)[-1]} ({str(exc)[:80]})",
                    node.start_mark) from None

        def construct_timestamp_as_text(self, node):  # type: ignore[no-untyped-def]
            """Dates stay text ('layers: 2024-02-30' is then refused as 'expected a whole number')."""
            return str(self.construct_scalar(node))

    class Fast(UniqueKeys, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    Fast.add_constructor("tag:yaml.org,2002:timestamp", UniqueKeys.construct_timestamp_as_text)

    class Strict(UniqueKeys, yaml.SafeLoader):
        def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
            if self.check_event(yaml.AliasEvent):
                raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not allowed in presets",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)

    Strict.add_constructor("tag:yaml.org,2002:timestamp", UniqueKeys.construct_timestamp_as_text)
    return Fast, Strict


def _reject_shared(data: Any, path: Path) -> None:
    """Refuse YAML aliases: a container reached twice came from an alias (walked once each: no alias bombs)."""
    seen: set[int] = set()
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, (dict, list)):
            if id(node) in seen:
                raise PresetError(f"{path}: YAML aliases (*name) are not allowed in presets",
                                  hint="write the values out in full")
            seen.add(id(node))
            stack.extend(node.values() if isinstance(node, dict) else node)


def read_text(path: Path, what: str = "file", max_bytes: int = MAX_FILE_BYTES) -> str:
    """Read a UTF-8 text file (a regular file, at most ``max_bytes``) or raise PresetError naming it."""
    from ..safeio import read_text as safe_read

    return safe_read(path, what, max_bytes)


def _is_dir(text: str) -> bool:
    try:
        return Path(text).expanduser().is_dir()
    except (OSError, RuntimeError, ValueError):
        return False


def load_yaml_file(path: Path, use_mirror: bool = True) -> Any:
    """Parse a YAML file safely; errors name the file and line. A built-in preset whose text is unchanged
    comes from the parsed mirror (``inputs/mirror.py``) unless ``use_mirror`` is false."""
    text = read_text(path, "YAML file")
    if not text.strip():
        raise PresetError(f"{path}: file is empty", hint="a preset is a YAML mapping of keys to values")
    if use_mirror:
        from ..presets import builtin_dir
        from .mirror import parsed

        stored = parsed(path, text, builtin_dir())
        if stored is not None:  # a built-in preset, unchanged since the mirror was written (inputs/mirror.py)
            return stored
    import yaml

    # libyaml when available (5-10x faster); a file that defines anchors ('&') gets the strict loader,
    # which refuses every alias, scalar ones included (an alias needs an anchor, so '&'-free text has none)
    fast, strict = _loaders()
    try:
        data = yaml.load(text, Loader=strict if "&" in text else fast)  # noqa: S506 - safe loaders: no tags, no objects
    except RecursionError:
        raise PresetError(f"{path}: YAML nested too deeply", hint="a preset is a flat mapping of keys to values") from None
    except (ValueError, TypeError, AttributeError, OverflowError, IndexError) as exc:  # odd tagged collections
        raise PresetError(f"{path}: unreadable YAML value: {str(exc)[:100]}",
                          hint="presets are plain YAML: remove tags such as !!set or !!binary") from None
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        if str(exc.problem).startswith("cannot read"):
            raise PresetError(f"{path}: bad value{where}: {exc.problem}",
                              hint="write plain numbers and text (no !!int/!!float tags, at most 4,300 digits)") from None
        if "tag" in str(exc.problem):
            raise PresetError(f"{path}: YAML tag not allowed{where}: {exc.problem}",
                              hint="presets are plain YAML: remove tags such as !!python/...") from None
        raise PresetError(f"{path}: malformed YAML{where}: {exc.problem}",
                          hint="each key once, plain scalar keys") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        if "aliases" in str(getattr(exc, "problem", "")):
            line = f" (line {mark.line + 1})" if mark else ""
            raise PresetError(f"{path}: YAML aliases (*name) are not allowed in presets{line}",
                              hint="write the values out in full") from None
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PresetError(f"{path}: malformed YAML{where}: {problem}",
                          hint="check indentation and quoting; tags (!!python/...) and aliases are not allowed") from None
    _reject_shared(data, path)
    return data


def load_json_file(path: Path) -> Any:
    text = read_text(path, "JSON file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PresetError(f"{path}: malformed JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    except RecursionError:
        raise PresetError(f"{path}: JSON nested too deeply") from None
    except ValueError as exc:  # an integer over Python's 4,300-digit limit
        raise PresetError(f"{path}: unreadable JSON value: {str(exc)[:100]}") from None


def _show(value: Any) -> str:
    """A short, safe repr for messages (deeply nested or huge values are abbreviated)."""
    import reprlib

    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"a {value.bit_length():,}-bit integer"
    r = reprlib.Repr()
    r.maxlevel, r.maxstring, r.maxother, r.maxlist, r.maxdict = 2, 40, 40, 4, 4
    return r.repr(value)
