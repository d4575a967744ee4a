"""The public surface is the documented one, and every public name shows its public path.

docs/stability.md lists the public modules; every other module of the package either
starts with ``_`` or is listed there as internal. Generated from the package itself
(every module imported), so a new module cannot become public by accident.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import spinepki
from spinepki._public import is_private

STABILITY = Path(__file__).resolve().parent.parent / "docs" / "stability.md"


def _documented(marker: str) -> set[str]:
    text = STABILITY.read_text(encoding="utf-8")
    block = text.split(f"<!-- {marker}", 1)[1].split(f"<!-- /{marker} -->", 1)[0]
    block = block.split("-->", 1)[1]  # past the opening marker's comment
    return set(re.findall(r"`(spinepki(?:\.\w+)*)`", block))


PUBLIC = _documented("public-modules")
INTERNAL = _documented("internal-modules")


def _all_modules() -> list[str]:
    names = ["spinepki"]
    for info in pkgutil.walk_packages(spinepki.__path__, "spinepki."):
        importlib.import_module(info.name)
        names.append(info.name)
    return names


MODULES = _all_modules()


def test_the_documented_lists_were_read() -> None:
    """The markers in stability.md are found (an empty list would prove nothing)."""
    assert {"spinepki", "spinepki.errors", "spinepki.gate"} <= PUBLIC
    assert "spinepki.data" in INTERNAL
    assert not PUBLIC & INTERNAL


def test_public_modules_are_exactly_the_documented_ones() -> None:
    """Every module without a leading underscore is documented, as public or internal."""
    unlisted = {m for m in MODULES if not is_private(m)} - PUBLIC - INTERNAL
    assert unlisted == set(), "document these in docs/stability.md, or add an underscore"
    assert PUBLIC - set(MODULES) == set(), "stability.md lists modules that do not exist"
    assert INTERNAL - set(MODULES) == set(), "stability.md lists modules that do not exist"


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_module_has_a_complete_all(name: str) -> None:
    """Each public module declares __all__, and every name in it resolves."""
    module = importlib.import_module(name)
    names = getattr(module, "__all__", None)
    assert isinstance(names, list), f"{name} has no __all__"
    assert len(names) == len(set(names))
    for attr in names:
        assert hasattr(module, attr), f"{name}.{attr}"


def _public_objects() -> list[tuple[str, str, object]]:
    found = []
    for name in sorted(PUBLIC):
        module = importlib.import_module(name)
        for attr in module.__all__:
            obj = getattr(module, attr)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                found.append((name, attr, obj))
    return found


@pytest.mark.parametrize(
    ("module", "attr", "obj"), _public_objects(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_public_names_show_their_public_path(module: str, attr: str, obj: Any) -> None:
    """A public class or function names a public module, where it can be imported from."""
    home = obj.__module__
    assert not is_private(home), f"{module}.{attr} shows {home}"
    assert home in PUBLIC, f"{module}.{attr} shows {home}, which is not a public module"
    qualname = obj.__qualname__
    assert getattr(importlib.import_module(home), qualname) is obj
    if inspect.isclass(obj) and not issubclass(obj, enum.Enum):  # enums show no module
        assert repr(obj) == f"<class '{home}.{qualname}'>"


def test_the_facade_shows_the_most_specific_path() -> None:
    """Names re-exported by spinepki keep their area's path (spinepki.gate, not spinepki)."""
    assert spinepki.RequestGate.__module__ == "spinepki.gate"
    assert spinepki.ClientCertValidator.__module__ == "spinepki.validation"
    assert spinepki.check_fqdn.__module__ == "spinepki"
    assert isinstance(spinepki, ModuleType)
