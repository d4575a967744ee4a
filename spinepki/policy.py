"""The Spine TLS policy as data.

GP Connect providers SHALL accept only TLS 1.2 with mutual authentication and the
cipher string ``AESGCM+EECDH:AESGCM+EDH:AES256+EECDH:AES256+EDH`` in server order
(GP Connect development API security guidance, "[SEC]" in ``docs/policy.md``).

A :class:`TLSPolicy` is a frozen value: the contexts in :mod:`spinepki.tls`, the policy
check of any ``SSLContext``, the CLI's ``tls show`` and (later) the nginx/Apache/Tomcat
exports are all derived from the same object, so they cannot drift apart.
"""

from __future__ import annotations

import enum
import ssl
from dataclasses import dataclass

from spinepki.errors import PolicyError

__all__ = [
    "SPINE_POLICY",
    "SPINE_STRICT_POLICY",
    "CipherSuite",
    "ClientAuth",
    "TLSPolicy",
    "expand_ciphers",
    "normalise_cipher_string",
]

#: The seed's cipher string, exactly as GP Connect publishes it (colon form).
SPINE_CIPHER_STRING = "AESGCM+EECDH:AESGCM+EDH:AES256+EECDH:AES256+EDH"

#: The stricter profile: authenticated encryption (GCM) with forward secrecy only.
STRICT_CIPHER_STRING = "AESGCM+EECDH:AESGCM+EDH"


class ClientAuth(enum.Enum):
    """How a missing client certificate is treated (design decision 5).

    ``REQUIRE``: the handshake fails without a certificate (``SSLVerifyClient require``).
    ``HTTP_496``: the handshake completes without one, and the request gate answers
    HTTP 496 with an OperationOutcome, as the NHS provider assurance pack expects.
    A presented but invalid certificate is refused by the handshake in both modes.
    """

    REQUIRE = "require"
    HTTP_496 = "http-496"


def normalise_cipher_string(value: str) -> str:
    """Return the OpenSSL colon form of a cipher string.

    The GP Connect guidance prints the list comma-separated in places; OpenSSL also
    accepts commas and spaces as separators, but one canonical form keeps exports
    and comparisons simple.

    Raises:
        PolicyError: the string is empty.
    """
    parts = [p for p in value.replace(",", ":").replace(" ", ":").split(":") if p]
    if not parts:
        raise PolicyError("the cipher string is empty", source="ciphers")
    return ":".join(parts)


@dataclass(frozen=True, slots=True)
class CipherSuite:
    """One TLS 1.2 cipher suite as this OpenSSL names and describes it."""

    name: str
    """OpenSSL name, e.g. ``ECDHE-RSA-AES256-GCM-SHA384``."""
    code_point: int
    """The IANA code point, e.g. ``0xC030`` for ECDHE-RSA-AES256-GCM-SHA384."""
    key_exchange: str
    """``ECDHE``, ``DHE``, or (for strings outside the policy) another OpenSSL label."""
    authentication: str
    """``RSA``, ``ECDSA`` or ``DSS``: the server key type the suite needs."""
    aead: bool
    """True for GCM/CCM/ChaCha suites; False for CBC (weaker: padding-oracle history)."""
    sha1_mac: bool
    """True when the record MAC is HMAC-SHA1 (flagged as weaker)."""

    @property
    def needs_dh_params(self) -> bool:
        """DHE suites are only negotiated by Python after ``load_dh_params``."""
        return self.key_exchange == "DHE"

    @property
    def weaker(self) -> bool:
        """CBC or SHA-1 MAC suites: allowed by the seed string, flagged in reports."""
        return (not self.aead) or self.sha1_mac


def _suite_from_openssl(entry: dict[str, object]) -> CipherSuite:
    kx = str(entry.get("kea", ""))
    auth = str(entry.get("auth", ""))
    return CipherSuite(
        name=str(entry["name"]),
        # OpenSSL's cipher id is 0x0300XXXX where XXXX is the IANA code point.
        code_point=int(str(entry["id"])) & 0xFFFF,
        key_exchange="ECDHE" if kx == "kx-ecdhe" else ("DHE" if kx == "kx-dhe" else kx),
        authentication=_AUTH_NAMES.get(auth, auth),
        aead=bool(entry.get("aead")),
        sha1_mac=str(entry.get("description", "")).rstrip().endswith("Mac=SHA1"),
    )


_AUTH_NAMES = {"auth-rsa": "RSA", "auth-ecdsa": "ECDSA", "auth-dss": "DSS"}


def expand_ciphers(cipher_string: str) -> tuple[CipherSuite, ...]:
    """The TLS 1.2 suites ``cipher_string`` selects on this OpenSSL, in preference order.

    Raises:
        PolicyError: OpenSSL rejects the string or it selects no TLS 1.2 suite.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.set_ciphers(normalise_cipher_string(cipher_string))
    except ssl.SSLError as exc:
        raise PolicyError(
            f"OpenSSL selects no cipher suite from {cipher_string!r}", source="ciphers"
        ) from exc
    suites = tuple(
        _suite_from_openssl(dict(c))
        for c in ctx.get_ciphers()
        # TLS 1.3 suites are fixed by OpenSSL and not selected by this string; the
        # SHA-1 CBC suites report protocol "SSLv3"/"TLSv1" but are usable under TLS 1.2.
        if c.get("protocol") != "TLSv1.3"
    )
    if not suites:
        raise PolicyError(
            f"{cipher_string!r} selects no TLS 1.2 forward-secret suite on this OpenSSL",
            source="ciphers",
        )
    return suites


@dataclass(frozen=True, slots=True)
class TLSPolicy:
    """What a Spine endpoint must negotiate.

    The default instance, :data:`SPINE_POLICY`, is exactly the GP Connect rule; build
    another only to tighten it (:data:`SPINE_STRICT_POLICY`).
    """

    name: str
    """Short identifier used by the CLI and in reports (``spine``, ``spine-strict``)."""
    cipher_string: str = SPINE_CIPHER_STRING
    """OpenSSL cipher string for TLS 1.2 (colon form; the comma form is accepted)."""
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    """Lowest protocol version accepted. GP Connect: TLS 1.2."""
    maximum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    """Highest protocol version accepted. GP Connect predates TLS 1.3 and names 1.2 only."""
    honour_server_order: bool = True
    """The server's cipher order wins (``OP_CIPHER_SERVER_PREFERENCE``)."""
    client_certificate_required: bool = True
    """Mutual authentication. How a *missing* certificate is answered is :class:`ClientAuth`."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "cipher_string", normalise_cipher_string(self.cipher_string))
        if self.minimum_version > self.maximum_version:
            raise PolicyError(
                f"minimum version {self.minimum_version.name} is above maximum "
                f"{self.maximum_version.name}",
                source="policy",
            )

    def suites(self) -> tuple[CipherSuite, ...]:
        """The suites this policy selects on this OpenSSL, in server preference order."""
        return expand_ciphers(self.cipher_string)

    def allows_suite(self, name: str) -> bool:
        """True when ``name`` (OpenSSL naming) is one of this policy's suites."""
        return any(s.name == name for s in self.suites())


#: The GP Connect policy: TLS 1.2 only, the seed's cipher string, server order, mTLS.
SPINE_POLICY = TLSPolicy(name="spine")

#: A stricter profile: GCM suites with forward secrecy only (no CBC, no SHA-1 MAC).
#: Offered, not the default: the SSP may negotiate any suite the seed string allows.
SPINE_STRICT_POLICY = TLSPolicy(name="spine-strict", cipher_string=STRICT_CIPHER_STRING)
