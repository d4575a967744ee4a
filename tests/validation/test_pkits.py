"""NIST PKITS (2011) through the validator, driven by ``testdata/nist-pkits/pkits.json``.

The public test data is vendored (testdata/nist-pkits/README.md says where from), so
every run, CI's included, runs all 246 cases. Validation time 2022-05-01, as upstream.
Sections that do not apply, and the cases whose outcome differs from PKITS for a stated
reason, are listed below (and in docs/validation.md).
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from spinepki.errors import CertificateLoadError, CRLParseError
from spinepki.revocation import RevocationChecker, RevocationMode
from spinepki.trust import TrustStore
from spinepki.validation import ClientCertValidator, FailureCode, Purpose

PKITS = Path(__file__).resolve().parents[2] / "testdata" / "nist-pkits"
AT = dt.datetime(2022, 5, 1, tzinfo=dt.UTC)

#: Sections that do not apply to spinepki's validator, with the reason.
NOT_APPLICABLE = {
    "4.8": "certificate policies: RFC 5280 policy trees are not processed (design decision 1); "
    "spinepki checks the leaf's policy OIDs explicitly (required_policies)",
    "4.9": "require explicit policy: policy processing is not done (design decision 1)",
    "4.10": "policy mappings: policy processing is not done (design decision 1)",
    "4.11": "inhibit policy mapping: policy processing is not done (design decision 1)",
    "4.12": "inhibit anyPolicy: policy processing is not done (design decision 1)",
    "4.13": "name constraints on directory names and RFC 822 names: cryptography applies name "
    "constraints to DNS/IP SANs only and rejects the critical constraints PKITS uses; Spine "
    "CAs carry no name constraints",
    "4.14": "distribution points, indirect and partitioned CRLs: the revocation layer uses "
    "complete CRLs from the issuer only (Spine publishes no indirect or partitioned CRLs)",
    "4.15": "delta CRLs are not supported by the revocation layer (Spine publishes none)",
}

#: Cases whose outcome differs from PKITS, each with the reason. The test fails if one of
#: these starts to agree (so the list stays true) or another starts to differ.
_DSA = "DSA keys are below spinepki's key floor (RSA >= 2048 / EC P-256+ only): WEAK_KEY"
_DN_MATCH = (
    "cryptography matches issuer and subject names byte for byte, without RFC 5280 "
    "section 7.1 case folding and whitespace compression"
)
_AKI_CRL = (
    "the revocation layer accepts only a CRL signed by the certificate's issuer key (matched "
    "by authority key identifier); a CRL signed by a separate or rolled-over CA key is not "
    "evidence, so the status is unknown"
)
_SELF_ISSUED = (
    "cryptography does not build paths through self-issued (key rollover) CA certificates"
)
MISMATCHES = {
    "4.1.4": _DSA,
    "4.1.5": _DSA,
    "4.2.4": "cryptography enforces RFC 5280 4.1.2.5: dates 1950-2049 must be UTCTime, and "
    "this certificate uses GeneralizedTime",
    "4.3.3": _DN_MATCH,
    "4.3.4": _DN_MATCH,
    "4.3.5": _DN_MATCH,
    "4.3.10": _DN_MATCH + " (PrintableString to UTF8String rollover)",
    "4.3.11": _DN_MATCH,
    "4.4.19": _AKI_CRL,
    "4.5.1": _AKI_CRL,
    "4.5.5": _SELF_ISSUED + "; the path found avoids the revoked rollover certificate",
    "4.5.7": _SELF_ISSUED + "; the path found avoids the revoked rollover certificate",
    "4.6.8": "cryptography refuses an end-entity certificate that asserts cA=TRUE",
    "4.6.14": "cryptography refuses an end-entity certificate that asserts cA=TRUE",
    "4.6.15": _SELF_ISSUED,
    "4.6.17": _SELF_ISSUED,
}

#: Cases rejected as PKITS expects, but with another code than REVOKED.
REASON_DIFFERS = {
    "4.4.15": "cryptography refuses the negative serial number itself (UNTRUSTED)",
    "4.4.20": _AKI_CRL + " (REVOCATION_UNKNOWN)",
    "4.5.2": _AKI_CRL + " (REVOCATION_UNKNOWN)",
}


@dataclass(frozen=True, slots=True)
class Case:
    """One PKITS case from the manifest."""

    section: str
    name: str
    cert: str
    others: tuple[str, ...]
    crls: tuple[str, ...]
    expected_error: str | None

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> Case:
        ident = str(raw["id"])
        section = f"{int(ident[0])}.{int(ident[1:3])}.{int(ident[3:])}"
        error = raw.get("error")
        return cls(
            section=section,
            name=str(raw["name"]),
            cert=str(raw["cert"]),
            others=tuple(raw.get("other_certs", ())),  # type: ignore[arg-type]
            crls=tuple(raw.get("crls", ())),  # type: ignore[arg-type]
            expected_error=str(error["class"]) if isinstance(error, dict) else None,
        )

    def __str__(self) -> str:
        return f"{self.section}-{self.name}"


def _cases() -> list[Case]:
    manifest = PKITS / "pkits.json"
    if not manifest.is_file():
        return []
    return [Case.from_json(item) for item in json.loads(manifest.read_text())]


CASES = _cases()


def _load_cert(name: str) -> x509.Certificate:
    with warnings.catch_warnings():
        # PKITS has certificates with non-positive serials (RFC 5280 disallows them).
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return x509.load_der_x509_certificate((PKITS / "certs" / name).read_bytes())


def _load_crl(name: str) -> bytes:
    return (PKITS / "crls" / name).read_bytes()


def run_case(case: Case) -> tuple[bool, tuple[FailureCode, ...], str]:
    """Validate one case: (valid, codes, note)."""
    anchor = _load_cert("TrustAnchorRootCertificate.crt")
    try:
        leaf = _load_cert(case.cert)
        others = [_load_cert(n) for n in case.others]
    except ValueError as exc:
        return False, (), f"does not parse: {exc}"
    try:
        checker = RevocationChecker(
            RevocationMode.OFFLINE,
            crls=[_load_crl("TrustAnchorRootCRL.crl"), *(_load_crl(n) for n in case.crls)],
        )
    except CRLParseError as exc:
        return False, (), f"CRL does not parse: {exc}"
    validator = ClientCertValidator(
        TrustStore([anchor], name="pkits"),
        revocation=checker,
        max_chain_depth=8,
        purpose=Purpose.ANY,  # PKITS leaves carry no EKU
        unsafe_skip_fqdn_check=True,
        cache_ttl=0,
    )
    try:
        result = validator.validate(leaf, others, at=AT)
    except CertificateLoadError as exc:
        return False, (), str(exc)
    return result.valid, result.codes, "; ".join(f.message for f in result.failures)


def _section(case: Case) -> str:
    return ".".join(case.section.split(".")[:2])


def test_the_whole_suite_is_here() -> None:
    """The vendored data holds all 246 cases: none can go missing silently."""
    assert len(CASES) == 246


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
@pytest.mark.parametrize("case", CASES, ids=str)
def test_pkits(case: Case) -> None:
    """The validator agrees with PKITS on every applicable case (or a listed mismatch)."""
    if _section(case) in NOT_APPLICABLE:
        pytest.skip(f"PKITS {_section(case)} does not apply: {NOT_APPLICABLE[_section(case)]}")
    valid, codes, note = run_case(case)
    expected_valid = case.expected_error is None
    if case.section in MISMATCHES:
        assert valid != expected_valid, f"now agrees; drop it from MISMATCHES: {note}"
        pytest.xfail(f"differs from PKITS: {MISMATCHES[case.section]}")
    assert valid == expected_valid, f"{case}: expected {case.expected_error}, got {codes}: {note}"
    if case.expected_error == "RevokedError" and case.section not in REASON_DIFFERS:
        assert FailureCode.REVOKED in codes, note
