"""The Typer group every mpg command runs under: the tool's single error boundary, and option conversion
without pydantic adapters for plain values (``mpg_cli/coercion.py``).

Errors: every ``MpgError`` is caught once, in ``MpgGroup.invoke``, printed by ``boundary.report_error``
(``ERROR: …`` plus ``TIP: …``, or ``GATE FAILED: …`` lines) and turned into the error's exit code
(see ``mpg_cli.errors.ExitCode``).
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

import typer
from typer.core import TyperGroup

from .errors import MpgError


class MpgGroup(TyperGroup):
    """Typer group with the tool's single error boundary (see mpg_cli/boundary.py)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, windows_expand_args: bool = True, **extra: Any) -> Any:
        from .boundary import run

        code = run(lambda: super(MpgGroup, self).main(args=args, prog_name=prog_name, complete_var=complete_var,
                                                      standalone_mode=False, windows_expand_args=windows_expand_args,
                                                      **extra))
        if standalone_mode:
            sys.exit(code)
        return code

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        from .coercion import install  # plain values converted without pydantic adapters (mpg_cli/coercion.py)
        install(self.get_params(ctx))
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        from .coercion import install
        name, cmd, rest = super().resolve_command(ctx, args)
        if cmd is not None:
            install(cmd.get_params(ctx))
        return name, cmd, rest

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except MpgError as exc:
            from .boundary import report_error

            report_error(exc)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            from .boundary import EXIT_INTERRUPTED, _interrupted

            _interrupted()
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except OSError as exc:  # stdout gone or full (Typer would turn a broken pipe into exit 1)
            from .boundary import stream_error

            code = stream_error(exc)
            if code is None:
                raise
            raise typer.Exit(code) from None
