"""summarize_certificate: the fields openssl/step users look for (``spinepki cert show``)."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from spinepki.testpki import TestPKI
from spinepki.validation import summarize_certificate
from tests.validation.conftest import AT, make_cert


class TestFields:
    def test_key_usage_ski_aki_and_fingerprints(self, pki: TestPKI) -> None:
        """KU bits by their RFC 5280 names; SKI/AKI and both fingerprints as AB:CD:..."""
        sub = summarize_certificate(pki.sub_ca.certificate, at=AT)
        assert sub.key_usage == ("keyCertSign", "cRLSign")
        root_ski = pki.root.certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value.digest
        assert sub.authority_key_id == root_ski.hex(":").upper()
        assert sub.subject_key_id is not None
        cert = pki.sub_ca.certificate
        assert sub.sha256 == cert.fingerprint(hashes.SHA256()).hex(":").upper()
        assert sub.sha1 == cert.fingerprint(hashes.SHA1()).hex(":").upper()
        assert len(sub.sha1.split(":")) == 20

    def test_public_key_type_and_size(self, pki: TestPKI) -> None:
        """Type and size in bits, for RSA, EC and Ed25519."""
        ec_leaf = summarize_certificate(pki.leaf("ssp").certificate, at=AT)
        assert (ec_leaf.key_type, ec_leaf.key_size, ec_leaf.key) == ("EC", 256, "EC secp256r1")
        rsa_cert, _ = make_cert(pki.sub_ca, key=rsa.generate_private_key(65537, 2048))
        summary = summarize_certificate(rsa_cert, at=AT)
        assert (summary.key_type, summary.key_size) == ("RSA", 2048)
        ed_cert, _ = make_cert(pki.sub_ca, key=ed25519.Ed25519PrivateKey.generate())
        assert summarize_certificate(ed_cert, at=AT).key_type == "Ed25519"

    def test_every_san_entry_typed(self, pki: TestPKI) -> None:
        """DNS, IP, URI and email entries, in order, as OpenSSL prints them."""
        san = x509.SubjectAlternativeName(
            [
                x509.DNSName("a.example.nhs.uk"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.UniformResourceIdentifier("https://x.nhs.uk"),
                x509.RFC822Name("ops@nhs.net"),
            ]
        )
        cert, _ = make_cert(pki.sub_ca, extra=(san,))
        summary = summarize_certificate(cert, at=AT)
        assert summary.subject_alt_names == (
            "DNS:a.example.nhs.uk",
            "IP:127.0.0.1",
            "URI:https://x.nhs.uk",
            "email:ops@nhs.net",
        )
        assert summary.fqdn == "a.example.nhs.uk"

    def test_spine_shape_has_no_san(self, pki: TestPKI) -> None:
        """A Spine-shaped leaf: no SAN, the FQDN from the CN, clientAuth+serverAuth."""
        summary = summarize_certificate(pki.leaf("ssp").certificate, at=AT)
        assert summary.subject_alt_names == ()
        assert summary.fqdn_source == "cn"
        assert summary.as_dict()["key_usage"] == list(summary.key_usage)

    @pytest.mark.parametrize("bits", [(True, True, False), (True, False, True)])
    def test_encipher_decipher_only(self, pki: TestPKI, bits: tuple[bool, bool, bool]) -> None:
        """encipherOnly/decipherOnly are read only with keyAgreement (else undefined)."""
        agreement, encipher, decipher = bits
        ku = x509.KeyUsage(False, False, False, False, agreement, False, False, encipher, decipher)
        cert, _ = make_cert(pki.sub_ca, extra=(ku,))
        names = summarize_certificate(cert, at=AT).key_usage
        assert "keyAgreement" in names
        assert ("encipherOnly" in names) is encipher
        assert ("decipherOnly" in names) is decipher


@settings(deadline=None)  # signs a certificate per example; the CPU is shared
@given(st.lists(st.sampled_from(["dns", "ip", "uri", "email", "dir", "rid"]), max_size=6))
def test_any_san_mix_is_listed_whole(pki: TestPKI, kinds: list[str]) -> None:
    """Whatever entries a SAN holds, each is listed once, with its type prefix."""
    make = {
        "dns": lambda: x509.DNSName("d.example.nhs.uk"),
        "ip": lambda: x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
        "uri": lambda: x509.UniformResourceIdentifier("https://u.nhs.uk/"),
        "email": lambda: x509.RFC822Name("e@nhs.net"),
        "dir": lambda: x509.DirectoryName(x509.Name([])),
        "rid": lambda: x509.RegisteredID(x509.ObjectIdentifier("1.2.3.4")),
    }
    prefixes = {"dns": "DNS:", "ip": "IP:", "uri": "URI:", "email": "email:", "dir": "DirName:",
                "rid": "RID:"}  # fmt: skip
    names = list(dict.fromkeys(kinds))  # a SAN may not repeat an entry
    extra = (x509.SubjectAlternativeName([make[k]() for k in names]),) if names else ()
    cert, _ = make_cert(pki.sub_ca, extra=extra)
    listed = summarize_certificate(cert, at=AT).subject_alt_names
    assert [entry.split(":", 1)[0] + ":" for entry in listed] == [prefixes[k] for k in names]
