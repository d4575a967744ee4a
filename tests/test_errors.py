"""The exception tree: one root, stable codes, messages built from fields."""

from __future__ import annotations

import inspect

import pytest

from spinepki import errors
from spinepki.errors import (
    CertificateValidationError,
    ConfigurationError,
    InputError,
    SpinePKIError,
)


def _classes() -> list[type[SpinePKIError]]:
    return [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, SpinePKIError)
    ]


def test_every_error_derives_from_the_root_and_has_a_unique_code() -> None:
    """Every exception class has its own stable code under one root."""
    classes = _classes()
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)), codes
    assert all(issubclass(c, SpinePKIError) for c in classes)
    assert sorted(c.__name__ for c in classes) == sorted(errors.__all__)


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_code_is_namespaced_by_parent(cls: type[SpinePKIError]) -> None:
    """A subclass's code starts with its parent's code, so callers can match prefixes."""
    parent = cls.__mro__[1]
    if (
        parent is not Exception
        and issubclass(parent, SpinePKIError)
        and parent is not SpinePKIError
    ):
        assert cls.code.startswith(parent.code + ".")


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
