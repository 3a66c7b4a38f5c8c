"""The built-in presets, parsed ahead of time: a JSON mirror of ``presets/`` that spares PyYAML on the common path.

Importing PyYAML and parsing three preset files is ~10 ms of a ~150 ms ``mpg estimate`` (issue 11's start-up
budget). The mirror (``mpg_cli/data/presets_mirror.json``, written by ``scripts/mirror_presets.py``) holds every
built-in file's parsed mapping with the length and CRC-32 of the exact text it was parsed from. A built-in file is
still read on every run; only when its text matches the record is the stored mapping used instead of parsing
it again. A file edited since (in a checkout) no longer matches and is parsed as YAML, as are user presets and
every other input, with all of ``inputs/files.py``'s checks. ``tests/test_presets_mirror.py`` checks that the shipped
mirror matches every built-in file and equals what the YAML loader returns for it.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any, Optional

MIRROR_FILE = Path(__file__).resolve().parent.parent / "data" / "presets_mirror.json"
FORMAT = 1

_files: Optional[dict[str, Any]] = None


def fingerprint(text: str) -> list[int]:
    """[length in bytes, CRC-32] of a file's UTF-8 text: what a mirror entry was parsed from."""
    raw = text.encode("utf-8")
    return [len(raw), zlib.crc32(raw)]


def _entries() -> dict[str, Any]:
    global _files
    if _files is None:
        try:
            doc = json.loads(MIRROR_FILE.read_text(encoding="utf-8"))
            files = doc.get("files") if isinstance(doc, dict) and doc.get("format") == FORMAT else None
        except (OSError, ValueError):
            files = None
        _files = files if isinstance(files, dict) else {}  # no usable mirror: every file is parsed as YAML
    return _files


def parsed(path: Path, text: str, builtin: Path) -> Optional[Any]:
    """The stored mapping of the built-in preset at ``path`` whose text is ``text``, else None (parse it)."""
    try:
        key = path.relative_to(builtin).as_posix()
    except ValueError:
        return None
    entry = _entries().get(key)
    if not isinstance(entry, dict) or "data" not in entry or entry.get("text") != fingerprint(text):
        return None
    return json.loads(json.dumps(entry["data"]))  # a fresh copy: callers own what they get


def build(builtin: Path, load: Any, read: Any) -> dict[str, Any]:
    """The mirror document for every ``*.yaml``/``*.yml`` under ``builtin``: each parsed with ``load(path)``, and
    fingerprinted on the text ``read(path)`` returns (the reader ``load_yaml_file`` uses: line endings and a BOM as
    it sees them). Keys keep the file's order."""
    files: dict[str, Any] = {}
    for p in sorted(builtin.rglob("*.y*ml")):
        data = load(p)
        if not same(json.loads(json.dumps(data)), data):
            raise ValueError(f"{p}: its parsed value does not survive JSON unchanged")
        files[p.relative_to(builtin).as_posix()] = {"text": fingerprint(read(p)), "data": data}
    return {"format": FORMAT, "written_by": "scripts/mirror_presets.py", "files": files}


def same(a: Any, b: Any) -> bool:
    """Equal, with mappings' keys in the same order (what ``==`` on dicts does not check) and no bool/int mix-up."""
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b
