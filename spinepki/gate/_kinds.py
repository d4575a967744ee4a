"""The two enums both the gate's configuration and its interaction catalogue are keyed by.

Their own module so that :mod:`spinepki.gate._config` can import the catalogue (a
configuration holds one) without the catalogue importing the configuration back.
"""

from __future__ import annotations

import enum

__all__ = ["Generation", "RootKind"]


class Generation(enum.Enum):
    """A GP Connect specification generation; each has its own IDs, JWT shape and errors."""

    V1 = "1.x"
    """1.0.0 onwards: STU3, interaction IDs suffixed ``-1`` [IDS]."""
    V0_7 = "0.7.x"
    """0.5.x/0.7.x Access Record HTML: DSTU2, unsuffixed IDs, ``requested_record`` [IDS-07]."""


class RootKind(enum.Enum):
    """Which service root an interaction's path is relative to [API][SDS]."""

    FOUNDATIONS = "foundations"
    """Foundations and Appointment Management share one root (routing ``gpconnect``)."""
    STRUCTURED = "structured"
    """Access Record Structured (routing ``gpconnect/structured``)."""
    DOCUMENTS = "documents"
    """Access Document (routing ``gpconnect/documents``)."""
    ACCESS_RECORD_HTML = "access-record-html"
    """The 0.7.x DSTU2 Access Record HTML root."""
