"""The demo refuses without the provider extra before it generates or starts anything."""

from __future__ import annotations

import pytest

from spinepki.demo import _demo as demo
from spinepki.errors import ConfigurationError
from spinepki.testpki import _builder


@pytest.mark.usefixtures("without_anycorn")
def test_without_anycorn_nothing_is_generated_or_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """anycorn missing: ConfigurationError naming the extra; no key, no responder."""

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("work started before the extra was checked")

    monkeypatch.setattr(_builder, "_key_for", forbidden)
    monkeypatch.setattr(demo, "Responder", forbidden)
    with (
        pytest.raises(ConfigurationError, match=r"pip install 'spinepki\[provider\]'"),
        demo.demo_environment(),
    ):
        pass
