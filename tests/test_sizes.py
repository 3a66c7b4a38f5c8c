"""Size limits of the code (issue 11): no module over ~400 lines, no function over 60 lines unless a comment says why."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mpg_cli"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def test_no_module_over_400_lines():
    """Every module under mpg_cli/ has at most 400 lines (split by responsibility beyond that)."""
    sizes = {_rel(p): len(p.read_text(encoding="utf-8").splitlines()) for p in MODULES}
    assert len(sizes) > 50  # the walk found the package
    assert not {k: n for k, n in sizes.items() if n > MAX_MODULE_LINES}


def test_no_function_over_60_lines_without_a_reason():
    """A function over 60 lines has a '# long: <why>' comment on the line above it (or its first decorator)."""
    long = []
    for path in MODULES:
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            above = lines[start - 2].strip() if start >= 2 else ""
            name = f"{_rel(path)}:{node.name}"
            if size > MAX_FUNCTION_LINES and not above.startswith("# long:"):
                long.append(f"{name} ({size} lines)")
    assert not long
