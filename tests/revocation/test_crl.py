"""CRL parsing, verification, indexing and lookup (spinepki.revocation._crl)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from spinepki._der import read_tlv, signed_parts, spki_bit_string
from spinepki.errors import CRLParseError, EvidenceError
from spinepki.revocation import load_crl, verify_crl
from spinepki.revocation._crl import check_window
from spinepki.testpki import TestPKI

from ._helpers import DAY, ECDSA_SHA384_ALG, cn, idp, make_cert, make_crl, resign_crl
from .conftest import der


class TestLoad:
    def test_der_and_pem_parse(self, pki: TestPKI) -> None:
        """A CRL loads from DER, from PEM and from an object, to the same issuer."""
        crl = pki.crl()
        pem = crl.public_bytes(serialization.Encoding.PEM)
        assert load_crl(der(crl)).issuer == load_crl(pem).issuer == load_crl(crl).issuer

    def test_garbage_is_a_parse_error(self) -> None:
        """Bytes that are not a CRL raise CRLParseError naming the source."""
        with pytest.raises(CRLParseError) as info:
            load_crl(b"\x30\x03\x02\x01\x00", source="http://x/crl")
        assert info.value.source == "http://x/crl"
        assert info.value.code == "input.crl"

    def test_bad_pem_is_a_parse_error(self) -> None:
        """A PEM block that does not hold a CRL raises CRLParseError."""
        with pytest.raises(CRLParseError):
            load_crl(b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")


class TestVerify:
    def test_good_crl_indexes_every_serial(self, pki: TestPKI, at: dt.datetime) -> None:
        """A CRL verifies once, and every listed serial is found with date and reason."""
        crl = make_crl(pki.sub_ca, this_update=at, serials=[5, 6, 7], number=9)
        verified = verify_crl(crl, pki.sub_ca.certificate, der=der(crl))
        assert verified.number == 9
        assert set(verified.index) == {5, 6, 7}
        assert verified.lookup(6) == (at, x509.ReasonFlags.key_compromise)
        assert verified.lookup(8) is None
        assert verified.size == len(der(crl))

    def test_entry_without_reason(self, pki: TestPKI, at: dt.datetime) -> None:
        """An entry without a reasonCode is revoked with reason None."""
        crl = make_crl(pki.sub_ca, this_update=at, serials=[5], reason=None)
        assert verify_crl(crl, pki.sub_ca.certificate).lookup(5) == (at, None)

    def test_rsa_crl(self, rsa_pki: TestPKI) -> None:
        """An RSA-signed CRL verifies (PKCS#1 v1.5 path)."""
        verified = verify_crl(rsa_pki.crl(), rsa_pki.sub_ca.certificate)
        assert verified.lookup(rsa_pki.leaf("revoked").serial) is not None

    def test_ed25519_crl(self, pki: TestPKI, at: dt.datetime) -> None:
        """An Ed25519-signed CRL verifies against an Ed25519 issuer."""
        key = ed25519.Ed25519PrivateKey.generate()
        name = cn("ed")
        ca = make_cert(name, key.public_key(), key, at)
        crl = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(name)
            .last_update(at)
            .next_update(at + DAY)
            .sign(key, None)
        )
        assert verify_crl(crl, ca).index == {}

    def test_wrong_issuer_name(self, pki: TestPKI) -> None:
        """A CRL from another CA's name is refused before any signature work."""
        with pytest.raises(EvidenceError, match="not by the certificate's issuer"):
            verify_crl(pki.crl("root"), pki.sub_ca.certificate)

    def test_foreign_ca_same_name(self, pki: TestPKI) -> None:
        """A CRL from the foreign CA (same name, other key) fails the AKI check."""
        with pytest.raises(EvidenceError, match="authority key identifier"):
            verify_crl(pki.crl("foreign-sub-ca"), pki.sub_ca.certificate)

    def test_bad_signature(self, pki: TestPKI, at: dt.datetime) -> None:
        """Same name, no AKI, other key: the signature check refuses it."""
        crl = make_crl(pki.sub_ca, this_update=at, aki=False, signer=pki.cas["foreign-sub-ca"])
        with pytest.raises(EvidenceError, match="signature does not verify"):
            verify_crl(crl, pki.sub_ca.certificate)

    def test_key_type_mismatch(self, pki: TestPKI, rsa_pki: TestPKI, at: dt.datetime) -> None:
        """An EC-signed CRL checked against an RSA issuer of the same name is refused."""
        crl = make_crl(pki.sub_ca, this_update=at, aki=False)
        with pytest.raises(EvidenceError, match="does not fit the issuer's key type"):
            verify_crl(crl, rsa_pki.sub_ca.certificate)

    def test_issuer_without_crl_sign(self, pki: TestPKI, at: dt.datetime) -> None:
        """An issuer whose keyUsage lacks cRLSign cannot vouch for a CRL."""
        leaf = pki.leaf("ssp")
        crl = make_crl(leaf, this_update=at)
        with pytest.raises(EvidenceError, match=r"cRLSign|keyUsage"):
            verify_crl(crl, leaf.certificate)

    def test_issuer_without_key_usage_or_ski(self, pki: TestPKI, at: dt.datetime) -> None:
        """An issuer with neither keyUsage nor SKI is matched by its computed key id."""
        ca = pki.sub_ca
        bare = (
            x509.CertificateBuilder()
            .subject_name(ca.certificate.subject)
            .issuer_name(ca.certificate.subject)
            .public_key(ca.private_key.public_key())  # type: ignore[arg-type]
            .serial_number(2)
            .not_valid_before(at - DAY)
            .not_valid_after(at + DAY)
            .sign(ca.private_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        crl = make_crl(ca, this_update=at)
        assert verify_crl(crl, bare).index == {}

    @pytest.mark.parametrize(
        ("extension", "message"),
        [
            (x509.DeltaCRLIndicator(1), "delta CRLs"),
            (
                x509.IssuingDistributionPoint(None, None, False, False, None, True, False),
                "indirect",
            ),
            (
                x509.IssuingDistributionPoint(
                    None,
                    None,
                    False,
                    False,
                    frozenset({x509.ReasonFlags.key_compromise}),
                    False,
                    False,
                ),
                "only some revocation reasons",
            ),
            (
                x509.IssuingDistributionPoint(None, None, False, False, None, False, True),
                "attribute certificates",
            ),
        ],
    )
    def test_unsupported_kinds(
        self, pki: TestPKI, at: dt.datetime, extension: x509.ExtensionType, message: str
    ) -> None:
        """Delta, indirect, reason-partitioned and attribute CRLs are refused."""
        crl = make_crl(pki.sub_ca, this_update=at, extensions=[(extension, True)])
        with pytest.raises(EvidenceError, match=message):
            verify_crl(crl, pki.sub_ca.certificate)

    def test_unknown_critical_extension(self, pki: TestPKI, at: dt.datetime) -> None:
        """A critical extension spinepki does not understand makes the CRL unusable."""
        ext = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
        crl = make_crl(pki.sub_ca, this_update=at, extensions=[(ext, True)])
        with pytest.raises(EvidenceError, match="unrecognised critical extension"):
            verify_crl(crl, pki.sub_ca.certificate)

    def test_non_critical_unknown_and_critical_known(self, pki: TestPKI, at: dt.datetime) -> None:
        """Non-critical unknown extensions and a critical FreshestCRL are accepted."""
        unknown = x509.UnrecognizedExtension(
            x509.ObjectIdentifier("1.3.6.1.4.1.99999.2"), b"\x05\x00"
        )
        freshest = x509.FreshestCRL(
            [
                x509.DistributionPoint(
                    [x509.UniformResourceIdentifier("http://d/")], None, None, None
                )
            ]
        )
        crl = make_crl(pki.sub_ca, this_update=at, extensions=[(unknown, False), (freshest, True)])
        assert verify_crl(crl, pki.sub_ca.certificate).number == 1

    def test_no_next_update(self, pki: TestPKI, at: dt.datetime) -> None:
        """A CRL without nextUpdate is refused (RFC 5280 requires one)."""
        raw = resign_crl(
            make_crl(pki.sub_ca, this_update=at), pki.sub_ca.private_key, drop_next_update=True
        )  # type: ignore[arg-type]
        crl = load_crl(raw)
        assert crl.next_update_utc is None
        with pytest.raises(EvidenceError, match="no nextUpdate"):
            verify_crl(crl, pki.sub_ca.certificate, der=raw)

    def test_algorithm_fields_differ(self, pki: TestPKI, at: dt.datetime) -> None:
        """Inner and outer signature algorithms must be identical (cryptography refuses
        such bytes at load; verify_crl refuses them too when handed the bytes)."""
        crl = make_crl(pki.sub_ca, this_update=at)
        raw = resign_crl(crl, pki.sub_ca.private_key, outer_alg=ECDSA_SHA384_ALG)  # type: ignore[arg-type]
        with pytest.raises(CRLParseError):
            load_crl(raw)
        with pytest.raises(EvidenceError, match="signature algorithm fields differ"):
            verify_crl(crl, pki.sub_ca.certificate, der=raw)

    def test_der_that_is_not_the_crl(self, pki: TestPKI, at: dt.datetime) -> None:
        """DER bytes that do not split as a signed structure are a parse error."""
        with pytest.raises(CRLParseError):
            verify_crl(
                make_crl(pki.sub_ca, this_update=at), pki.sub_ca.certificate, der=b"\x04\x00"
            )


class TestScope:
    def test_idp_user_only_excludes_ca(self, pki: TestPKI, at: dt.datetime) -> None:
        """A user-certificates-only CRL does not cover a CA certificate."""
        idp = x509.IssuingDistributionPoint(None, None, True, False, None, False, False)
        crl = verify_crl(
            make_crl(pki.root, this_update=at, extensions=[(idp, True)]), pki.root.certificate
        )
        assert crl.scope_problem(pki.sub_ca.certificate) is not None
        assert crl.scope_problem(pki.leaf("ssp").certificate) is None

    def test_idp_ca_only_excludes_leaf(self, pki: TestPKI, at: dt.datetime) -> None:
        """A CA-certificates-only CRL does not cover an end-entity certificate."""
        idp = x509.IssuingDistributionPoint(None, None, False, True, None, False, False)
        crl = verify_crl(
            make_crl(pki.sub_ca, this_update=at, extensions=[(idp, True)]), pki.sub_ca.certificate
        )
        assert "only CA" in (crl.scope_problem(pki.leaf("ssp").certificate) or "")
        assert crl.scope_problem(pki.sub_ca.certificate) is None
        # a certificate without basicConstraints counts as an end entity
        bare = (
            x509.CertificateBuilder()
            .subject_name(pki.leaf("ssp").certificate.subject)
            .issuer_name(pki.sub_ca.certificate.subject)
            .public_key(pki.leaf("ssp").private_key.public_key())  # type: ignore[arg-type]
            .serial_number(3)
            .not_valid_before(at - DAY)
            .not_valid_after(at + DAY)
            .sign(pki.sub_ca.private_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        assert crl.scope_problem(bare) is not None

    def test_idp_name_must_match_cdp(self, pki: TestPKI, at: dt.datetime) -> None:
        """A CRL for another partition (IDP URL not in the CDP) does not cover the cert."""
        other = idp("http://elsewhere/p2.crl")
        same = idp(f"{pki.base_url}/crl/sub-ca.crl")
        leaf = pki.leaf("ssp").certificate
        bad = verify_crl(
            make_crl(pki.sub_ca, this_update=at, extensions=[(other, True)]), pki.sub_ca.certificate
        )
        good = verify_crl(
            make_crl(pki.sub_ca, this_update=at, extensions=[(same, True)]), pki.sub_ca.certificate
        )
        assert "issuing distribution point" in (bad.scope_problem(leaf) or "")
        assert good.scope_problem(leaf) is None
        # a certificate with no CDP at all is not excluded by the IDP name
        assert bad.scope_problem(pki.leaf("ocsp-responder").certificate) is None


class TestWindow:
    def test_fresh(self, at: dt.datetime) -> None:
        """Inside [thisUpdate, nextUpdate] nothing is raised."""
        check_window(at - DAY, at + DAY, at=at, tolerance=dt.timedelta(0), what="x", source="s")

    def test_not_yet_valid(self, at: dt.datetime) -> None:
        """thisUpdate after the validation time (beyond tolerance) is refused."""
        with pytest.raises(EvidenceError, match="after the validation time"):
            check_window(
                at + DAY, None, at=at, tolerance=dt.timedelta(minutes=5), what="x", source="s"
            )

    def test_tolerance_covers_skew(self, at: dt.datetime) -> None:
        """A thisUpdate two minutes ahead is within a five-minute tolerance."""
        check_window(
            at + dt.timedelta(minutes=2),
            None,
            at=at,
            tolerance=dt.timedelta(minutes=5),
            what="x",
            source="s",
        )

    def test_stale(self, at: dt.datetime) -> None:
        """A passed nextUpdate is stale."""
        with pytest.raises(EvidenceError, match="stale"):
            check_window(
                at - 2 * DAY,
                at - DAY,
                at=at,
                tolerance=dt.timedelta(minutes=5),
                what="x",
                source="s",
            )

    def test_check_fresh_uses_label(self, pki: TestPKI, at: dt.datetime) -> None:
        """A supplied CRL's freshness error names it as supplied."""
        verified = verify_crl(pki.crl(), pki.sub_ca.certificate)
        with pytest.raises(EvidenceError, match="supplied CRL"):
            verified.check_fresh(at + 30 * DAY, dt.timedelta(0))


class TestDer:
    def test_long_lengths(self) -> None:
        """Long-form lengths are read; bad ones raise ValueError."""
        assert read_tlv(b"\x04\x81\x80" + b"\0" * 128, 0) == (4, 3, 131)
        for bad in (b"\x04", b"\x1f\x01\x00", b"\x04\x80", b"\x04\x85\0\0\0\0\0", b"\x04\x05\0"):
            with pytest.raises(ValueError):
                read_tlv(bad, 0)

    def test_signed_parts_shape_errors(self) -> None:
        """Structures that are not Signed{TBS} raise ValueError."""
        for bad in (
            b"\x04\x00",
            b"\x30\x02\x04\x00",
            b"\x30\x04\x30\x00\x04\x00",
            b"\x30\x06\x30\x02\x04\x00\x30\x00",
        ):
            with pytest.raises(ValueError):
                signed_parts(bad)

    def test_spki_shape_errors(self) -> None:
        """Inputs that are not SubjectPublicKeyInfo raise ValueError."""
        for bad in (b"\x04\x00", b"\x30\x04\x30\x00\x04\x00", b"\x30\x04\x30\x00\x03\x00"):
            with pytest.raises(ValueError):
                spki_bit_string(bad)
