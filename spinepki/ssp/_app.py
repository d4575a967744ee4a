"""The SSP simulator as an ASGI application (run under the reference provider's server).

Per request, in order: the consumer's certificate (496 without one; 495 when it fails
the validator: chain, time, revocation, a name no consumer is registered with), the
directory's checks (:func:`~spinepki.ssp._route.route`), the body (bounded, 413), then
the provider hop (:class:`~spinepki.ssp._upstream.ProviderHop`). A refused request is
answered by the simulator and never forwarded: the provider hop starts only from a
:class:`Route`. Both hops are audited with the trace ID.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from spinepki._asgi import Unread, read_body
from spinepki.errors import CertificateLoadError
from spinepki.gate import TLSExtensionSource
from spinepki.ssp._audit import Hop, SSPAuditLogger
from spinepki.ssp._config import Directory, ForwardingLimits
from spinepki.ssp._headers import forwarded_element, request_headers
from spinepki.ssp._outcome import SSPError, SSPRefusal
from spinepki.ssp._route import Route, route
from spinepki.validation import ClientCertValidator, ValidationResult

if TYPE_CHECKING:
    from spinepki.ssp._upstream import ProviderHop

__all__ = ["CLIENT_CLOSED", "SSPApp", "SSPStats"]

#: The audit code of a request whose consumer left before its body was complete.
CLIENT_CLOSED = "CLIENT_CLOSED_REQUEST"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SSPStats:
    """Counters of a running simulator (a snapshot)."""

    requests: int
    """HTTP requests received from consumers."""
    refused: int
    """Requests the simulator answered itself (495, 496, 400, 403, 405, 413), or did not
    forward because the consumer left before its body was complete."""
    forwarded: int
    """Requests written to a provider (a provider whose certificate fails, or that
    cannot be reached, is never written to)."""
    provider_failures: int
    """Forwarded requests that got 502/504 or a response cut short."""


class _Counters:
    __slots__ = ("provider_failures", "refused", "requests")

    def __init__(self) -> None:
        self.requests = self.refused = self.provider_failures = 0


class SSPApp:
    """The simulator's request handling, as a pure ASGI application.

    Args:
        directory: the systems and what each may send or receive.
        consumer_validator: validates consumers' client certificates; its FQDNs are the
            registered consumer endpoint FQDNs.
        provider_hop: the connections to the providers.
        forwarding: the methods forwarded.
        max_body_bytes: the largest request body buffered (413 beyond).
        audit: where hop events go (default: the ``spinepki.audit.ssp`` logger).
        clock: the time of each decision (certificate validation, audit).
    """

    def __init__(
        self,
        directory: Directory,
        *,
        consumer_validator: ClientCertValidator,
        provider_hop: ProviderHop,
        forwarding: ForwardingLimits,
        max_body_bytes: int,
        audit: SSPAuditLogger | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._directory = directory
        self._validator = consumer_validator
        self._hop = provider_hop
        self._methods = forwarding.methods
        self._max_body = max_body_bytes
        self._audit = audit or SSPAuditLogger()
        self._clock = clock or functools.partial(datetime.now, UTC)
        self._source = TLSExtensionSource()
        self._counters = _Counters()

    @property
    def stats(self) -> SSPStats:
        """Current counters."""
        c = self._counters
        return SSPStats(c.requests, c.refused, self._hop.requests_sent, c.provider_failures)

    @property
    def idle_provider_connections(self) -> int:
        """Kept-alive provider connections waiting for a request."""
        return self._hop.idle_connections

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI scope."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # GP Connect has no websockets
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        self._counters.requests += 1
        now = self._clock()
        method = scope["method"]
        result = await self._certificate(scope, now)
        if isinstance(result, SSPRefusal):
            await self._refuse(result, scope, send, now)
            return
        decision = route(
            self._directory,
            self._methods,
            method,
            scope.get("raw_path") or scope["path"].encode("latin-1", "replace"),
            scope.get("query_string", b""),
            scope["headers"],
            result.fqdn or "",
        )
        if isinstance(decision, SSPRefusal):
            await self._refuse(decision, scope, send, now, fqdn=result.fqdn)
            return
        body = await read_body(scope, receive, self._max_body)
        if body is Unread.INCOMPLETE:
            # The consumer left before its body was complete: a truncated request is
            # never forwarded, and there is nobody to answer (499 in the audit trail, the
            # SSP implementation guide's "Client Closed Request").
            self._counters.refused += 1
            self._audit.record(
                Hop.CONSUMER,
                status=499,
                forwarded=False,
                code=CLIENT_CLOSED,
                detail="the consumer closed the connection before its body arrived",
                now=now,
                **_facts(decision, method, result.fqdn),
            )
            return
        if body is Unread.TOO_LARGE:
            refusal = SSPRefusal(
                SSPError.BODY_TOO_LARGE,
                SSPError.BODY_TOO_LARGE.value,
                f"the request body is over {self._max_body} bytes",
            )
            await self._refuse(refusal, scope, send, now, fqdn=result.fqdn, route_=decision)
            return
        await self._forward(decision, scope, body, send, now, result.fqdn)

    async def _certificate(self, scope: Scope, now: datetime) -> ValidationResult | SSPRefusal:
        """The consumer certificate's validation result, or the 495/496 refusal."""
        try:
            peer = self._source.from_scope(scope)
        except CertificateLoadError:
            return SSPRefusal(
                SSPError.CERTIFICATE_INVALID,
                SSPError.CERTIFICATE_INVALID.value,
                "the client certificate cannot be read",
            )
        if peer is None:
            return SSPRefusal(
                SSPError.CERTIFICATE_MISSING,
                SSPError.CERTIFICATE_MISSING.value,
                "no client certificate",
            )
        validator = self._validator
        result = validator.cached(peer.leaf, peer.intermediates, at=now)
        if result is None:
            # A first sight (or expired evidence) may fetch a CRL or ask OCSP: off the loop.
            import anyio.to_thread  # noqa: PLC0415 - with anycorn, which serves this app

            result = await anyio.to_thread.run_sync(
                functools.partial(validator.validate, peer.leaf, peer.intermediates, at=now)
            )
        if result.valid:
            return result
        codes = ", ".join(str(code) for code in result.codes)
        return SSPRefusal(
            SSPError.CERTIFICATE_INVALID,
            SSPError.CERTIFICATE_INVALID.value,
            f"the client certificate is not acceptable: {codes}",
        )

    async def _forward(
        self,
        decision: Route,
        scope: Scope,
        body: bytes,
        send: Send,
        now: datetime,
        fqdn: str | None,
    ) -> None:
        method = scope["method"]
        headers = request_headers(
            scope["headers"],
            decision,
            body,
            method,
            forwarded_element(scope.get("client"), _header(scope["headers"], b"host")),
        )
        hop = await self._hop.forward(decision, method, headers, body, send)
        facts = _facts(decision, method, fqdn)
        code = hop.refusal.error.value if hop.refusal is not None else None
        self._audit.record(
            Hop.PROVIDER,
            status=hop.status,
            forwarded=hop.sent,
            code=code,
            detail=hop.detail,
            elapsed=hop.elapsed,
            now=now,
            **facts,
        )
        if hop.refusal is not None or not hop.complete:
            self._counters.provider_failures += 1
        # Recorded before a 502/504 goes out, so the record exists when the consumer has
        # the answer (a relayed response was already sent by the hop).
        self._audit.record(
            Hop.CONSUMER,
            status=hop.status,
            forwarded=hop.sent,
            code=code,
            detail="forwarded" if hop.complete else hop.detail,
            now=now,
            **facts,
        )
        if hop.refusal is not None:
            await _answer(hop.refusal, send)

    async def _refuse(
        self,
        refusal: SSPRefusal,
        scope: Scope,
        send: Send,
        now: datetime,
        *,
        fqdn: str | None = None,
        route_: Route | None = None,
    ) -> None:
        self._counters.refused += 1
        facts: dict[str, Any]
        if route_ is not None:
            facts = _facts(route_, scope["method"], fqdn)
        else:
            # Before the directory accepted the request only the certificate's name is
            # known for sure; the headers' values are recorded when identifier-shaped.
            headers = scope["headers"]
            facts = {
                "method": scope["method"],
                "trace_id": _text(_header(headers, b"ssp-traceid")),
                "from_asid": _text(_header(headers, b"ssp-from")),
                "to_asid": _text(_header(headers, b"ssp-to")),
                "consumer_fqdn": fqdn,
            }
        self._audit.record(
            Hop.CONSUMER,
            status=refusal.status,
            forwarded=False,
            code=refusal.error.value,
            detail=refusal.detail or refusal.display,
            now=now,
            **facts,
        )
        await _answer(refusal, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._hop.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _facts(decision: Route, method: str, fqdn: str | None) -> dict[str, Any]:
    return {
        "method": method,
        "interaction_id": decision.interaction.interaction_id,
        "trace_id": decision.trace_id,
        "from_asid": decision.consumer.asid,
        "to_asid": decision.provider.asid,
        "consumer_fqdn": fqdn,
        "consumer_ods": decision.consumer.ods,
        "provider_ods": decision.provider.ods,
    }


def _header(headers: Any, name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return bytes(value)
    return None


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None


async def _answer(refusal: SSPRefusal, send: Send) -> None:
    headers, body = refusal.response()
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
