"""Which CRL answers for a certificate, remembered so a repeat check is one lookup.

Every connection from the SSP asks the same two questions: is this leaf listed on its Sub
CA's CRL, and is the Sub CA listed on the root's? The full answer walks the sources of
the mode (supplied CRLs, the CRL cache and its refresh windows, the distribution points)
to find the CRL to ask; the walk, not the lookup, was most of a check's cost. This index
remembers, per (certificate, issuer) object pair, the verified CRL that answered and the
span of validation times over which the walk would pick that same CRL again. A repeat
check inside that span reads the CRL's serial index again — so a listing is always read
from the evidence itself — and skips only the walk.

It remembers nothing a full check would not also find: an entry is made only when the
first place looked answered with no problem on the way (so no earlier source could answer
differently at another time); it is dropped when the checker stores or refetches a CRL
(``state``); its span is where the CRL is in date and, for a fetched CRL, neither due
for a refresh nor past ``max_staleness``. Keyed by object identity with the objects held,
so an id cannot be reused while its entry exists; bounded, cleared when full.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from cryptography import x509

from spinepki.revocation._crl import VerifiedCRL
from spinepki.revocation._types import RevocationResult

__all__ = ["Answer", "Answers"]

#: Entries held at most (each holds a certificate object alive): far above the one or
#: two Sub CAs and the SSP's few leaves a provider sees.
MAX_ANSWERS = 1024


class Answer:
    """One remembered answer: the CRL, and the times ``at`` it answers for."""

    __slots__ = ("cert", "crl", "end", "good", "issuer", "serial", "start", "state", "touch")

    def __init__(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        crl: VerifiedCRL,
        *,
        start: datetime,
        end: datetime,
        good: RevocationResult,
        state: int,
        touch: Callable[[], VerifiedCRL | None] | None = None,
    ) -> None:
        self.cert = cert
        self.serial = cert.serial_number  # cryptography builds a new int on every read
        self.issuer = issuer
        self.crl = crl
        self.start = start  # the first time it answers for (inclusive)
        self.end = end  # the first time it no longer does (exclusive)
        self.good = good  # the GOOD result, built once
        self.state = state
        self.touch = touch  # for a cached CRL: its cache lookup (None: supplied)


class Answers:
    """The index of remembered CRL answers of one checker (see the module docstring)."""

    __slots__ = ("_entries", "_lock", "state")

    def __init__(self) -> None:
        self._entries: dict[tuple[int, int], Answer] = {}
        self._lock = threading.Lock()  # two stores at once must both move the state on
        self.state = 0
        """Moves on whenever the checker stores a CRL: entries from before are ignored."""

    def changed(self) -> None:
        """The CRLs a walk could find have changed: forget every entry."""
        with self._lock:
            self.state += 1
            self._entries.clear()

    def remember(self, entry: Answer) -> None:
        """Remember ``entry``: its CRL answers for its certificate at every ``at`` with
        ``start <= at < end``, as long as its ``state`` holds.

        ``touch``, for a CRL from the checker's cache, looks it up there: each answer
        does, so the cache's least-recently-used order is the walk's (an answer from here
        keeps its CRL as recent as the walk's lookup would) and a CRL no longer in the
        cache is never answered from."""
        crl = entry.crl
        if entry.state != self.state or crl.only_user_certs or crl.only_ca_certs or crl.idp_urls:
            return  # evidence moved on meanwhile, or a scoped CRL (its rule is per cert)
        entries = self._entries
        if len(entries) >= MAX_ANSWERS:
            entries.clear()
        entries[(id(entry.cert), id(entry.issuer))] = entry

    def answer(
        self, cert: x509.Certificate, issuer: x509.Certificate, at: datetime
    ) -> RevocationResult | None:
        """The remembered CRL's answer for ``cert`` at ``at``, or None (walk again)."""
        hit = self._entries.get((id(cert), id(issuer)))
        if (
            hit is None
            or hit.cert is not cert
            or hit.issuer is not issuer
            or hit.state != self.state
            or not hit.start <= at < hit.end
            or (hit.touch is not None and hit.touch() is not hit.crl)
        ):
            return None
        listed = hit.crl.lookup(hit.serial)
        if listed is None:
            return hit.good
        return hit.crl.revoked(listed, hit.good.reuse_until)
