"""The demo refuses without the provider extra before it generates or starts anything."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from spinepki.errors import ConfigurationError
from spinepki.testpki import _builder, demo


def test_without_anycorn_nothing_is_generated_or_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """anycorn missing: ConfigurationError naming the extra; no key, no responder."""
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "anycorn" else real(name, *args, **kwargs)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("work started before the extra was checked")

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(_builder, "_key_for", forbidden)
    monkeypatch.setattr(demo, "Responder", forbidden)
    with (
        pytest.raises(ConfigurationError, match=r"pip install 'spinepki\[provider\]'"),
        demo.demo_environment(),
    ):
        pass
