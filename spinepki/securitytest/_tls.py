"""Probes below HTTP: a renegotiation, a garbage record, and how long TLS sessions live.

* **renegotiation**: a client-initiated renegotiation after the handshake, the way an
  attacker (and ``testssl.sh``) tries it: ``openssl s_client -tls1_2``, then ``R``.
  Python's ssl module cannot start one, so this probe needs the ``openssl`` command; the
  client credential is handed to it in a private temporary directory, deleted at once
  (as ``spinepki.tls`` does for ``SSLContext.load_cert_chain``).
* **garbage record**: one TLS application-data record of random bytes after a completed
  handshake. The record fails its MAC; a sound server ends that connection only.
* **session lifetime**: a resumed TLS session skips the handshake's certificate checks,
  so a session that outlives the revocation bound lets a revoked client in. The ticket
  lifetime a server announces (RFC 5077 §3.3) must not exceed it.

Whether the server still serves afterwards is the suite's own check after every probe
(``service.still_serving``).
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from spinepki._loading import (
    CertificateSource,
    PrivateKeySource,
    load_certificate_chain,
    load_private_key,
)
from spinepki.securitytest._http import Client

__all__ = ["Credential", "garbage_record", "renegotiation", "session_lifetime"]

#: Where the renegotiation probe finds ``openssl`` (None: the probe is undetermined).
OPENSSL = shutil.which("openssl")
#: How long the renegotiation probe watches for the server's reaction to ``R``.
RENEGOTIATION_GRACE = 1.0


class Credential:
    """The client credential as PEM bytes (for ``openssl s_client``)."""

    def __init__(
        self, cert: CertificateSource, key: PrivateKeySource, password: bytes | str | None
    ) -> None:
        self.chain = b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in load_certificate_chain(cert)
        )
        self.key = load_private_key(key, password=password).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @contextlib.contextmanager
    def files(self) -> Iterator[tuple[Path, Path]]:
        """The chain and key in a private (0700) directory, removed when the block ends."""
        with tempfile.TemporaryDirectory(prefix="spinepki-probe-") as tmp:
            os.chmod(tmp, 0o700)
            chain, key = Path(tmp) / "chain.pem", Path(tmp) / "key.pem"
            chain.write_bytes(self.chain)
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(self.key)
            yield chain, key


def renegotiation(
    client: Client, credential: Credential, timeout: float
) -> tuple[bool | None, str]:
    """Ask for a renegotiation after the handshake; passes when the server refuses it
    (an alert, or the connection closed). A server that renegotiates fails: every
    renegotiation costs it a full handshake, on the attacker's say-so."""
    if OPENSSL is None:
        return None, "not tested: needs the openssl command (Python cannot renegotiate)"
    host, port = client.address
    args = [OPENSSL, "s_client", "-connect", f"{_bracket(host)}:{port}", "-tls1_2"]
    if client.server_name is not None:
        args += ["-servername", client.server_name]
    with credential.files() as (chain, key):
        args += ["-cert", str(chain), "-key", str(key)]
        output = _s_client(args, timeout)
    if "Verify return code" not in output and "RENEGOTIATING" not in output:
        return None, "the handshake with openssl s_client did not complete"
    if "RENEGOTIATING" not in output:
        return None, "openssl s_client did not start the renegotiation"
    refused = ("no renegotiation", "alert", "errno", "closed", ":error:")
    tail = output.split("RENEGOTIATING", 1)[1]
    if any(marker in tail.lower() for marker in refused):
        return True, "refused (the server would not renegotiate)"
    if "verify return" in tail.lower() or "---" in tail:
        return False, "the server renegotiated: a client can make it do a full handshake at will"
    return True, "refused (no renegotiation completed)"


def _s_client(args: list[str], timeout: float, *, before: bytes = b"") -> str:
    """Run ``openssl s_client``: wait for the handshake, send ``before`` (application
    data), ask for a renegotiation (``R``), and collect what follows for a second (or
    until it exits); bounded by ``timeout``."""
    out = b""
    # The arguments are ours: the openssl found on PATH, the target's parsed host and
    # port (spinepki.securitytest.parse_url refuses anything but one host), temp files.
    with subprocess.Popen(  # noqa: S603
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as proc:
        try:
            out = _read(proc, out, timeout, until=b"Verify return code")
            if proc.stdin is not None:
                proc.stdin.write(before + b"R\n")
                proc.stdin.flush()
            out = _read(proc, out, min(timeout, RENEGOTIATION_GRACE))
        except OSError:
            pass
        finally:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
                rest, _ = proc.communicate(timeout=timeout)
                out += rest or b""
    return out.decode("latin-1")


def _read(
    proc: subprocess.Popen[bytes], out: bytes, seconds: float, *, until: bytes | None = None
) -> bytes:
    """Add s_client's output to ``out`` for ``seconds``, or until ``until`` appears or it
    exits (at most 1 MiB)."""
    if proc.stdout is None:  # pragma: no cover - always piped
        return out
    end = time.monotonic() + seconds
    while (until is None or until not in out) and len(out) < 1 << 20:
        left = end - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if not ready:
            break
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            break
        out += chunk
    return out


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def garbage_record(client: Client) -> tuple[bool | None, str]:
    """One application-data record of random bytes after the handshake. The verdict is
    the server's reaction on that connection; the suite then checks it still serves."""
    try:
        tls = client.connect()
    except OSError as exc:
        return None, f"could not open the connection: {exc}"
    with tls:
        # The record goes on the raw socket: it is garbage to the TLS layer by design.
        raw = socket.socket(fileno=os.dup(tls.fileno()))
        with raw:
            record = struct.pack("!BHH", 23, 0x0303, 32) + os.urandom(32)
            try:
                raw.sendall(record)
                raw.settimeout(client.timeout)
                reaction = raw.recv(4096)
            except TimeoutError:
                return True, "the server ignored it (the connection stayed open)"
            except OSError:
                return True, "the server reset the connection"
    if not reaction:
        return True, "the server closed the connection"
    if reaction[:1] == b"\x15":
        return True, "the server sent an alert"
    return True, f"the server sent {len(reaction)} bytes"


def session_lifetime(client: Client, max_staleness: float) -> tuple[bool, str]:
    """Whether the session tickets the server issues outlive ``max_staleness`` seconds."""
    try:
        with client.connect() as tls:
            # TLS 1.2 sends the ticket in the handshake; TLS 1.3 after it (a read takes it).
            tls.settimeout(0.2)
            with contextlib.suppress(OSError, ssl.SSLError):
                tls.recv(1)
            session = tls.session
    except OSError as exc:
        return False, f"could not open the connection: {exc}"
    if session is None or not session.has_ticket:
        return True, "no session tickets (session IDs only; their lifetime is the server's)"
    hint = session.ticket_lifetime_hint
    if hint == 0 or hint > max_staleness:
        shown = "no lifetime (0)" if hint == 0 else f"{hint} s"
        return False, (
            f"session tickets live {shown}, above the {max_staleness:g} s revocation bound: "
            "a resumed session skips the certificate checks"
        )
    return True, f"session tickets live {hint} s (at most {max_staleness:g} s)"
