"""Choosing the certificates cryptography's verifier sees, within a work budget.

cryptography's verifier explores every candidate issuer it is given. A pile of
certificates that share one subject (and one key) makes that exponential until its own
signature limit stops it, tens of milliseconds later; a peer sends such a pile for free.
So the verifier is never given a choice the peer built: when a chain offers more than one
certificate for some issuer name, a bounded search here picks candidate paths by name
chaining and signatures, and the verifier checks one path at a time. The same search
finds the path a report names when the verifier refuses (trust is never decided here).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from spinepki._der import certificate_names
from spinepki._loading import MALFORMED_INPUT, certificate_public_key
from spinepki.trust import TrustStore
from spinepki.validation._checks import parse_fully, subject_of

__all__ = [
    "CandidatePath",
    "PathNode",
    "PathSearch",
    "Pools",
    "TrustIndex",
    "WorkBudget",
    "path_node",
]


@dataclass(frozen=True, slots=True)
class WorkBudget:
    """How much path-building work one validation may spend on what a peer sent.

    cryptography's verifier explores every candidate issuer it is given; a pile of
    certificates that share one subject (and one key) makes that exponential until the
    verifier's own signature limit stops it, tens of milliseconds later. spinepki
    therefore hands the verifier a single candidate path, chosen by this bounded search,
    whenever the chain offers more than one certificate for some issuer name.
    """

    signatures: int = 4
    """Signature checks beyond the ones a single path of the allowed length needs (a
    legitimate ambiguous chain needs one or two more)."""
    candidates: int = 64
    """Candidate issuers examined, whether or not their signature is checked."""
    issuers_per_certificate: int = 3
    """Candidate issuers whose signature check fails before a certificate is given up on
    (a Sub CA re-keyed under the same name is the legitimate case: two candidates)."""
    seconds: float = 0.02
    """Wall time of one search: a backstop for keys that are slow to verify."""

    def signature_limit(self, max_intermediates: int) -> int:
        """Signature checks a search for paths of up to ``max_intermediates`` may make."""
        return self.signatures + max_intermediates + 1


@dataclass(frozen=True, slots=True)
class PathNode:
    """A certificate with the encoded names and key path building matches on."""

    cert: x509.Certificate
    issuer: bytes
    """The issuer Name, DER as encoded (matched byte for byte, as cryptography does)."""
    subject: bytes
    """The subject Name, DER as encoded."""
    spki: bytes
    """The SubjectPublicKeyInfo, DER: signature results are remembered per key."""


def path_node(cert: x509.Certificate, der: bytes | None = None) -> PathNode | None:
    """The node for ``cert`` (its DER when at hand), or None when its names do not parse."""
    try:
        data = der if der is not None else cert.public_bytes(Encoding.DER)
        issuer, subject, spki = certificate_names(data)
    except MALFORMED_INPUT:
        return None
    return PathNode(cert, issuer, subject, spki)


@dataclass(frozen=True, slots=True)
class CandidatePath:
    """A path found by name chaining and signatures alone (for reports, not for trust)."""

    certificates: tuple[x509.Certificate, ...]
    """Leaf first; ends at an anchor when :attr:`reached_anchor`."""
    reached_anchor: bool
    """True when the last certificate is a configured trust anchor."""
    problem: str
    """Why no anchor was reached, in plain words ("" when one was)."""
    exhausted: bool = False
    """True when the search stopped at its :class:`WorkBudget`."""
    too_long: bool = False
    """True when the only way on was past the most intermediates allowed."""


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (UnsupportedAlgorithm, ValueError):
        if cert.issuer != issuer.subject:
            return False
        # cryptography no longer verifies MD5/SHA-1 certificate signatures. To report such
        # a certificate as WEAK_SIGNATURE (rather than as a forgery) check the signature
        # with the raw primitives; trust is still refused by the floor.
        return _legacy_signed_by(cert, issuer)
    except (InvalidSignature, TypeError):
        return False
    return True


def _legacy_signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        algorithm = cert.signature_hash_algorithm
        key = certificate_public_key(issuer)
        if algorithm is None:
            return False
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


class PathSearch:
    """Depth-first search for issuer paths from a leaf to an anchor, within a budget.

    Issuers are matched by encoded name and checked by signature (each (certificate, key)
    pair at most once); anchors are tried before intermediates, no certificate appears
    twice on a path, and a certificate from which no anchor was reachable is not explored
    again with fewer intermediate slots left. Paths come out in preference order:
    :meth:`paths` yields each that reaches an anchor, :meth:`candidate` the first (or the
    longest partial path and why it stops). Trust is still decided by cryptography.
    """

    __slots__ = (
        "_anchors",
        "_bad",
        "_best",
        "_budget",
        "_candidates",
        "_clock",
        "_dead",
        "_deadline",
        "_exhausted",
        "_found",
        "_max",
        "_memo",
        "_pool",
        "_problem",
        "_signatures",
        "_walk_iter",
    )

    def __init__(
        self,
        leaf: PathNode,
        pool: Mapping[bytes, Sequence[PathNode]],
        anchors: Mapping[bytes, Sequence[PathNode]],
        *,
        max_intermediates: int,
        budget: WorkBudget,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._anchors = anchors
        self._max = max_intermediates
        self._budget = budget
        self._clock = clock
        self._deadline = clock() + budget.seconds
        self._candidates = 0
        self._signatures = 0
        self._exhausted = False
        self._memo: dict[tuple[int, bytes], bool] = {}
        self._dead: dict[int, int] = {}
        self._bad: set[int] = set()
        self._best: tuple[PathNode, ...] = (leaf,)
        # Only the first problem is reported; it is put into words only then (rendering a
        # name parses it, which costs more than a search step).
        self._problem: tuple[str, x509.Certificate, x509.Certificate | None] | None = None
        self._found: list[tuple[PathNode, ...]] = []
        self._walk_iter: Iterator[tuple[PathNode, ...]] | None = self._walk(
            (leaf,), frozenset({id(leaf.cert)})
        )

    @property
    def exhausted(self) -> bool:
        """True once the budget ran out (no further paths will be found)."""
        return self._exhausted

    def exclude(self, cert: x509.Certificate) -> None:
        """Never use ``cert`` again (it failed to parse when it was about to be used)."""
        self._bad.add(id(cert))

    def exclude_id(self, cert_id: int) -> None:
        """:meth:`exclude` by ``id()`` of a certificate the caller keeps alive."""
        self._bad.add(cert_id)

    def paths(self) -> Iterator[tuple[PathNode, ...]]:
        """Every anchor-reaching path, leaf first, until the budget runs out."""
        index = 0
        while True:
            if index < len(self._found):
                yield self._found[index]
                index += 1
            elif self._advance() is None:
                return

    def candidate(self) -> CandidatePath:
        """The first anchor-reaching path, or the longest partial one and its problem."""
        if not self._found:
            self._advance()
        if self._found:
            return CandidatePath(tuple(n.cert for n in self._found[0]), True, "")
        certificates = tuple(n.cert for n in self._best)
        if self._exhausted:
            problem = (
                "path building stopped at its work budget "
                f"({self._signatures} signature checks, "
                f"{min(self._candidates, self._budget.candidates)} candidate issuers)"
            )
            return CandidatePath(certificates, False, problem, exhausted=True)
        if self._problem is None:
            return CandidatePath(certificates, False, "no path found")
        problem = _describe(self._problem, self._max)
        return CandidatePath(certificates, False, problem, too_long=self._problem[0] == "beyond")

    def _advance(self) -> tuple[PathNode, ...] | None:
        if self._walk_iter is None:
            return None
        found = next(self._walk_iter, None)
        if found is None:
            self._walk_iter = None
        else:
            self._found.append(found)
        return found

    def _spend(self) -> bool:
        self._candidates += 1
        if self._candidates > self._budget.candidates or self._clock() > self._deadline:
            self._exhausted = True
        return not self._exhausted

    def _signed(self, child: PathNode, issuer: PathNode) -> bool:
        key = (id(child.cert), issuer.spki)
        known = self._memo.get(key)
        if known is not None:
            return known
        if self._signatures >= self._budget.signature_limit(self._max):
            self._exhausted = True
            return False
        self._signatures += 1
        try:
            result = _signed_by(child.cert, issuer.cert)
        except MALFORMED_INPUT:
            result = False
        self._memo[key] = result
        return result

    def _walk(
        self, path: tuple[PathNode, ...], on_path: frozenset[int]
    ) -> Iterator[tuple[PathNode, ...]]:
        current = path[-1]
        if len(path) > len(self._best):
            self._best = path
        anchors = self._anchors.get(current.issuer, ())
        room = len(path) - 1 < self._max
        intermediates = self._pool.get(current.issuer, ()) if room else ()
        if not anchors and not intermediates:
            if self._problem is None:
                beyond = not room and bool(self._pool.get(current.issuer))
                self._problem = ("beyond" if beyond else "unknown", current.cert, None)
            return
        slots_left = self._max - len(path)
        failed = 0
        for is_anchor, node in [(True, a) for a in anchors] + [(False, i) for i in intermediates]:
            # Every candidate looked at is paid for, even one skipped at once: the budget
            # bounds the loop itself, not only the signature checks.
            if not self._spend():
                return
            cert_id = id(node.cert)
            if cert_id in self._bad or cert_id in on_path:
                continue
            if not is_anchor:
                if _repeats(path, node):
                    if self._problem is None:
                        self._problem = ("loop", current.cert, None)
                    continue
                if self._dead.get(cert_id, -1) >= slots_left:
                    continue  # explored before with at least as much room; led nowhere
            if not self._signed(current, node):
                if self._exhausted:
                    return
                if self._problem is None:
                    self._problem = ("signature", current.cert, node.cert)
                failed += 1
                if failed >= self._budget.issuers_per_certificate:
                    return
                continue
            step = (*path, node)
            if is_anchor:
                yield step
                continue
            before = len(self._found)
            yield from self._walk(step, on_path | {cert_id})
            if self._exhausted:
                return
            if len(self._found) == before:
                self._dead[cert_id] = max(self._dead.get(cert_id, -1), slots_left)


def _repeats(path: tuple[PathNode, ...], node: PathNode) -> bool:
    """True when ``node`` would bring a name round again other than by one key rollover.

    RFC 5280 lets a CA roll its key over with a self-issued certificate (subject = issuer),
    so a name may follow itself once: from that self-issued certificate to the CA's
    certificate from its superior, which is not self-issued. Any other repetition is a
    loop, and piles of certificates sharing one name are exactly that.
    """
    seen = [p for p in path if p.subject == node.subject]
    if not seen:
        return False
    current = path[-1]
    rollover = current.subject == current.issuer and node.subject != node.issuer
    return not (seen == [current] and rollover)


def _describe(problem: tuple[str, x509.Certificate, x509.Certificate | None], limit: int) -> str:
    kind, cert, issuer = problem
    if kind == "signature":
        return f"the signature on {subject_of(cert)} does not verify with the key of " + (
            subject_of(issuer) if issuer is not None else "its issuer"
        )
    where = {
        "beyond": f"beyond the {limit} intermediate CAs a path may have",
        "loop": "only reached through a loop of issuer names",
    }.get(kind, "neither a trusted root nor a known intermediate")
    return f"the issuer {_issuer_of(cert)} of {subject_of(cert)} is {where}"


def _issuer_of(cert: x509.Certificate) -> str:
    try:
        return cert.issuer.rfc4514_string()
    except MALFORMED_INPUT:
        return "<unreadable issuer>"


class TrustIndex:
    """The trust store as path building sees it, computed once per validator."""

    __slots__ = ("anchors", "by_cert", "by_der", "index", "linear", "nodes", "pool")

    def __init__(self, trust: TrustStore) -> None:
        self.by_der: dict[bytes, x509.Certificate] = {}
        """A trusted certificate by its DER, to swap a peer's copy for the trusted object."""
        self.by_cert = {cert: cert for cert in trust.certificates()}
        """The same by certificate (equal when the DER is), for copies already parsed."""
        self.nodes: dict[int, PathNode] = {}
        """Path nodes of the trusted certificates, by ``id()`` (the store keeps them alive)."""
        for cert in trust.certificates():
            der = cert.public_bytes(Encoding.DER)
            node = path_node(cert, der)
            if node is not None:
                self.by_der[der] = cert
                self.nodes[id(cert)] = node
        self.anchors = _index(self.nodes[id(c)] for c in trust.anchors if id(c) in self.nodes)
        """Trust anchors by encoded subject."""
        self.index = _index(self.nodes[id(c)] for c in trust.intermediates if id(c) in self.nodes)
        """Trusted intermediates by encoded subject."""
        self.pool = list(trust.intermediates)
        """The trusted intermediates, as the verifier's pool."""
        self.linear = all(len(nodes) == 1 for nodes in self.index.values())
        """No two trusted intermediates share a subject (the verifier never has to choose)."""

    def canonical(self, cert: x509.Certificate) -> x509.Certificate:
        """The trusted object when ``cert`` is a copy of a trusted certificate, else ``cert``.

        The trusted object carries the floors computed once (and is the object the
        revocation layer's answers are keyed by), and two
        copies of one certificate would make every step through it look like a choice.
        """
        if id(cert) in self.nodes:
            return cert
        return self.by_cert.get(cert, cert)


def _index(nodes: Iterable[PathNode]) -> dict[bytes, tuple[PathNode, ...]]:
    index: dict[bytes, tuple[PathNode, ...]] = {}
    for node in nodes:
        index[node.subject] = (*index.get(node.subject, ()), node)
    return index


class Pools:
    """The pools cryptography's verifier is given for one validation, within the budget.

    - nothing new from the peer and an unambiguous trust store: the trust store's
      intermediates, as they are (the common case: nothing is parsed or searched);
    - otherwise, when following issuer names from the leaf meets one candidate at each
      step: those certificates, in order;
    - otherwise (several certificates for some issuer name): each path the bounded
      :class:`PathSearch` finds to an anchor, one at a time, at most ``attempts``.

    A peer's certificate is fully parsed only when it is about to be given to the
    verifier; one that does not parse is dropped there (it cannot be on any path).
    """

    __slots__ = (
        "_attempts",
        "_bad",
        "_budget",
        "_index",
        "_leaf",
        "_limit",
        "_new",
        "_search",
        "_trust",
    )

    def __init__(
        self,
        trust: TrustIndex,
        leaf: x509.Certificate,
        intermediates: Sequence[tuple[x509.Certificate, bytes | None]],
        *,
        max_depth: int,
        budget: WorkBudget,
        attempts: int,
    ) -> None:
        self._trust = trust
        self._leaf = leaf
        # One more than allowed, so a path that is too long is still found and named.
        self._limit = max_depth + 1
        self._budget = budget
        self._attempts = attempts
        # A certificate sent twice would make every step through it a choice.
        seen: set[int | bytes] = set()
        new: list[tuple[x509.Certificate, bytes | None]] = []
        for cert, der in intermediates:
            if id(cert) in trust.nodes or id(cert) in seen or der in seen:
                continue
            seen.add(id(cert))
            if der is not None:
                seen.add(der)
            new.append((cert, der))
        self._new = new
        self._bad: set[int] = set()
        self._index: dict[bytes, tuple[PathNode, ...]] | None = None
        self._search: PathSearch | None = None

    def _pool_index(self) -> dict[bytes, tuple[PathNode, ...]]:
        if self._index is None:
            index = dict(self._trust.index)
            for cert, der in self._new:
                node = path_node(cert, der)
                if node is not None:
                    index[node.subject] = (*index.get(node.subject, ()), node)
            self._index = index
        return self._index

    def _usable(self, certs: Iterable[x509.Certificate]) -> bool:
        """Parse the peer's certificates among ``certs``; False (and remember) if one fails."""
        ok = True
        for cert in certs:
            if id(cert) in self._trust.nodes:
                continue
            try:
                parse_fully(cert)
            except MALFORMED_INPUT:
                self._bad.add(id(cert))
                if self._search is not None:
                    self._search.exclude(cert)
                ok = False
        return ok

    def pools(self) -> Iterator[list[x509.Certificate]]:
        """The intermediates to give the verifier, best first."""
        if not self._new and self._trust.linear:
            yield self._trust.pool
            return
        leaf = path_node(self._leaf)
        if leaf is None:
            return
        index = self._pool_index()
        for _ in range(len(self._new) + 1):
            walk = self._walk(leaf, index)
            if walk is None:
                break  # ambiguous: search
            if self._usable(walk):
                yield walk
                return
        else:
            return
        attempts = 0
        for path in self._searcher(leaf).paths():
            pool = [node.cert for node in path[1:-1]]
            if not self._usable(pool):
                continue
            yield pool
            attempts += 1
            if attempts >= self._attempts:
                return

    def _walk(
        self, leaf: PathNode, index: Mapping[bytes, Sequence[PathNode]]
    ) -> list[x509.Certificate] | None:
        """Issuer names followed from the leaf, or None at the first ambiguous step."""
        walk: list[x509.Certificate] = []
        on_path = {id(leaf.cert)}
        current = leaf
        for _ in range(self._limit):
            options = [
                n
                for n in index.get(current.issuer, ())
                if id(n.cert) not in on_path and id(n.cert) not in self._bad
            ]
            if len(options) > 1:
                return None
            if not options:
                break
            current = options[0]
            on_path.add(id(current.cert))
            walk.append(current.cert)
        return walk

    def _searcher(self, leaf: PathNode) -> PathSearch:
        if self._search is None:
            self._search = PathSearch(
                leaf,
                self._pool_index(),
                self._trust.anchors,
                max_intermediates=self._limit,
                budget=self._budget,
            )
            for cert_id in self._bad:
                self._search.exclude_id(cert_id)
        return self._search

    def candidate(self) -> CandidatePath:
        """The path to report (found by names and signatures), or the best partial one."""
        leaf = path_node(self._leaf)
        if leaf is None:
            return CandidatePath((self._leaf,), False, "the certificate's names do not parse")
        return self._searcher(leaf).candidate()
