"""The Sub CA's revocation status is checked like the leaf's (RFC 5280 6.1.3(a)(3)).

Blocking the root's CRL must not hide a revoked Sub CA: without evidence about it, a mode
that refuses unknown status refuses the path. ``check_ca_revocation=False`` checks the
leaf only. The trust anchor itself is never checked.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

from spinepki.errors import RevocationError
from spinepki.revocation import RevocationChecker, RevocationMode, RevocationResult, StaticFetcher
from spinepki.testpki import KeyType, TestPKI
from spinepki.trust import TrustStore
from spinepki.validation import ClientCertValidator, FailureCode

from .conftest import AT


@pytest.fixture(scope="module")
def revoked_sub_pki() -> TestPKI:
    """A PKI whose Sub CA is on the root's CRL."""
    pki = TestPKI.create(key_type=KeyType.EC_P256, at=AT)
    pki.revoke("sub-ca", at=AT - dt.timedelta(days=2))
    return pki


def _validator(
    pki: TestPKI, checker: RevocationChecker, *, check_ca_revocation: bool = True
) -> ClientCertValidator:
    return ClientCertValidator(
        pki.trust_store(),
        ssp_fqdns=pki.ssp_fqdn,
        revocation=checker,
        check_ca_revocation=check_ca_revocation,
    )


class TestHardFail:
    @pytest.mark.parametrize(
        "mode", [RevocationMode.OFFLINE, RevocationMode.HARD_FAIL, RevocationMode.CRL_ONLY]
    )
    def test_unknown_sub_ca_fails(self, pki: TestPKI, mode: RevocationMode) -> None:
        """The leaf's CRL is there, the root's is not: REVOCATION_UNKNOWN naming the Sub CA."""
        kwargs = {} if mode is RevocationMode.OFFLINE else {"fetcher": StaticFetcher()}
        checker = RevocationChecker(mode, crls=[pki.crl()], **kwargs)  # type: ignore[arg-type]
        leaf = pki.leaf("ssp")
        result = _validator(pki, checker).validate(leaf.certificate, leaf.chain, at=AT)
        assert not result.valid
        (failure,) = result.failures
        assert failure.code is FailureCode.REVOCATION_UNKNOWN
        assert failure.certificate_subject == pki.sub_ca.certificate.subject.rfc4514_string()
        assert failure.message.startswith(
            f"the issuing CA's revocation status unknown ({mode.value}): "
        )
        assert result.revocation is not None  # the leaf's own answer is still reported

    def test_known_good_sub_ca_passes(self, pki: TestPKI, offline: RevocationChecker) -> None:
        """With the root's CRL too, the same path is valid."""
        leaf = pki.leaf("ssp")
        assert _validator(pki, offline).validate(leaf.certificate, leaf.chain, at=AT).valid

    def test_unknown_sub_ca_is_not_remembered(self, pki: TestPKI) -> None:
        """A refused path is refused again: an unknown verdict is never cached as good."""
        checker = RevocationChecker(RevocationMode.OFFLINE, crls=[pki.crl()])
        validator = _validator(pki, checker)
        leaf = pki.leaf("ssp")
        for _ in range(2):
            assert validator.validate(leaf.certificate, leaf.chain, at=AT).codes == (
                FailureCode.REVOCATION_UNKNOWN,
            )

    def test_soft_fail_accepts_unknown_sub_ca(self, pki: TestPKI) -> None:
        """Soft-fail softens an unknown Sub CA as it softens an unknown leaf."""
        checker = RevocationChecker(
            RevocationMode.SOFT_FAIL, crls=[pki.crl()], fetcher=StaticFetcher()
        )
        leaf = pki.leaf("ssp")
        assert _validator(pki, checker).validate(leaf.certificate, leaf.chain, at=AT).valid

    def test_trust_anchor_is_not_checked(self, pki: TestPKI) -> None:
        """A Sub CA trusted as an anchor (partial chain) needs no evidence about itself."""
        checker = RevocationChecker(RevocationMode.OFFLINE, crls=[pki.crl()])
        validator = ClientCertValidator(
            TrustStore([pki.sub_ca.certificate], partial_chain=True),
            ssp_fqdns=pki.ssp_fqdn,
            revocation=checker,
        )
        assert validator.validate(pki.leaf("ssp").certificate, at=AT).valid


class TestCheckerFailure:
    @pytest.mark.parametrize("who", ["leaf", "sub-ca"])
    def test_a_raising_checker_fails_closed(self, pki: TestPKI, who: str) -> None:
        """A checker that raises (against its promise) for the leaf or the Sub CA is
        REVOCATION_UNKNOWN for that certificate, never a pass."""
        target = pki.leaf("ssp").certificate if who == "leaf" else pki.sub_ca.certificate

        class Broken(RevocationChecker):
            def check(
                self, cert: x509.Certificate, issuer: x509.Certificate, *, at: dt.datetime
            ) -> RevocationResult:
                if cert is target:
                    raise RevocationError("broken", source="test")
                return super().check(cert, issuer, at=at)

        checker = Broken(RevocationMode.OFFLINE, crls=[pki.crl(), pki.root_crl()])
        leaf = pki.leaf("ssp")
        result = _validator(pki, checker).validate(leaf.certificate, leaf.chain, at=AT)
        (failure,) = result.failures
        assert failure.code is FailureCode.REVOCATION_UNKNOWN
        assert "the checker failed" in failure.message
        assert failure.certificate_subject == target.subject.rfc4514_string()


class TestLeafOnly:
    def test_unknown_sub_ca_passes(self, pki: TestPKI) -> None:
        """check_ca_revocation=False: the leaf's evidence alone decides."""
        checker = RevocationChecker(RevocationMode.OFFLINE, crls=[pki.crl()])
        leaf = pki.leaf("ssp")
        validator = _validator(pki, checker, check_ca_revocation=False)
        assert validator.validate(leaf.certificate, leaf.chain, at=AT).valid

    def test_revoked_sub_ca_is_not_seen(self, revoked_sub_pki: TestPKI) -> None:
        """The cost of leaf-only: even a Sub CA on the root's CRL is not looked at."""
        pki = revoked_sub_pki
        checker = RevocationChecker(RevocationMode.OFFLINE, crls=[pki.crl(), pki.root_crl()])
        leaf = pki.leaf("ssp")
        assert (
            _validator(pki, checker, check_ca_revocation=False)
            .validate(leaf.certificate, leaf.chain, at=AT)
            .valid
        )
        assert _validator(pki, checker).validate(leaf.certificate, leaf.chain, at=AT).codes == (
            FailureCode.REVOKED,
        )

    def test_leaf_still_checked(self, pki: TestPKI) -> None:
        """Leaf-only still refuses a leaf without evidence."""
        checker = RevocationChecker(RevocationMode.OFFLINE, crls=[pki.root_crl()])
        leaf = pki.leaf("ssp")
        result = _validator(pki, checker, check_ca_revocation=False).validate(
            leaf.certificate, leaf.chain, at=AT
        )
        assert result.codes == (FailureCode.REVOCATION_UNKNOWN,)
        assert result.failures[0].certificate_subject == leaf.certificate.subject.rfc4514_string()


class _Counting(RevocationChecker):
    """Counts the checks about the Sub CA."""

    sub_ca_checks = 0

    def check(
        self, cert: x509.Certificate, issuer: x509.Certificate, *, at: dt.datetime
    ) -> RevocationResult:
        if (
            cert.subject == issuer.subject
            or not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        ):
            return super().check(cert, issuer, at=at)
        self.sub_ca_checks += 1
        return super().check(cert, issuer, at=at)


class TestSoftFailedSubCA:
    """Under soft-fail an unknown Sub CA is accepted, but never silently: the result's
    revocation is marked soft-failed with the Sub CA's problems (what the gate's
    soft-fail warning and audit read), and the result is not cached."""

    def test_reported_and_not_cached(self, pki: TestPKI) -> None:
        checker = _Counting(RevocationMode.SOFT_FAIL, crls=[pki.crl()], fetcher=StaticFetcher())
        validator = _validator(pki, checker)
        leaf = pki.leaf("ssp")
        sub = pki.sub_ca.certificate.subject.rfc4514_string()
        for _ in range(2):
            result = validator.validate(leaf.certificate, leaf.chain, at=AT)
            assert result.valid
            assert not result.from_cache
            assert result.revocation is not None
            assert result.revocation.soft_failed
            assert any(p.startswith(f"issuing CA {sub}: ") for p in result.revocation.problems)
            assert result.revocation.evidence is not None  # the leaf's own GOOD evidence
        assert checker.sub_ca_checks == 2
        assert validator.cached(leaf.certificate, leaf.chain, at=AT) is None

    def test_the_gate_warns(self, pki: TestPKI) -> None:
        from spinepki.gate._gate import _soft_fail_warnings

        checker = RevocationChecker(
            RevocationMode.SOFT_FAIL, crls=[pki.crl()], fetcher=StaticFetcher()
        )
        leaf = pki.leaf("ssp")
        result = _validator(pki, checker).validate(leaf.certificate, leaf.chain, at=AT)
        warnings = _soft_fail_warnings(result)
        assert warnings is not None
        assert any("issuing CA" in w for w in warnings)

    def test_a_known_sub_ca_is_not_marked(self, pki: TestPKI) -> None:
        checker = RevocationChecker(
            RevocationMode.SOFT_FAIL, crls=[pki.crl(), pki.root_crl()], fetcher=StaticFetcher()
        )
        leaf = pki.leaf("ssp")
        result = _validator(pki, checker).validate(leaf.certificate, leaf.chain, at=AT)
        assert result.valid
        assert result.revocation is not None
        assert not result.revocation.soft_failed
        assert not result.revocation.problems


class TestSubCAVerdictLifetime:
    """The Sub CA's status is asked again once the validator's cache TTL has passed (the
    validator keeps no verdict about it beyond a cached result), and on every validation
    with cache_ttl=0."""

    def _run(self, pki: TestPKI, ttl: float, gaps: list[float]) -> int:
        checker = _Counting(RevocationMode.OFFLINE, crls=[pki.crl(), pki.root_crl()])
        validator = ClientCertValidator(
            pki.trust_store(), ssp_fqdns=pki.ssp_fqdn, revocation=checker, cache_ttl=ttl
        )
        leaf = pki.leaf("ssp")
        for gap in gaps:
            assert validator.validate(
                leaf.certificate, leaf.chain, at=AT + dt.timedelta(seconds=gap)
            ).valid
        return checker.sub_ca_checks

    def test_zero_ttl_keeps_nothing(self, pki: TestPKI) -> None:
        assert self._run(pki, 0, [0, 0, 1]) == 3

    def test_a_short_ttl_bounds_the_verdict(self, pki: TestPKI) -> None:
        assert self._run(pki, 60, [0, 90]) == 2
        assert self._run(pki, 60, [0, 30]) == 1  # within the TTL: the result cache answers

    def test_the_default_keeps_it(self, pki: TestPKI) -> None:
        assert self._run(pki, 300, [0, 90, 200]) == 1
