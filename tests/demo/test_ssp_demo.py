"""The demo's SSP part (``spinepki demo --via-ssp``) needs the serve shape's provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from spinepki.demo._demo import DemoEnvironment
from spinepki.demo._ssp_demo import ssp_demo
from spinepki.errors import ConfigurationError
from spinepki.testpki import KeyType, TestPKI


def test_without_the_serve_shape_it_refuses_before_starting(tmp_path: Path) -> None:
    """A demo environment without reference providers (another shape only): a typed
    error naming the shape, before a certificate is issued or a server started."""
    pki = TestPKI.create(key_type=KeyType.EC_P256, base_url="http://127.0.0.1:9")
    env = DemoEnvironment(pki, tmp_path, responder=None, providers={})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"Shape\.SERVE"), ssp_demo(env):
        pass
    assert "provider-revoked" not in pki.leaves
