"""Write mpg_cli/data/presets_mirror.json: every built-in preset parsed ahead of time (mpg_cli/inputs/mirror.py).

Usage: python scripts/mirror_presets.py            (rewrite the mirror from presets/)
       python scripts/mirror_presets.py --check    (exit 1 when the shipped mirror is stale)

Run it after editing a file in presets/. A stale entry is never wrong at run time (its text no longer matches,
so that file is parsed as YAML), only slower; tests/test_presets_mirror.py fails until the mirror is rewritten.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mpg_cli.inputs.files import load_yaml_file, read_text  # noqa: E402
from mpg_cli.inputs.mirror import MIRROR_FILE, build  # noqa: E402
from mpg_cli.presets import builtin_dir  # noqa: E402


def render() -> str:
    doc = build(builtin_dir(), lambda p: load_yaml_file(p, use_mirror=False), lambda p: read_text(p, "YAML file"))
    return json.dumps(doc, indent=None, separators=(",", ":")) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = MIRROR_FILE.read_text(encoding="utf-8") if MIRROR_FILE.exists() else ""
        if current != text:
            print(f"{MIRROR_FILE}: stale; run python scripts/mirror_presets.py", file=sys.stderr)
            return 1
        return 0
    MIRROR_FILE.write_text(text, encoding="utf-8")
    print(f"wrote {MIRROR_FILE} ({len(json.loads(text)['files'])} presets)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
