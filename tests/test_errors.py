"""The exception tree: one root, stable codes, messages built from fields, all exported.

The tree is walked from the classes themselves (every module of the package imported),
not from ``errors.__all__``, so an error class defined anywhere is held to the same rules.
"""

from __future__ import annotations

import gc
import importlib
import pkgutil
import re

import pytest

import spinepki
from spinepki import errors
from spinepki.errors import (
    CertificateValidationError,
    ConfigurationError,
    InputError,
    ScanError,
    SecurityTestError,
    SpinePKIError,
    UnreachableError,
)

#: A code is dotted lower-case words: ``input.certificate``, ``security_test.unreachable``.
_CODE = re.compile(r"[a-z][a-z_]*(\.[a-z][a-z_]*)*")

#: Codes that name their feature first, kept from before their common base existed
#: (``docs/stability.md``: error codes are public).
_FEATURE_FIRST = {ScanError, SecurityTestError}


def _walk() -> list[type[SpinePKIError]]:
    for info in pkgutil.walk_packages(spinepki.__path__, "spinepki."):
        importlib.import_module(info.name)
    found: list[type[SpinePKIError]] = []
    todo: list[type[SpinePKIError]] = [SpinePKIError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: c.__name__)


CLASSES = _walk()


def _parent(cls: type[SpinePKIError]) -> type[SpinePKIError] | None:
    bases = [b for b in cls.__bases__ if issubclass(b, SpinePKIError)]
    assert len(bases) <= 1, f"{cls.__name__} has two spinepki bases"
    return bases[0] if bases else None


def test_the_walk_finds_subclasses_defined_anywhere() -> None:
    """A SpinePKIError subclass defined outside errors.py is found (and then fails below)."""
    stray = type("StrayError", (ConfigurationError,), {"code": "config.stray"})
    try:
        assert stray in _walk()
    finally:
        del stray
        gc.collect()  # __subclasses__ holds weak references: let the stray one go


def test_codes_are_unique_and_stable_looking() -> None:
    """Every class has its own code, and a code is dotted lower-case words."""
    codes = [c.code for c in CLASSES]
    assert len(codes) == len(set(codes)), sorted(codes)
    for cls in CLASSES:
        assert "code" in vars(cls), f"{cls.__name__} inherits its parent's code"
        assert _CODE.fullmatch(cls.code), (cls.__name__, cls.code)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_error_is_exported(cls: type[SpinePKIError]) -> None:
    """Each class is importable from spinepki and from spinepki.errors, and shown there."""
    assert getattr(spinepki, cls.__name__) is cls
    assert cls.__name__ in spinepki.__all__
    assert getattr(errors, cls.__name__) is cls
    assert cls.__name__ in errors.__all__
    assert cls.__module__ == "spinepki.errors"


def test_errors_all_is_exactly_the_tree() -> None:
    """errors.__all__ holds the error classes and nothing else."""
    assert sorted(errors.__all__) == sorted(c.__name__ for c in CLASSES)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_code_is_namespaced_by_parent(cls: type[SpinePKIError]) -> None:
    """A subclass's code starts with its parent's code, so callers can match prefixes."""
    parent = _parent(cls)
    if parent is None or parent is SpinePKIError:
        return
    if cls in _FEATURE_FIRST:
        assert cls.code.endswith("." + parent.code)
    else:
        assert cls.code.startswith(parent.code + ".")


def _drawn_tree() -> dict[str, tuple[str | None, str, bool]]:
    """name -> (drawn parent, drawn code, drawn as a ValueError) from the docstring."""
    doc = errors.__doc__ or ""
    block = doc.split("The tree::\n\n", 1)[1].split("\n\n", 1)[0]
    line_re = re.compile(r"(?P<lead>[ │├└─]*)(?P<name>\w+)(?P<ve> \(ValueError\))?\s+(?P<code>\S+)")
    drawn: dict[str, tuple[str | None, str, bool]] = {}
    stack: list[str] = []
    for line in block.splitlines():
        match = line_re.match(line.removeprefix("    "))
        assert match, line
        depth = len(match["lead"]) // 4
        del stack[depth:]
        parent = stack[-1] if stack else None
        stack.append(match["name"])
        drawn[match["name"]] = (parent, match["code"], bool(match["ve"]))
    return drawn


def test_the_docstring_draws_the_true_tree() -> None:
    """errors.py's docstring draws every class, under its real parent, with its code."""
    actual = {
        cls.__name__: (
            None if (p := _parent(cls)) is None else p.__name__,
            cls.code,
            ValueError in cls.__bases__,
        )
        for cls in CLASSES
    }
    assert _drawn_tree() == actual


def test_message_is_built_from_fields() -> None:
    """str() joins source and reason; repr() shows the code."""
    exc = errors.CertificateLoadError("not a valid certificate", source="leaf.pem")
    assert str(exc) == "leaf.pem: not a valid certificate"
    assert "input.certificate" in repr(exc)
    assert str(errors.PolicyError("empty")) == "empty"


def test_input_and_configuration_errors_are_value_errors() -> None:
    """Callers that catch ValueError for bad input keep working."""
    assert issubclass(InputError, ValueError)
    assert issubclass(ConfigurationError, ValueError)


def test_validation_error_carries_failure_codes() -> None:
    """The raised form of a validation result keeps the machine-readable codes."""
    exc = CertificateValidationError("expired", failure_codes=("EXPIRED",))
    assert exc.failure_codes == ("EXPIRED",)


@pytest.mark.parametrize("cls", [ScanError, SecurityTestError])
def test_unreachable_errors_share_one_base(cls: type[UnreachableError]) -> None:
    """The scanner's and the security test's "cannot reach it" errors are caught as one."""
    exc = cls("cannot connect: refused", host="h.example", port=443)
    assert isinstance(exc, UnreachableError)
    assert (exc.host, exc.port, exc.source) == ("h.example", 443, "h.example:443")
    assert str(exc) == "h.example:443: cannot connect: refused"
