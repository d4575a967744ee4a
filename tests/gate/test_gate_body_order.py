"""Issue 11 item 4: the middlewares decide everything that needs no body before reading it.

``RequestGate.check(body=None)`` then ``check_body`` must give the same answer as one
``check`` with the body (tested for every interaction that carries a body, and for
generated bodies), and a request refused on its certificate, headers or token never has
its body read: the ASGI ``receive`` is not called for it, the WSGI ``wsgi.input`` not read.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spinepki.gate import (
    GateASGIMiddleware,
    GateConfig,
    GateWSGIMiddleware,
    PeerCertificate,
    RequestGate,
)
from spinepki.gate._catalogue import Interaction
from tests.gate._helpers import (
    CURRENT,
    LEGACY,
    NOW_DT,
    SerialDenyList,
    check,
    fresh_request,
    interaction_ids,
    make_config,
    request_for,
)

WITH_BODY = [i for i in (*CURRENT, *LEGACY) if i.method.value in {"POST", "PUT", "PATCH"}]


def _gate(**over: Any) -> RequestGate:
    return RequestGate(make_config(enable_legacy_drafts=True, **over))


def _same(a: Any, b: Any) -> bool:
    return (a.allowed, a.status, a.spine_code, a.diagnostics) == (
        b.allowed,
        b.status,
        b.spine_code,
        b.diagnostics,
    )


class TestCheckBody:
    @pytest.mark.parametrize("interaction", WITH_BODY, ids=interaction_ids(WITH_BODY))
    def test_two_steps_equal_one(self, interaction: Interaction, ssp_cert: Any) -> None:
        """For every interaction with a body, and bodies that pass and fail its rules."""
        gate = _gate()
        req = request_for(interaction)
        first = check(gate, req, ssp_cert, body=None)
        assert first.allowed
        for body in (req.body or b"", b"{", b"[]", b'{"resourceType":"Patient"}', b"x" * 10):
            assert _same(gate.check_body(first, body), check(gate, req, ssp_cert, body=body))

    @given(
        body=st.one_of(
            st.binary(max_size=300),
            st.builds(
                lambda v: json.dumps(v).encode(),
                st.recursive(
                    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                    lambda inner: (
                        st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
                    ),
                    max_leaves=12,
                ),
            ),
        )
    )
    @settings(max_examples=150, deadline=None)
    def test_two_steps_equal_one_for_any_body(self, body: bytes, ssp_cert: Any) -> None:
        gate = _gate()
        for interaction in WITH_BODY:
            req = request_for(interaction)
            first = check(gate, req, ssp_cert, body=None)
            assert _same(gate.check_body(first, body), check(gate, req, ssp_cert, body=body))

    def test_a_refusal_is_returned_as_it_is(self, ssp_cert: Any) -> None:
        gate = _gate()
        req = request_for(WITH_BODY[0])
        refused = check(gate, req, ssp_cert, body=None, now=NOW_DT.replace(year=2100))
        assert not refused.allowed
        assert gate.check_body(refused, b"anything") is refused

    def test_body_incomplete(self) -> None:
        assert _gate().body_incomplete().status == 400


# -- the middlewares never read a refused request's body ----------------------------------


class _Fixed:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def from_scope(self, scope: Any) -> Any:
        return self.answer

    def from_environ(self, environ: Any) -> Any:
        return self.answer


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"created"})


def _refusals(pki: Any) -> list[tuple[str, GateConfig, Any, dict[str, str | None]]]:
    """(name, gate config, peer, header changes) for refusals that need no body."""
    ssp = pki.leaf("ssp").certificate
    revoking = make_config(certificate_checker=SerialDenyList([ssp.serial_number]))
    return [
        ("revoked certificate", revoking, ssp, {}),
        ("no certificate", make_config(), None, {}),
        ("bad token", make_config(), ssp, {"Authorization": "Bearer x.y."}),
        ("wrong Ssp-To", make_config(), ssp, {"Ssp-To": "999"}),
        ("no interaction id", make_config(), ssp, {"Ssp-InteractionID": None}),
    ]


@pytest.mark.parametrize("index", range(5))
def test_asgi_never_reads_a_refused_body(pki: Any, index: int) -> None:
    """receive() is not called for a request refused on its certificate, headers or
    token, and the refusal says Connection: close."""
    name, config, peer, change = _refusals(pki)[index]
    req = fresh_request(WITH_BODY[0])
    headers = [(k, v) for k, v in req.headers if k not in change]
    headers += [(k, v) for k, v in change.items() if v is not None]
    scope = {
        "type": "http",
        "method": req.method,
        "path": req.path,
        "query_string": req.query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers]
        + [(b"content-length", b"1000")],
    }
    reads: list[int] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        reads.append(1)
        await asyncio.sleep(3600)  # a body that never comes
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    source = _Fixed(PeerCertificate(peer) if peer is not None else None)
    mw = GateASGIMiddleware(_app, gate=RequestGate(config), cert_source=source)
    try:
        asyncio.run(asyncio.wait_for(mw(scope, receive, send), timeout=10))
    finally:
        # The check pool's threads end here, not at some later test's thread count.
        pool = mw._pool
        mw.close()
        if pool is not None:
            pool.shutdown(wait=True)
    assert reads == [], name
    assert sent[0]["status"] in {400, 495, 496}, name
    assert (b"connection", b"close") in sent[0]["headers"], name


@pytest.mark.parametrize("index", range(5))
def test_wsgi_never_reads_a_refused_body(pki: Any, index: int) -> None:
    name, config, peer, change = _refusals(pki)[index]
    req = fresh_request(WITH_BODY[0])

    class Unreadable(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise AssertionError(f"{name}: the body was read")

    environ: dict[str, Any] = {
        "REQUEST_METHOD": req.method,
        "PATH_INFO": req.path,
        "QUERY_STRING": req.query,
        "CONTENT_LENGTH": "1000",
        "wsgi.input": Unreadable(),
    }
    for key, value in req.headers:
        if key not in change:
            environ["HTTP_" + key.upper().replace("-", "_")] = value
    for key, value in change.items():
        if value is not None:
            environ["HTTP_" + key.upper().replace("-", "_")] = value
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        statuses.append(status)
        return lambda data: None

    source = _Fixed(PeerCertificate(peer) if peer is not None else None)
    mw = GateWSGIMiddleware(lambda e, s: [b""], gate=RequestGate(config), cert_source=source)
    list(mw(environ, start_response))
    assert statuses[0][:3] in {"400", "495", "496"}, name
