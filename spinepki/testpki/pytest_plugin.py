"""The test-PKI pytest fixtures, for ``pytest_plugins = ["spinepki.testpki.pytest_plugin"]``.

You rarely need this: installing spinepki registers the same fixtures through the
``pytest11`` entry point, whose module is :mod:`spinepki_pytest` (it lives outside this
package so that merely having spinepki installed imports none of it). This name stays for
projects that list the plugin explicitly, e.g. with ``-p no:spinepki`` plus
``pytest_plugins``.
"""

from __future__ import annotations

from spinepki_pytest import (
    spine_client_context,
    spine_pki,
    spine_pki_rsa,
    spine_server_context,
    spinepki_responder,
    spinepki_responder_pki,
)

__all__ = [
    "spine_client_context",
    "spine_pki",
    "spine_pki_rsa",
    "spine_server_context",
    "spinepki_responder",
    "spinepki_responder_pki",
]
