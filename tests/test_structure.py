"""The package's rooms and data flow (issue 11): what may import what, and who writes the output."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "mpg_cli"
COMMANDS = sorted(p for p in (PKG / "commands").glob("*.py") if p.name not in ("__init__.py", "shared.py"))


def _imports(path: Path) -> list[tuple[str, int]]:
    """(module, level) of every import in a file (relative imports keep their level)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, 0) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append((node.module or "", node.level))
            if node.level == 1 and node.module is None:  # 'from . import x'
                out += [(a.name, 1) for a in node.names]
    return out


def _calls(path: Path) -> set[str]:
    """Dotted names of every call in a file, e.g. 'sys.stderr.write' or 'render.emit'."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            parts, f = [], node.func
            while isinstance(f, ast.Attribute):
                parts.append(f.attr)
                f = f.value
            if isinstance(f, ast.Name):
                names.add(".".join([f.id, *reversed(parts)]))
    return names


@pytest.mark.parametrize("path", sorted((PKG / "core").rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_core_imports_no_typer_rich_or_yaml(path):
    """Every module under mpg_cli/core/ imports no typer, rich, click or yaml (the core stays pure)."""
    for module, _ in _imports(path):
        assert module.split(".")[0] not in ("typer", "rich", "click", "yaml"), f"{path.name} imports {module}"


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: p.name)
def test_commands_do_not_import_each_other(path):
    """A command module imports no other command module; what they share lives in commands/shared.py."""
    others = {p.stem for p in COMMANDS} - {path.stem}
    for module, level in _imports(path):
        assert not (level == 1 and module.split(".")[0] in others), f"{path.name} imports .{module}"
        assert not module.startswith("mpg_cli.commands.") or module.endswith(".shared"), module


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: p.name)
def test_commands_write_only_through_the_emitter(path):
    """No command writes stdout/stderr or a rendered format itself: output/emit.py's emit_output does."""
    direct = {"sys.stdout.write", "sys.stderr.write", "render.emit", "render.show_tables", "render.print_tables",
              "render.write_atomic", "render.titled_table", "print"}
    assert not (_calls(path) & direct), f"{path.name} writes directly: {sorted(_calls(path) & direct)}"


def test_the_json_envelope_is_built_in_one_place():
    """Only mpg_cli/output/schema.py builds a dict with a 'schema_version' key (every document goes through envelope())."""
    def builds(path: Path) -> bool:
        return any(isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "schema_version"
                                                      for k in node.keys)
                   for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))))

    assert [p.relative_to(PKG) for p in sorted(PKG.rglob("*.py")) if builds(p)] == [Path("output/schema.py")]


DOCS = PKG.parent / "docs"
_CITE = re.compile(r"docs/(formulas|modeling-notes)\.md((?:,? (?:section )?(?:[A-E]\d(?:\.\d)?(?:-[A-E]\d)?|[A-E]\b|\d\b))*)")


def _labels(doc: str) -> set[str]:
    """Section labels a document defines: headings '## A1.', bullets '- **A2.4 …**', list items '4. **…'."""
    text = (DOCS / doc).read_text(encoding="utf-8")
    out = set(re.findall(r"^#+ ([A-E]\d?(?:\.\d)?)[. ]", text, re.M))
    out |= set(re.findall(r"^- \*\*([A-E]\d(?:\.\d)?)[. ]", text, re.M))
    out |= set(re.findall(r"^(\d)\. \*\*", text, re.M))
    return out


def test_every_docs_citation_in_the_code_names_a_section_that_exists():
    """Each 'docs/formulas.md A4.6' or 'docs/modeling-notes.md 4' in mpg_cli/, tests/ or scripts/ names a real section."""
    labels = {"formulas": _labels("formulas.md"), "modeling-notes": _labels("modeling-notes.md")}
    cited = 0
    for path in [*PKG.rglob("*.py"), *(PKG.parent / "tests").glob("*.py"), *(PKG.parent / "scripts").glob("*.py")]:
        for doc, refs in _CITE.findall(path.read_text(encoding="utf-8")):
            for ref in re.findall(r"[A-E]\d(?:\.\d)?|[A-E]\b|\d\b", refs):
                cited += 1
                assert ref in labels[doc], f"{path.name} cites docs/{doc}.md {ref}, which has no such section"
    assert cited >= 30  # the code cites the docs throughout; a broken pattern would find none


def test_the_code_cites_no_reference_file_outside_docs():
    """No module cites a bare 'formulas.md' or 'modeling-notes.md' (the files live in docs/, in the repository)."""
    for path in PKG.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(?<![\w/])(formulas|modeling-notes)\.md", text), path.name


def test_estimate_args_read_options_once_with_one_set_of_defaults():
    """EstimateArgs.from_options: Enum members become values, absent or None keys take the declared default,
    keys that are not estimate inputs are ignored; the flags' defaults are those same declared defaults."""
    import inspect

    from mpg_cli.args import ESTIMATE_DEFAULTS, EstimateArgs
    from mpg_cli.options import GROUPS, Precision

    a = EstimateArgs.from_options({"precision": Precision.fp16, "tp": 8, "headroom": None, "_explicit": {"tp"},
                                   "format": "json"})
    assert (a.precision, a.tp, a.headroom) == ("fp16", 8, ESTIMATE_DEFAULTS.headroom)
    assert a.model == "gpt3-175b" and a.reserved_gib == 1.5
    for params in GROUPS.values():
        for p in params:
            if hasattr(ESTIMATE_DEFAULTS, p.name):
                assert getattr(p.default, "value", p.default) == getattr(ESTIMATE_DEFAULTS, p.name), p.name
    assert inspect.signature(EstimateArgs).parameters["headroom"].default == 0.05
