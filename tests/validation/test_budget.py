"""Work a peer controls is bounded: certificates per chain, candidate paths, depth, time.

Issue 12, finding 1: the report-only path builder explored every path, so eight
intermediates sharing one subject and key took ten seconds and a hundred never finished;
cryptography's own verifier spends 14-60 ms on such piles before its signature limit
stops it. Work is counted here (signature checks, verifier calls, the pools the verifier
is given), never timed: ``make bench`` measures time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spinepki.revocation import RevocationChecker
from spinepki.testpki import TestPKI
from spinepki.validation import (
    MAX_INTERMEDIATES,
    PATH_BUDGET,
    ClientCertValidator,
    FailureCode,
    ValidationResult,
    _paths,
)
from spinepki.validation._paths import PathSearch, WorkBudget, path_node
from tests.validation.conftest import AT
from tests.validation.piles import Pile, name, pile, pile_certificate

#: One key per role, reused: key generation is the slow part of building piles.
_KEYS = [ec.generate_private_key(ec.SECP256R1()) for _ in range(6)]


def _cert(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = True,
) -> x509.Certificate:
    return pile_certificate(subject, issuer, key, signer, at=AT, ca=ca)


def _pile(count: int, *, same_key: bool, fqdn: str) -> Pile:
    return pile(count, same_key=same_key, fqdn=fqdn, at=AT)


@pytest.fixture(scope="module")
def piles(pki: TestPKI) -> dict[tuple[int, bool], Pile]:
    """Piles of 32 (the most ever considered), 100 and 1,000, with one key or many."""
    return {
        (size, same): _pile(size, same_key=same, fqdn=pki.ssp_fqdn)
        for size in (32, 100, 1000)
        for same in (True, False)
    }


@dataclass
class Work:
    """What one validation cost, counted."""

    signatures: int = 0
    verifier_calls: int = 0
    largest_pool: int = 0


def _count(patch: pytest.MonkeyPatch) -> Work:
    """Count the path search's signature checks and every call into cryptography's verifier."""
    counted = Work()
    real_signed = _paths._signed_by
    real_verify = ClientCertValidator._verify

    def signed(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
        counted.signatures += 1
        return real_signed(cert, issuer)

    def verify(self: ClientCertValidator, leaf: x509.Certificate, pool: list[x509.Certificate],
               at: dt.datetime, server_name: object) -> tuple[x509.Certificate, ...]:  # fmt: skip
        counted.verifier_calls += 1
        counted.largest_pool = max(counted.largest_pool, len(pool))
        return real_verify(self, leaf, pool, at, server_name)  # type: ignore[arg-type]

    patch.setattr(_paths, "_signed_by", signed)
    patch.setattr(ClientCertValidator, "_verify", verify)
    return counted


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Work:
    """The work the test's validations do, counted."""
    return _count(monkeypatch)


@pytest.fixture
def validator(pki: TestPKI, disabled: RevocationChecker) -> ClientCertValidator:
    """The SSP validator (revocation off: these tests are about path building)."""
    return ClientCertValidator(
        pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=disabled, cache_ttl=0
    )


def _still_serves_the_ssp(validator: ClientCertValidator, pki: TestPKI) -> None:
    ssp = pki.leaf("ssp")
    result = validator.validate(ssp.certificate, ssp.chain, at=AT)
    assert result.valid, result.failures


def _within_budget(work: Work, validator: ClientCertValidator) -> None:
    # One search per validation serves both the verifier's pools and the report; it may
    # look one intermediate past the limit, to name a path that is too long.
    assert work.signatures <= PATH_BUDGET.signature_limit(validator.max_chain_depth + 1)
    # cryptography never chooses between candidates: it sees one path at a time.
    assert work.verifier_calls <= 3
    assert work.largest_pool <= validator.max_chain_depth + 1


class TestCertificatesPerChain:
    @pytest.mark.parametrize("size", [100, 1000])
    @pytest.mark.parametrize("same_key", [True, False], ids=["same-key", "distinct-keys"])
    @pytest.mark.parametrize("form", ["der-list", "pem-bundle", "objects"])
    def test_piles_of_100_and_1000_are_refused_unexamined(
        self,
        validator: ClientCertValidator,
        pki: TestPKI,
        piles: dict[tuple[int, bool], Pile],
        work: Work,
        size: int,
        same_key: bool,
        form: str,
    ) -> None:
        """More than MAX_INTERMEDIATES certificates: CHAIN_TOO_LONG, no signature checked."""
        pile = piles[(size, same_key)]
        sent: object
        if form == "der-list":
            sent = pile.der()
        elif form == "pem-bundle":
            sent = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in pile.intermediates)
        else:
            sent = list(pile.intermediates)
        result = validator.validate(pile.leaf, sent, at=AT)
        assert result.codes == (FailureCode.CHAIN_TOO_LONG,)
        assert f"sent {size} intermediate" in result.failures[0].message
        assert (work.signatures, work.verifier_calls) == (0, 0)
        _still_serves_the_ssp(validator, pki)

    def test_refused_before_parsing(self, validator: ClientCertValidator, pki: TestPKI) -> None:
        """Past the limit the rest is not even parsed: garbage there is no load error."""
        ssp = pki.leaf("ssp")
        sent = [ssp.chain[0].public_bytes(serialization.Encoding.DER)] + [b"garbage"] * 40
        result = validator.validate(ssp.certificate, sent, at=AT)
        assert result.codes == (FailureCode.CHAIN_TOO_LONG,)
        bundle = ssp.cert_pem * (MAX_INTERMEDIATES + 2)
        assert validator.validate(bundle, at=AT).codes == (FailureCode.CHAIN_TOO_LONG,)

    def test_exactly_the_limit_is_examined(
        self, validator: ClientCertValidator, pki: TestPKI
    ) -> None:
        """MAX_INTERMEDIATES copies of the real Sub CA are examined, and the chain holds."""
        ssp = pki.leaf("ssp")
        der = ssp.chain[0].public_bytes(serialization.Encoding.DER)
        assert validator.validate(ssp.certificate, [der] * MAX_INTERMEDIATES, at=AT).valid
        pem = ssp.chain[0].public_bytes(serialization.Encoding.PEM)
        assert validator.validate(ssp.certificate, [pem] * MAX_INTERMEDIATES, at=AT).valid


class TestCandidatePaths:
    @pytest.mark.parametrize("same_key", [True, False], ids=["same-key", "distinct-keys"])
    def test_a_pile_at_the_limit_costs_a_bounded_search(
        self,
        validator: ClientCertValidator,
        pki: TestPKI,
        piles: dict[tuple[int, bool], Pile],
        work: Work,
        same_key: bool,
    ) -> None:
        """32 same-subject CAs: UNTRUSTED within the budget, the verifier never sees them."""
        assert MAX_INTERMEDIATES == 32
        pile = piles[(32, same_key)]
        result = validator.validate(pile.leaf, pile.der(), at=AT)
        assert result.codes == (FailureCode.UNTRUSTED,)
        message = result.failures[0].message
        assert "work budget" in message or "loop of issuer names" in message
        _within_budget(work, validator)
        assert work.verifier_calls == 0  # no path reached an anchor: nothing to verify
        _still_serves_the_ssp(validator, pki)

    def test_eight_same_subject_intermediates_no_longer_explode(
        self, validator: ClientCertValidator, pki: TestPKI, work: Work
    ) -> None:
        """Regression: 8 same-subject, same-key CAs took 9.9 s in the report-only builder."""
        pile = _pile(8, same_key=True, fqdn=pki.ssp_fqdn)
        result = validator.validate(pile.leaf, list(pile.intermediates), at=AT)
        assert FailureCode.UNTRUSTED in result.codes
        _within_budget(work, validator)

    @pytest.mark.parametrize("form", ["der", "pem", "parsed-copy"])
    def test_a_copy_of_the_trusted_sub_ca_is_no_choice(
        self, validator: ClientCertValidator, pki: TestPKI, work: Work, form: str
    ) -> None:
        """The peer's copy of the trusted Sub CA is swapped for the trusted object: the
        verifier gets the trust store's pool at once and nothing is searched."""
        sub = pki.sub_ca.certificate
        der = sub.public_bytes(serialization.Encoding.DER)
        sent: object = {
            "der": der,
            "pem": sub.public_bytes(serialization.Encoding.PEM),
            "parsed-copy": x509.load_der_x509_certificate(der),
        }[form]
        ssp = pki.leaf("ssp")
        result = validator.validate(ssp.certificate, [sent], at=AT)  # type: ignore[list-item]
        assert result.valid, result.failures
        assert result.chain[1] is sub
        assert (work.signatures, work.verifier_calls) == (0, 1)

    def test_the_real_sub_ca_hidden_in_a_pile_is_found(
        self,
        disabled: RevocationChecker,
        pki: TestPKI,
        piles: dict[tuple[int, bool], Pile],
        work: Work,
    ) -> None:
        """A trusted Sub CA among same-named impostors: tried first, the chain holds."""
        impostors = [
            _cert(
                pki.sub_ca.certificate.subject,
                pki.root.certificate.subject,
                ec.generate_private_key(ec.SECP256R1()),
                _KEYS[2],
            )
            for _ in range(MAX_INTERMEDIATES - 1)
        ]
        ssp = pki.leaf("ssp")
        validator = ClientCertValidator(
            pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=disabled, cache_ttl=0
        )
        result = validator.validate(ssp.certificate, [*impostors, ssp.chain[0]], at=AT)
        assert result.valid, result.failures
        _within_budget(work, validator)

    def test_at_most_three_candidate_paths_reach_the_verifier(
        self, pki: TestPKI, disabled: RevocationChecker, work: Work
    ) -> None:
        """Five certificates with the Sub CA's name and key, signed by the root but not CAs:
        each is a path by names and signatures that the verifier refuses; it sees three, one
        at a time, and then the search stops offering."""
        copies = [
            _cert(
                pki.sub_ca.certificate.subject,
                pki.root.certificate.subject,
                pki.sub_ca.private_key,  # type: ignore[arg-type]
                pki.root.private_key,  # type: ignore[arg-type]
                ca=False,
            )
            for _ in range(5)
        ]
        only_root = ClientCertValidator(
            pki.trust_store("root"), ssp_fqdns=pki.ssp_fqdn, revocation=disabled, cache_ttl=0
        )
        ssp = pki.leaf("ssp")
        result = only_root.validate(ssp.certificate, copies, at=AT)
        assert result.codes == (FailureCode.UNTRUSTED,)
        assert work.verifier_calls == 3
        assert work.largest_pool == 1
        _still_serves_the_ssp(only_root, pki)

    def test_a_cross_signed_choice_is_verified_one_path_at_a_time(
        self, disabled: RevocationChecker, pki: TestPKI, work: Work
    ) -> None:
        """Two Sub CAs with one name and key (one under an unknown root): the good path wins."""
        stranger = _cert(name("Stranger Root"), name("Stranger Root"), _KEYS[3], _KEYS[3])
        cross = _cert(
            pki.sub_ca.certificate.subject,
            stranger.subject,
            pki.sub_ca.private_key,  # type: ignore[arg-type]
            _KEYS[3],
        )
        only_root = ClientCertValidator(
            pki.trust_store("root"), ssp_fqdns=pki.ssp_fqdn, revocation=disabled, cache_ttl=0
        )
        ssp = pki.leaf("ssp")
        result = only_root.validate(ssp.certificate, [cross, ssp.chain[0]], at=AT)
        assert result.valid, result.failures
        assert result.chain[1] is ssp.chain[0]
        _within_budget(work, only_root)


class TestPathSearch:
    def _search(
        self, pki: TestPKI, pile: Pile, budget: WorkBudget, clock: Callable[[], float]
    ) -> PathSearch:
        leaf = path_node(pile.leaf)
        assert leaf is not None
        nodes = [path_node(c) for c in pile.intermediates]
        pool: dict[bytes, tuple[_paths.PathNode, ...]] = {}
        for node in nodes:
            assert node is not None
            pool[node.subject] = (*pool.get(node.subject, ()), node)
        root = path_node(pki.root.certificate)
        assert root is not None
        return PathSearch(
            leaf, pool, {root.subject: (root,)}, max_intermediates=16, budget=budget, clock=clock
        )

    def test_the_clock_is_a_budget_too(self, pki: TestPKI) -> None:
        """A search whose clock has run out stops at once and says so."""
        ticks = iter(range(0, 1000, 10))
        pile = _pile(4, same_key=False, fqdn=pki.ssp_fqdn)
        search = self._search(pki, pile, WorkBudget(seconds=5), lambda: float(next(ticks)))
        candidate = search.candidate()
        assert search.exhausted
        assert candidate.exhausted
        assert not candidate.reached_anchor
        assert "work budget" in candidate.problem

    def test_candidates_are_a_budget_even_without_signatures(self, pki: TestPKI) -> None:
        """Same key everywhere (signature results remembered): the candidate count stops it."""
        pile = _pile(MAX_INTERMEDIATES, same_key=True, fqdn=pki.ssp_fqdn)
        search = self._search(pki, pile, WorkBudget(), lambda: 0.0)
        assert not search.candidate().reached_anchor
        assert search.exhausted
        assert list(search.paths()) == []

    def test_paths_come_anchors_first_and_each_once(self, pki: TestPKI) -> None:
        """Every anchor-reaching path is yielded once, the direct one first."""
        ssp = pki.leaf("ssp")
        leaf = path_node(ssp.certificate)
        sub = path_node(pki.sub_ca.certificate)
        root = path_node(pki.root.certificate)
        assert leaf is not None
        assert sub is not None
        assert root is not None
        # The Sub CA is trusted as an anchor *and* offered as an intermediate.
        search = PathSearch(
            leaf,
            {sub.subject: (sub,)},
            {sub.subject: (sub,), root.subject: (root,)},
            max_intermediates=3,
            budget=WorkBudget(),
        )
        found = [[n.cert for n in path] for path in search.paths()]
        assert found == [
            [ssp.certificate, pki.sub_ca.certificate],
            [ssp.certificate, pki.sub_ca.certificate, pki.root.certificate],
        ]


_SUBJECTS = st.sampled_from(["A", "B", "X"])


@st.composite
def hostile_chains(draw: st.DrawFn) -> list[tuple[str, str, int, int]]:
    """Up to 32 CA certificates over three names and a few keys, issued any which way."""
    return draw(
        st.lists(
            st.tuples(_SUBJECTS, _SUBJECTS, st.integers(0, 3), st.integers(0, 3)),
            max_size=MAX_INTERMEDIATES,
        )
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(shape=hostile_chains())
def test_any_pile_within_the_limit_costs_bounded_work(
    shape: list[tuple[str, str, int, int]], pki: TestPKI, disabled: RevocationChecker
) -> None:
    """Whatever the names, keys and issuers of up to 32 CAs: bounded, typed, and harmless."""
    certs = [
        _cert(name(subject), name(issuer), _KEYS[key], _KEYS[signer])
        for subject, issuer, key, signer in shape
    ]
    leaf = _cert(name(pki.ssp_fqdn), name("X"), _KEYS[4], _KEYS[0], ca=False)
    validator = ClientCertValidator(
        pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=disabled, cache_ttl=0
    )
    with pytest.MonkeyPatch.context() as patch:
        counted = _count(patch)
        result = validator.validate(leaf, certs, at=AT)
    assert isinstance(result, ValidationResult)
    assert not result.valid  # nothing here chains to the trusted root
    _within_budget(counted, validator)
    _still_serves_the_ssp(validator, pki)


@pytest.fixture(scope="module")
def broken_pki() -> TestPKI:
    """A Sub CA whose basicConstraints is not DER, and a leaf it issued."""
    from cryptography.x509.oid import ExtensionOID

    from spinepki.testpki import KeyType

    pki = TestPKI.create(key_type=KeyType.EC_P256, at=AT)
    garbage = x509.UnrecognizedExtension(ExtensionOID.BASIC_CONSTRAINTS, b"\x30\x03\x01")
    broken = x509.Extension(ExtensionOID.BASIC_CONSTRAINTS, False, garbage)
    pki.issue_ca("broken-ca", cn="spinepki Test Level 1C", parent="root", extensions=[broken])
    pki.issue("under-broken", fqdn=pki.ssp_fqdn, issuer="broken-ca")
    return pki


class TestMalformedIntermediates:
    """A peer's CA certificate that loads but does not parse is dropped, never a crash."""

    @pytest.mark.parametrize("with_real_sub_ca", [False, True], ids=["walk", "search"])
    def test_a_malformed_intermediate_is_dropped(
        self, broken_pki: TestPKI, disabled: RevocationChecker, with_real_sub_ca: bool
    ) -> None:
        """Sent alone (one candidate) or beside the real Sub CA of the same name (a choice):
        the broken CA is never given to the verifier; the result is UNTRUSTED, typed."""
        only_root = ClientCertValidator(
            broken_pki.trust_store("root"),
            ssp_fqdns=broken_pki.ssp_fqdn,
            revocation=disabled,
            cache_ttl=0,
        )
        leaf = broken_pki.leaf("under-broken").certificate
        sent = [broken_pki.cas["broken-ca"].certificate]
        if with_real_sub_ca:
            sent.append(broken_pki.sub_ca.certificate)
        result = only_root.validate(leaf, sent, at=AT)
        assert result.codes == (FailureCode.UNTRUSTED,), result.failures
        ssp = broken_pki.leaf("ssp")
        assert only_root.validate(ssp.certificate, [*sent, ssp.chain[0]], at=AT).valid
