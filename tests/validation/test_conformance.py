"""The conformance table (``conformance.toml``): RFC 5280 rule by rule, built with testpki.

One parametrized test per row, named by its id; each row cites the RFC 5280 section (or
the CA/Browser Forum rule) and states the expected result. Rows cross-reference the NIST
PKITS cases on the same rule, which ``test_pkits.py`` runs: this table extends PKITS
(ECDSA keys, the three profiles, the purposes, names, trusted intermediates) rather than
repeating it. The checks at the end keep the table honest: every implemented rule has a
row, every documented spine deviation has rows, and the real Spine certificates need each
deviation.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from spinepki.revocation import RevocationChecker, RevocationMode
from spinepki.testpki import KeyType, TestPKI
from spinepki.trust import TrustStore
from spinepki.validation import (
    KEY_USAGE_BITS,
    ClientCertValidator,
    FailureCode,
    Profile,
    Purpose,
)
from spinepki.validation._validator import _rules
from tests._helpers import fresh, shared
from tests.validation.conftest import (
    AT,
    IN_2023,
    SPINE_EXAMPLE,
    SPINE_EXAMPLE_FQDN,
    ext,
    rfc_ca_extensions,
)
from tests.validation.test_pkits import CASES as PKITS_CASES
from tests.validation.test_pkits import MISMATCHES, NOT_APPLICABLE

HERE = Path(__file__).resolve().parent
DOCS = HERE.parents[1] / "docs" / "validation.md"
MANIFEST = HERE / "conformance.toml"
FQDN = "app.example.org"
_EKUS = {
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "emailProtection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "anyExtendedKeyUsage": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
}
_PRIVATE_OID = x509.ObjectIdentifier("1.3.6.1.4.1.55555.12.1")
_HIERARCHIES = {"rfc": ("rfc-root", "rfc-sub"), "spine": ("root", "sub-ca")}


@dataclass(frozen=True)
class Case:
    """One row of the table."""

    id: str
    section: str
    rule: str
    expect: tuple[str, ...]
    hierarchy: str = "rfc"
    profile: str = "strict"
    purpose: str = "client"
    names: tuple[str, ...] = (FQDN,)
    sub: dict[str, Any] = field(default_factory=dict)
    leaf: dict[str, Any] = field(default_factory=dict)
    validator: dict[str, Any] = field(default_factory=dict)
    pkits: tuple[str, ...] = ()
    deviation: str | None = None

    @classmethod
    def from_toml(cls, raw: dict[str, Any]) -> Case:
        expect = raw.pop("expect")
        return cls(
            expect=(expect,) if isinstance(expect, str) else tuple(expect),
            names=tuple(raw.pop("names", (FQDN,))),
            pkits=tuple(raw.pop("pkits", ())),
            **raw,
        )

    def __str__(self) -> str:
        return self.id

    @property
    def slug(self) -> str:
        """A name for the case's certificates in the test PKI (letters, digits, '-')."""
        return f"case{CASES.index(self)}"


CASES = [Case.from_toml(dict(raw)) for raw in tomllib.loads(MANIFEST.read_text())["case"]]


@pytest.fixture(scope="module")
def _table_base() -> Iterator[TestPKI]:
    """The Spine hierarchy, an RFC 5280 one and a stranger, built once."""
    pki = TestPKI.create(key_type=KeyType.EC_P256, at=AT)
    pki.issue_ca("rfc-root", parent=None, extensions=rfc_ca_extensions())
    pki.issue_ca("rfc-sub", parent="rfc-root", extensions=rfc_ca_extensions())
    pki.issue_ca("stranger-root", parent=None, extensions=rfc_ca_extensions())
    with shared(pki, "the conformance table's PKI") as pki:
        yield pki


@pytest.fixture
def table_pki(_table_base: TestPKI) -> TestPKI:
    """A row's own copy: rows issue and revoke, and must not see each other's changes."""
    return fresh(_table_base)


def _key_usage(*asserted: str) -> x509.KeyUsage:
    """A keyUsage asserting exactly the bits named (cryptography's attribute names)."""
    return x509.KeyUsage(**{bit: bit in asserted for bit in KEY_USAGE_BITS})


def _ca_changes(
    spec: dict[str, Any], hierarchy: str
) -> tuple[list[x509.Extension[x509.ExtensionType]], list[type[x509.ExtensionType]]]:
    """The extensions a [case.sub] asks for (replacing the builder's defaults)."""
    extensions = rfc_ca_extensions(spec.get("path_length")) if hierarchy == "rfc" else []
    omit: list[type[x509.ExtensionType]] = []
    bc = spec.get("basic_constraints")
    if bc == "noncritical" or (hierarchy == "spine" and "path_length" in spec):
        extensions = [ext(x509.BasicConstraints(ca=True, path_length=spec.get("path_length")))]
    elif bc == "absent":
        extensions, omit = [], [x509.BasicConstraints]
    elif bc == "not-ca":
        extensions = [
            ext(x509.BasicConstraints(ca=False, path_length=None), critical=hierarchy == "rfc")
        ]
    if spec.get("key_usage") == "absent":
        omit.append(x509.KeyUsage)
    elif spec.get("key_usage") == "no-key-cert-sign":
        extensions.append(ext(_key_usage("digital_signature", "crl_sign"), critical=True))
    if "eku" in spec:
        extensions.append(ext(x509.ExtendedKeyUsage([_EKUS[e] for e in spec["eku"]])))
    if spec.get("unknown_critical"):
        extensions.append(ext(x509.UnrecognizedExtension(_PRIVATE_OID, b"\x05\x00"), critical=True))
    if "permitted_dns" in spec or "excluded_dns" in spec:
        constraints = x509.NameConstraints(
            permitted_subtrees=[x509.DNSName(d) for d in spec.get("permitted_dns", ())] or None,
            excluded_subtrees=[x509.DNSName(d) for d in spec.get("excluded_dns", ())] or None,
        )
        extensions.append(ext(constraints, critical=True))
    return extensions, omit


def _fix_key_ids(pki: TestPKI, name: str, spec: dict[str, Any]) -> None:
    """Re-issue a CA with its AKI or SKI marked critical (the builder marks them not)."""
    if not (spec.get("aki_critical") or spec.get("ski_critical")):
        return
    issued = pki.cas[name]
    cert = issued.certificate
    changed = []
    for kind, flag in ((x509.AuthorityKeyIdentifier, "aki_critical"),
                       (x509.SubjectKeyIdentifier, "ski_critical")):  # fmt: skip
        value = cert.extensions.get_extension_for_class(kind).value
        changed.append(ext(value, critical=bool(spec.get(flag))))
    parent = pki.issuers[name]
    pki.issue_ca(
        name,
        subject=cert.subject,
        parent=parent,
        extensions=[*rfc_ca_extensions(spec.get("path_length")), *changed],
        replace_existing=True,
    )


def _build_sub(pki: TestPKI, case: Case) -> tuple[str, list[x509.Certificate]]:
    """The Sub CA that issues the leaf (and the CAs below it): its name and the chain."""
    root, sub = _HIERARCHIES[case.hierarchy]
    if not case.sub:
        return sub, [pki.cas[sub].certificate]
    spec = case.sub
    name = f"{case.slug}-sub"
    extensions, omit = _ca_changes(spec, case.hierarchy)
    validity: dict[str, dt.datetime] = {}
    if spec.get("expired"):
        validity = {
            "not_before": AT - dt.timedelta(days=400),
            "not_after": AT - dt.timedelta(days=1),
        }
    pki.issue_ca(
        name, parent=root, extensions=extensions, omit=omit, replace_existing=True, **validity
    )
    _fix_key_ids(pki, name, spec)
    chain = [pki.cas[name].certificate]
    for index in range(spec.get("below", 0)):
        below = f"{case.slug}-ca-{index}"
        below_ext = rfc_ca_extensions() if case.hierarchy == "rfc" else []
        pki.issue_ca(below, parent=name, extensions=below_ext, replace_existing=True)
        chain.insert(0, pki.cas[below].certificate)
        name = below
    return name, chain


def _subject(kind: str, fqdn: str) -> x509.Name | None:
    if kind == "empty":
        return x509.Name([])
    if kind == "two-cns":
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, "rogue.example.org"),
                x509.NameAttribute(NameOID.COMMON_NAME, fqdn),
            ]
        )
    return None


def _build_leaf(pki: TestPKI, case: Case, issuer: str) -> x509.Certificate:
    spec = case.leaf
    name = f"{case.slug}-leaf"
    if spec.get("issuer") == "impostor":
        # Same name as the real issuer, another key: the leaf's signature cannot verify.
        pki.issue_ca(
            f"{case.slug}-impostor",
            subject=pki.cas[issuer].certificate.subject,
            parent=_HIERARCHIES[case.hierarchy][0],
            extensions=rfc_ca_extensions(),
            replace_existing=True,
        )
        issuer = f"{case.slug}-impostor"
    elif spec.get("issuer") == "unsent":
        pki.issue_ca(
            f"{case.slug}-unsent",
            parent=_HIERARCHIES[case.hierarchy][0],
            extensions=rfc_ca_extensions(),
            replace_existing=True,
        )
        issuer = f"{case.slug}-unsent"
    extensions: list[x509.Extension[x509.ExtensionType]] = []
    omit: list[type[x509.ExtensionType]] = []
    default_san = [FQDN] if case.hierarchy == "rfc" else []
    dns = spec.get("san", default_san)
    ips = [x509.IPAddress(ipaddress.ip_address(a)) for a in spec.get("san_ip", ())]
    general: list[x509.GeneralName] = [x509.DNSName(d) for d in dns] + ips
    if general:
        san = x509.SubjectAlternativeName(general)
        extensions.append(ext(san, critical=bool(spec.get("san_critical"))))
    eku = spec.get("eku", ["clientAuth", "serverAuth"])
    if eku:
        usage = x509.ExtendedKeyUsage([_EKUS[e] for e in eku])
        extensions.append(ext(usage, critical=bool(spec.get("eku_critical"))))
    else:
        omit.append(x509.ExtendedKeyUsage)
    if spec.get("key_usage") == "key-cert-sign":
        extensions.append(ext(_key_usage("digital_signature", "key_cert_sign")))
    if spec.get("unknown_critical"):
        extensions.append(ext(x509.UnrecognizedExtension(_PRIVATE_OID, b"\x05\x00"), critical=True))
    if spec.get("unknown_noncritical"):
        extensions.append(ext(x509.UnrecognizedExtension(_PRIVATE_OID, b"\x05\x00")))
    if spec.get("aki") is False:
        omit.append(x509.AuthorityKeyIdentifier)
    if spec.get("ca"):
        extensions.append(ext(x509.BasicConstraints(ca=True, path_length=None)))
    validity: dict[str, dt.datetime] = {}
    window = spec.get("validity")
    if window == "expired":
        validity = {
            "not_before": AT - dt.timedelta(days=30),
            "not_after": AT - dt.timedelta(days=1),
        }
    elif window == "not-yet-valid":
        validity = {
            "not_before": AT + dt.timedelta(days=1),
            "not_after": AT + dt.timedelta(days=30),
        }
    elif window == "ends-at-validation-time":
        validity = {"not_before": AT - dt.timedelta(days=30), "not_after": AT}
    issued = pki.issue(
        name,
        fqdn=FQDN,
        issuer=issuer,
        subject=_subject(spec.get("subject", "cn"), FQDN),
        extensions=extensions,
        omit=omit,
        replace_existing=True,
        **validity,
    )
    if spec.get("revoked"):
        pki.revoke(name, at=AT - dt.timedelta(days=1))
    return issued.certificate


def _validator(pki: TestPKI, case: Case, issuer: str) -> tuple[ClientCertValidator, bool]:
    """The validator for the row; True when the chain is trusted at the Sub CA itself."""
    options = dict(case.validator)
    trust = options.pop("trust", "root")
    root = _HIERARCHIES[case.hierarchy][0]
    partial = trust == "sub-partial-chain"
    if trust == "stranger":
        store = pki.trust_store("stranger-root")
    elif partial:
        store = TrustStore([pki.cas[issuer].certificate], partial_chain=True)
    else:
        store = pki.trust_store(root)
    if case.leaf.get("revoked"):
        checker = RevocationChecker(RevocationMode.OFFLINE, crls=[pki.crl(issuer), pki.crl(root)])
    else:
        checker = RevocationChecker(RevocationMode.DISABLED, unsafe_allow_disabled=True)
    validator = ClientCertValidator(
        store,
        ssp_fqdns=list(case.names),
        revocation=checker,
        profile=Profile(case.profile),
        purpose=Purpose(case.purpose),
        cache_ttl=0,
        **options,
    )
    return validator, partial


@pytest.mark.parametrize("case", CASES, ids=str)
def test_conformance(case: Case, table_pki: TestPKI) -> None:
    """The validator's verdict on the row's chain is the expected one."""
    issuer, chain = _build_sub(table_pki, case)
    leaf = _build_leaf(table_pki, case, issuer)
    validator, partial = _validator(table_pki, case, issuer)
    result = validator.validate(leaf, [] if partial else chain, at=AT)
    described = f"{case.section}: {case.rule} -> {[f.message for f in result.failures]}"
    if case.expect == ("valid",):
        assert result.valid, described
    else:
        assert not result.valid, described
        assert set(result.codes) == {FailureCode(c) for c in case.expect}, described


# -- keeping the table honest --------------------------------------------------------

#: RFC 5280 rules the validator implements, each of which needs a row.
IMPLEMENTED = (
    "4.2;",
    "4.2.1.1",
    "4.2.1.2",
    "4.2.1.3",
    "4.2.1.4",
    "4.2.1.6",
    "4.2.1.9",
    "4.2.1.10",
    "4.2.1.12",
    "6.1.1 (d)",
    "6.1.3 (a)(1)",
    "6.1.3 (a)(2)",
    "6.1.3 (a)(3)",
    "6.1.3 (a)(4)",
    "6.1.3 (b)",
    "6.1.3 (c)",
    "6.1.4 (k)",
    "6.1.4 (l)",
    "6.1.4 (m)",
    "6.1.4 (n)",
    "6.1.4 (o)",
    "6.1.5 (f)",
)
#: RFC 5280 rules deliberately not implemented, with the reason (no row expected).
NOT_IMPLEMENTED = {
    "4.2.1.5, 4.2.1.11, 4.2.1.14; 6.1.3 (d)-(f); 6.1.4 (a)-(j)": "policy mappings, policy "
    "constraints, inhibitAnyPolicy and the valid_policy_tree: cryptography has no policy "
    "processing (design decision 1); required_policies checks the leaf's OIDs instead",
    "4.2.1.13, 6.3": "CRL distribution points and CRL processing are the revocation layer's "
    "(tests/revocation)",
    "4.2.1.8, 4.2.1.15": "subject directory attributes and freshest CRL: no validation meaning "
    "for a TLS peer",
}


def test_the_manifest_is_well_formed() -> None:
    """Ids are unique; every row cites a section, states a rule and a known outcome."""
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    for case in CASES:
        assert case.section, case
        assert case.rule, case
        assert case.expect == ("valid",) or all(
            c in {f.value for f in FailureCode} for c in case.expect
        )
        assert case.hierarchy in _HIERARCHIES


def test_every_implemented_rule_has_a_row() -> None:
    """Each RFC 5280 4.2 extension rule and section 6 step the validator applies is cited."""
    sections = " | ".join(case.section for case in CASES)
    missing = [rule for rule in IMPLEMENTED if rule not in sections]
    assert not missing, missing


def _documented_deviations() -> set[str]:
    text = DOCS.read_text()
    table = text.split("## Profiles", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(spine-[a-z0-9-]+)`", table, flags=re.MULTILINE))


def test_every_documented_deviation_has_rows_and_nothing_more() -> None:
    """The deviation table in docs/validation.md and the rows here name the same set."""
    documented = _documented_deviations()
    assert documented  # the table exists and is parsed
    assert documented == {case.deviation for case in CASES if case.deviation}


def test_the_real_spine_certificates_need_each_deviation() -> None:
    """The real NHS INT endpoint certificate validates (2023) with the spine profile's
    rules and fails with either relaxation taken away: each deviation is needed."""
    leaf = x509.load_pem_x509_certificate(SPINE_EXAMPLE.read_bytes())
    trust = TrustStore.spine("int")
    spine = _rules(Profile.SPINE, Purpose.CLIENT)
    strict = _rules(Profile.STRICT, Purpose.CLIENT)

    def verify(ca: Any, ee: Any) -> str:
        verifier = (
            PolicyBuilder()
            .store(Store(list(trust.anchors)))
            .time(IN_2023)
            .extension_policies(ca_policy=ca, ee_policy=ee)
            .build_client_verifier()
        )
        try:
            verifier.verify(leaf, list(trust.intermediates))
        except VerificationError as exc:
            return str(exc)
        return "valid"

    assert verify(spine.client_ca, spine.client_ee) == "valid"
    assert "basicConstraints" in verify(strict.client_ca, spine.client_ee)  # spine-ca-…
    assert "missing required extension" in verify(spine.client_ca, strict.client_ee)  # …-san-absent
    # ... and nothing else is relaxed: the certificate carries exactly one CN.
    assert len(leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)) == 1
    validator = ClientCertValidator(
        trust,
        ssp_fqdns=SPINE_EXAMPLE_FQDN,
        revocation=RevocationChecker(RevocationMode.DISABLED, unsafe_allow_disabled=True),
    )
    assert validator.validate(leaf, at=IN_2023).valid


def test_every_real_spine_ca_with_noncritical_basic_constraints_is_named() -> None:
    """The documented real CAs are the ones in the bundles whose basicConstraints is not
    critical (so the deviation's evidence list stays true)."""
    found = set()
    for env in ("live", "int", "dep"):
        for cert in TrustStore.spine(env).certificates():
            if not cert.extensions.get_extension_for_class(x509.BasicConstraints).critical:
                found.add(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
    text = DOCS.read_text()
    assert found
    for cn in found:
        assert cn in text, cn


@pytest.mark.skipif(not PKITS_CASES, reason="NIST PKITS not found (see test_pkits.py)")
def test_pkits_cross_references_are_run_and_agree() -> None:
    """Each PKITS case a row points at exists, applies, and agrees (test_pkits asserts it)."""
    known = {case.section for case in PKITS_CASES}
    for case in CASES:
        for ref in case.pkits:
            assert ref in known, (case.id, ref)
            assert ".".join(ref.split(".")[:2]) not in NOT_APPLICABLE, (case.id, ref)
            assert ref not in MISMATCHES, (case.id, ref)
    assert json.dumps(NOT_IMPLEMENTED)  # the reasons are data, kept next to the rule list
