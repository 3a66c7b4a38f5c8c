"""The JSON contract: ``SCHEMA_VERSION`` and the envelope every machine-readable document starts with.

Raw SI numbers (seconds, bytes, FLOPs, USD, kWh), no pre-formatted strings, no NaN or infinity. Bump
``SCHEMA_VERSION`` only for a breaking change (a key removed or its meaning changed), and say so in the README.
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 1


def envelope(command: str, body: dict[str, Any]) -> dict[str, Any]:
    """The one place the envelope is built: ``schema_version``, ``mpg_version``, ``command``, then ``body``."""
    from .. import __version__

    return {"schema_version": SCHEMA_VERSION, "mpg_version": __version__, "command": command, **body}


ENVELOPE_KEYS = ("schema_version", "mpg_version", "command")


def without_envelope(doc: dict[str, Any]) -> dict[str, Any]:
    """A document's body (to embed one document in another)."""
    return {k: v for k, v in doc.items() if k not in ENVELOPE_KEYS}
