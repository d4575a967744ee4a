"""Show each public name at the path users import it from, not where it is implemented.

A class defined in ``spinepki.gate._gate`` and re-exported by ``spinepki.gate`` would
otherwise print as ``<class 'spinepki.gate._gate.RequestGate'>`` and point readers (and
tracebacks, and ``help()``) at a private module. httpx does the same in its
``__init__``. Only names still shown under a private module are moved, so a name
re-exported by two public modules keeps the first, most specific one (``spinepki``
imports its sub-packages before it publishes its own names).
"""

from __future__ import annotations

import inspect
from collections.abc import Container, Iterable, Mapping

__all__ = ["is_private", "publish"]


def is_private(module: str) -> bool:
    """Whether a dotted module path has a private (``_``-prefixed) segment."""
    return any(part.startswith("_") for part in module.split("."))


def publish(
    module: str,
    names: Iterable[str],
    namespace: Mapping[str, object],
    *,
    internal: Container[str] = (),
) -> None:
    """Set ``__module__`` to ``module`` on the classes and functions named in ``names``.

    Call it as ``publish(__name__, __all__, globals())`` at the end of a public module.
    Names from a private module are moved, and names from a module in ``internal`` (one
    without an underscore that docs/stability.md calls internal all the same).
    """
    for name in names:
        obj = namespace[name]
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and (
            is_private(obj.__module__) or obj.__module__ in internal
        ):
            obj.__module__ = module
