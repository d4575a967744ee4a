"""pytest fixtures for the test PKI's CRL/OCSP/AIA responder (kept for existing imports).

``spinepki_responder`` and ``spinepki_responder_pki`` are registered with the rest of the
plugin (:mod:`spinepki_pytest`); this module re-exports them for projects that listed
``pytest_plugins = ["spinepki.testpki.pytest_responder"]``.
"""

from __future__ import annotations

from spinepki_pytest import spinepki_responder, spinepki_responder_pki

__all__ = ["spinepki_responder", "spinepki_responder_pki"]
