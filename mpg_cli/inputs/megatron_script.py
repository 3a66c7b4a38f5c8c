"""Reading a Megatron-LM launch: an argument list, a ``torchrun … pretrain_gpt.py …`` command with
backslash-continued lines, or a bash script (``GPT_ARGS=( … )`` arrays expanded with ``${GPT_ARGS[@]}``,
simple ``NAME=value`` variables) into tokens and ``--flag value`` pairs. Standard library only.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

LAUNCHERS = ("torchrun", "torch.distributed.run", "torch.distributed.launch", "deepspeed", "srun", "python",
             "python3", "mpirun")

_ASSIGN = re.compile(r"^(?:export\s+|declare\s+(?:-a\s+)?|local\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.S)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(\[@\]|\[\*\])?(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def _statements(text: str) -> list[str]:
    """Logical shell statements: backslash continuations joined, array parentheses kept together."""
    out: list[str] = []
    buf = ""
    depth = 0
    for raw in text.splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if depth == 0 and not buf and stripped.startswith("#"):
            continue
        cont = line.endswith("\\")
        if cont:
            line = line[:-1]
        code = _uncomment(line)
        depth += code.count("(") - code.count(")")
        buf += " " + code
        if not cont and depth <= 0:
            out.append(buf.strip())
            buf = ""
            depth = 0
    if buf.strip():
        out.append(buf.strip())
    return out


def _uncomment(line: str) -> str:
    """The line without a trailing '# comment' (outside quotes)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _split(text: str, source: str) -> list[str]:
    try:
        return shlex.split(text, comments=False, posix=True)
    except ValueError as exc:
        from ..errors import PresetError

        raise PresetError(f"{source}: cannot read the shell text: {exc}", hint="check the quoting") from None


def script_tokens(text: str, source: str) -> tuple[list[str], dict[str, int]]:
    """(Megatron argument tokens, launcher GPU flags) of an argument list or a launch script."""
    variables: dict[str, Any] = {}
    launch: list[list[str]] = []
    loose: list[str] = []

    def expand(s: str) -> str:
        def sub(m: re.Match) -> str:
            name = m.group(1) or m.group(4)
            value = variables.get(name)
            if value is None:
                return m.group(3) if m.group(3) is not None else m.group(0)
            return " ".join(shlex.quote(v) for v in value) if isinstance(value, list) else value
        for _ in range(5):
            new = _VAR.sub(sub, s)
            if new == s:
                break
            s = new
        return s

    for st in _statements(text):
        m = _ASSIGN.match(st)
        if m and (m.group(2).strip().startswith("(") or len(_split(m.group(2), source)) <= 1):
            name, value = m.group(1), m.group(2).strip()
            if value.startswith("("):
                body = value[1:value.rfind(")")] if ")" in value else value[1:]
                variables[name] = _split(expand(body), source)
            else:
                toks = _split(expand(value), source) if value else [""]
                variables[name] = toks[0] if len(toks) == 1 else " ".join(toks)
            continue
        tokens = _split(expand(st), source)
        if any(t.endswith(".py") or t in LAUNCHERS for t in tokens):
            launch.append(tokens)
        else:
            loose.extend(tokens)
    gpu_flags: dict[str, int] = {}
    args: list[str] = []
    if launch:
        for tokens in launch:
            script_at = next((i for i, t in enumerate(tokens) if t.endswith(".py")), None)
            before = tokens[:script_at] if script_at is not None else tokens
            after = tokens[script_at + 1:] if script_at is not None else []
            for flag, value in _pairs(before):
                key = flag.replace("-", "_")
                if key in ("nproc_per_node", "nnodes") and isinstance(value, str) and value.isdigit():
                    gpu_flags[key] = int(value)
            args.extend(after)
    else:
        args = loose
        if not any(t.startswith("--") for t in args):  # only NAME=( ... ) arrays, never launched: use them all
            args = [t for v in variables.values() if isinstance(v, list) for t in v]
    return args, gpu_flags


def _pairs(tokens: list[str]) -> list[tuple[str, Any]]:
    """('--name', value-or-True) pairs; '--name=value' and '--name v1 v2' (several values) understood."""
    out: list[tuple[str, Any]] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.startswith("--") and len(t) > 2:
            if "=" in t:
                k, _, v = t[2:].partition("=")
                out.append((k, v))
                i += 1
                continue
            vals = []
            j = i + 1
            while j < len(tokens) and not (tokens[j].startswith("--") and len(tokens[j]) > 2):
                vals.append(tokens[j])
                j += 1
            out.append((t[2:], True if not vals else (vals[0] if len(vals) == 1 else vals)))
            i = j
        else:
            i += 1
    return out


def arguments(tokens: list[str]) -> dict[str, Any]:
    """Megatron arguments by their Python name (``--num-layers 96`` -> ``num_layers: '96'``); the last wins."""
    return {k.replace("-", "_"): v for k, v in _pairs(tokens)}
