"""Load errors say what an input is and what was expected, never cryptography's internals."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from spinepki._loading import describe_input, load_certificates, load_private_key
from spinepki.errors import CertificateLoadError, CRLParseError, KeyLoadError, SpinePKIError
from spinepki.revocation import load_crl
from spinepki.testpki import TestPKI

#: What cryptography's messages look like; none may reach a user.
INTERNALS = ("ParseError {", "https://cryptography.io", "MalformedFraming", "Tag {", "kind:")


@pytest.fixture(scope="module")
def inputs(spine_pki: TestPKI) -> dict[str, bytes]:
    """Every kind of PKI file, in PEM and DER."""
    leaf = spine_pki.leaf("ssp")
    key = leaf.private_key
    crl = spine_pki.crl()
    return {
        "cert-pem": leaf.cert_pem,
        "cert-der": leaf.certificate.public_bytes(serialization.Encoding.DER),
        "key-pem": leaf.key_pem,
        "key-der": key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        "crl-pem": crl.public_bytes(serialization.Encoding.PEM),
        "crl-der": crl.public_bytes(serialization.Encoding.DER),
        "public-key-der": key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "text": b"hello, this is a README\n",
        "empty": b"",
        "binary": bytes(range(1, 256)),
    }


class TestDescribeInput:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("cert-pem", "a PEM CERTIFICATE"),
            ("cert-der", "a DER certificate"),
            ("key-pem", "a PEM PRIVATE KEY"),
            ("key-der", "a DER private key"),
            ("crl-pem", "a PEM X509 CRL"),
            ("crl-der", "a DER CRL"),
            ("public-key-der", "a DER public key"),
            ("text", "text without a PEM block"),
            ("empty", "empty"),
            ("binary", "binary data (neither PEM nor DER)"),
        ],
    )
    def test_names_each_kind(self, inputs: dict[str, bytes], name: str, expected: str) -> None:
        """Each kind of file is named by its PEM label or DER shape."""
        assert describe_input(inputs[name]) == expected

    def test_several_pem_blocks(self, inputs: dict[str, bytes]) -> None:
        """A file with a key and a certificate lists both labels."""
        both = inputs["key-pem"] + inputs["cert-pem"]
        assert describe_input(both) == "PEM blocks PRIVATE KEY, CERTIFICATE"

    def test_truncated_der(self, inputs: dict[str, bytes]) -> None:
        """DER cut short is called damaged, not binary noise."""
        assert describe_input(inputs["cert-der"][:-10]) == "damaged or truncated DER"

    @given(st.binary(max_size=2000))
    def test_never_fails(self, data: bytes) -> None:
        """Any bytes get a short description and no exception."""
        text = describe_input(data)
        assert 0 < len(text) < 120

    def test_bounded_on_a_huge_input(self, inputs: dict[str, bytes]) -> None:
        """100,000 PEM blocks: only the first few labels are looked at."""
        many = inputs["cert-pem"] * 100_000  # about 60 MB
        assert describe_input(many) == "a PEM CERTIFICATE"


class TestMessages:
    @pytest.mark.parametrize(
        ("name", "says"),
        [
            ("key-pem", "a PEM PRIVATE KEY, not a certificate"),
            ("key-der", "a DER private key, not a certificate"),
            ("crl-pem", "a PEM X509 CRL, not a certificate"),
            ("crl-der", "a DER CRL, not a certificate"),
            ("text", "text without a PEM block, not a certificate"),
            ("empty", "the input is empty; expected PEM CERTIFICATE blocks"),
        ],
    )
    def test_certificate_loader(self, inputs: dict[str, bytes], name: str, says: str) -> None:
        """Not a certificate: the message says what it is and what was expected."""
        with pytest.raises(CertificateLoadError) as info:
            load_certificates(inputs[name], source="in.pem")
        assert str(info.value).startswith(f"in.pem: {says}")
        assert "expected" in str(info.value)

    @pytest.mark.parametrize(
        ("name", "says"),
        [
            ("cert-pem", "a PEM CERTIFICATE, not a private key"),
            ("crl-der", "a DER CRL, not a private key"),
            ("text", "text without a PEM block, not a private key"),
        ],
    )
    def test_key_loader(self, inputs: dict[str, bytes], name: str, says: str) -> None:
        """Not a key: the message says what it is."""
        with pytest.raises(KeyLoadError) as info:
            load_private_key(inputs[name], source="in.key")
        assert str(info.value).startswith(f"in.key: {says}")

    @pytest.mark.parametrize(
        ("name", "says"),
        [
            ("cert-pem", "a PEM CERTIFICATE, not a CRL"),
            ("key-der", "a DER private key, not a CRL"),
            ("empty", "the input is empty; expected PEM X509 CRL"),
        ],
    )
    def test_crl_loader(self, inputs: dict[str, bytes], name: str, says: str) -> None:
        """Not a CRL: the message says what it is."""
        with pytest.raises(CRLParseError) as info:
            load_crl(inputs[name], source="in.crl")
        assert str(info.value).startswith(f"in.crl: {says}")

    def test_damaged_certificate_says_why_in_words(self, inputs: dict[str, bytes]) -> None:
        """A certificate cut short: 'does not parse', with a short reason."""
        with pytest.raises(CertificateLoadError) as info:
            load_certificates(inputs["cert-pem"][:300], source="cut.pem")
        assert str(info.value) == "cut.pem: a certificate that does not parse: damaged PEM framing"

    @given(st.sampled_from(["certificate", "key", "crl"]), st.binary(max_size=1500))
    def test_no_internals_for_any_bytes(self, kind: str, data: bytes) -> None:
        """Whatever the bytes, a refusal is a typed error in plain words."""
        loader = {
            "certificate": lambda d: load_certificates(d, source="x"),
            "key": lambda d: load_private_key(d, source="x"),
            "crl": lambda d: load_crl(d, source="x"),
        }[kind]
        try:
            loader(data)
        except SpinePKIError as exc:
            message = str(exc)
        else:
            return
        assert not any(marker in message for marker in INTERNALS), message

    @given(st.integers(0, 2000), st.integers(1, 255))
    def test_no_internals_for_damaged_certificates(
        self, inputs: dict[str, bytes], where: int, value: int
    ) -> None:
        """A real certificate with one byte changed: plain words too."""
        der = bytearray(inputs["cert-der"])
        der[where % len(der)] ^= value
        try:
            load_certificates(bytes(der), source="x")
        except CertificateLoadError as exc:
            message = str(exc)
        else:
            return
        assert not any(marker in message for marker in INTERNALS), message
