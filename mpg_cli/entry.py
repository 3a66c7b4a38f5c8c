"""Console-script entry point: the boundary starts before any heavy import.

A Ctrl-C while Typer/Rich are still importing would otherwise print a ``KeyboardInterrupt``
traceback; here it exits 130 with one line, like a Ctrl-C anywhere else (mpg_cli/boundary.py).
"""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from mpg_cli.cli import main as cli_main
    except KeyboardInterrupt:
        try:
            sys.stderr.write("Interrupted.\n")
        except Exception:  # noqa: BLE001 - stderr may be closed
            pass
        sys.exit(130)
    cli_main()


if __name__ == "__main__":  # pragma: no cover
    main()
