"""Refusing at once, with the install command, when an optional dependency is missing.

The reference provider runs on anycorn (the ``provider`` extra); the SSP simulator and
the demo start a provider too, so all three check here before they bind or build
anything. Private and neutral, at the bottom of the layers (docs/architecture.md).
"""

from __future__ import annotations

import importlib.util

from spinepki.errors import ConfigurationError

__all__ = ["require_anycorn"]


def require_anycorn() -> None:
    """Raise unless anycorn can be imported.

    Raises:
        ConfigurationError: ``anycorn: the reference provider needs anycorn: pip install
            'spinepki[provider]'``.
    """
    if importlib.util.find_spec("anycorn") is None:
        raise ConfigurationError(
            "the reference provider needs anycorn: pip install 'spinepki[provider]'",
            source="anycorn",
        )
