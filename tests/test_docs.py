"""The documentation runs: every code block in README.md and docs/ (conventions: docs_support).

Each page runs in its own temporary directory. Unless the page says
``<!-- docs-test: empty-dir -->``, that directory holds ``./pki``: a Spine-shaped test PKI
(RSA-2048, the layout of ``spinepki pki init ./pki``) whose CRL and OCSP URLs point at a
responder running on 127.0.0.1. Nothing may connect anywhere but the loopback interface.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.docs_support import (
    CLI_DOC,
    ROOT,
    DocsError,
    Page,
    PageRun,
    doc_files,
    gp_connect_token,
    loopback_only,
    parse_page,
    render_cli_docs,
    run_page,
    ssp_headers,
)

# Pages another engineer is writing right now: collected and listed, not run yet.
# (Empty this list once they are finished; their blocks must then pass like the rest.)
PENDING_FILES: tuple[str, ...] = ()

PAGES = [parse_page(p) for p in doc_files()]


def _pending(page: Page) -> bool:
    return any(str(page.path).startswith(prefix) for prefix in PENDING_FILES)


@pytest.fixture(scope="session")
def docs_responder() -> Iterator[Any]:
    """A CRL/OCSP responder on 127.0.0.1 serving the test PKI the pages use."""
    from spinepki.testpki import KeyType, TestPKI
    from spinepki.testpki.responder import Responder

    responder = Responder()
    try:
        responder.attach(TestPKI.create(key_type=KeyType.RSA_2048, base_url=responder.base_url))
        with responder:
            yield responder
    finally:
        responder.close()


@pytest.fixture
def docs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docs_responder: Any) -> Path:
    """A temporary working directory holding ``./pki`` (see the module docstring)."""
    from spinepki.testpki import write_pki

    write_pki(docs_responder.pki, tmp_path / "pki")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(page: Page, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: Any) -> PageRun:
    if page.empty_dir:
        monkeypatch.chdir(tmp_path)
    else:
        request.getfixturevalue("docs_dir")
    with loopback_only():
        return run_page(page)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.path))
def test_page_runs(
    page: Page, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: Any
) -> None:
    """Every block of the page runs (or parses) as the page says, in order."""
    if _pending(page):
        pytest.skip(f"{page.path} is pending (PENDING_FILES): being written by another engineer")
    assert not page.bad_markers, page.bad_markers
    try:
        _run(page, tmp_path, monkeypatch, request)
    except DocsError as exc:
        failure = str(exc)
    else:
        return
    pytest.fail(failure, pytrace=False)


SKIPPED = [b for page in PAGES if not _pending(page) for b in page.blocks if b.skip is not None]


@pytest.mark.parametrize("block", SKIPPED, ids=lambda b: b.where)
def test_skipped_block(block: Any) -> None:
    """A block opted out of running says why; the reason is listed in the test report."""
    reason = block.skip_reason
    assert reason, f"{block.where}: write the reason: <!-- docs-test: skip (reason) -->"
    pytest.skip(f"{block.where}: {reason}")


def test_skips_are_rare() -> None:
    """Opting out stays the exception: at most one block in six is skipped."""
    blocks = [b for page in PAGES if not _pending(page) for b in page.blocks]
    assert len(SKIPPED) * 6 <= len(blocks), [b.where for b in SKIPPED]


# -- the quickstart's apps, driven in-process -----------------------------------------------

QUICKSTART = next(p for p in PAGES if p.path == Path("docs/quickstart.md"))
READ_PATIENT = "urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1"
PATIENT_PATH = "/A12345/STU3/1/gpconnect/Patient/1"


def _app_after(run: PageRun, marker: str) -> Any:
    """The ``app`` the first block mentioning ``marker`` defined."""
    block = next(b for b in run.page.blocks if b.lang == "python" and marker in b.source)
    return run.after[block.line]["app"]


def _assert_outcome(status: int, headers: Any, body: Any, code: str) -> None:
    assert "no-store" in headers["cache-control"]
    assert body["resourceType"] == "OperationOutcome", body
    (issue,) = body["issue"]
    assert issue["severity"] == "error"
    (coding,) = issue["details"]["coding"]
    assert coding["code"] == code, (status, body)


def test_quickstart_asgi_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: Any, docs_responder: Any
) -> None:
    """The Starlette app: the SSP gets 200 + no-store; a bad request an OperationOutcome."""
    import httpx

    run = _run(QUICKSTART, tmp_path, monkeypatch, request)
    app = _app_after(run, "GateASGIMiddleware")

    def presenting(name: str | None) -> Any:
        chain = [] if name is None else [docs_responder.pki.leaf(name).cert_pem.decode()]

        async def with_tls(scope: Any, receive: Any, send: Any) -> None:
            # What anycorn puts in the scope after a TLS handshake (ASGI TLS extension).
            scope["extensions"] = {**scope.get("extensions", {}), "tls": {
                "client_cert_chain": chain, "tls_version": 0x0303}}  # fmt: skip
            await app(scope, receive, send)

        return with_tls

    async def get(name: str | None, headers: dict[str, str]) -> httpx.Response:
        transport = httpx.ASGITransport(app=presenting(name))
        async with httpx.AsyncClient(transport=transport, base_url="https://provider") as client:
            return await client.get(PATIENT_PATH, headers=headers)

    with loopback_only():
        ok = asyncio.run(get("ssp", ssp_headers(READ_PATIENT)))
        assert ok.status_code == 200, ok.text
        assert ok.headers["cache-control"] == "no-store"
        assert ok.json()["resourceType"] == "Patient"

        wrong_to = asyncio.run(get("ssp", ssp_headers(READ_PATIENT, provider_asid="123456789123")))
        assert wrong_to.status_code == 400
        _assert_outcome(400, wrong_to.headers, wrong_to.json(), "BAD_REQUEST")

        revoked = asyncio.run(get("revoked", ssp_headers(READ_PATIENT)))
        assert revoked.status_code == 495
        _assert_outcome(495, revoked.headers, revoked.json(), "ACCESS_DENIED_SSL")

        missing = asyncio.run(get(None, ssp_headers(READ_PATIENT)))
        assert missing.status_code == 496
        _assert_outcome(496, missing.headers, missing.json(), "ACCESS_DENIED_SSL")


def test_quickstart_wsgi_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: Any, docs_responder: Any
) -> None:
    """The Flask app: the SSP gets 200 + no-store; a bad request an OperationOutcome."""
    run = _run(QUICKSTART, tmp_path, monkeypatch, request)
    app = _app_after(run, "GateWSGIMiddleware")
    client = app.test_client()

    def get(name: str | None, headers: dict[str, str]) -> Any:
        # What werkzeug's dev server and mod_wsgi put in the environ after a handshake.
        environ = {} if name is None else {
            "SSL_CLIENT_CERT": docs_responder.pki.leaf(name).cert_pem.decode()}  # fmt: skip
        return client.get(PATIENT_PATH, headers=headers, environ_base=environ)

    with loopback_only():
        ok = get("ssp", ssp_headers(READ_PATIENT))
        assert ok.status_code == 200, ok.get_data(as_text=True)
        assert ok.headers["Cache-Control"] == "no-store"
        assert ok.get_json()["resourceType"] == "Patient"

        bad_scope = get(
            "ssp", ssp_headers(READ_PATIENT, token=gp_connect_token(scope="organization/*.read"))
        )
        assert bad_scope.status_code == 400
        _assert_outcome(400, bad_scope.headers, bad_scope.get_json(), "BAD_REQUEST")

        expired = get("expired", ssp_headers(READ_PATIENT))
        assert expired.status_code == 495
        _assert_outcome(495, expired.headers, expired.get_json(), "ACCESS_DENIED_SSL")


# -- reference pages that must not drift ---------------------------------------------------


def test_cli_reference_is_current() -> None:
    """docs/cli.md is exactly what --help says (regenerate: python -m tests.docs_support)."""
    assert CLI_DOC.exists(), "run: .venv/bin/python -m tests.docs_support"
    assert CLI_DOC.read_text(encoding="utf-8") == render_cli_docs(), (
        "docs/cli.md is out of date: run .venv/bin/python -m tests.docs_support"
    )


def test_index_links_every_page() -> None:
    """docs/index.md links every Markdown page under docs/ (and the decisions folder)."""
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([^)#\s]+)", index))
    for path in doc_files():
        if path.parts[0] != "docs" or path == Path("docs/index.md"):
            continue
        relative = path.relative_to("docs").as_posix()
        folder = relative.split("/", 1)[0] + "/" if "/" in relative else None
        assert relative in linked or folder in linked, f"docs/index.md does not link {relative}"
    for target in linked:
        if not target.startswith(("http://", "https://")):
            assert (ROOT / "docs" / target).exists(), f"docs/index.md links a missing {target}"


def test_nginx_guide_uses_the_policy() -> None:
    """The nginx guide's protocol and cipher lines are SPINE_POLICY's values."""
    from spinepki import SPINE_POLICY

    page = next(p for p in PAGES if p.path == Path("docs/deploy-nginx.md"))
    config = "\n".join(b.source for b in page.blocks if b.lang == "nginx")
    assert "ssl_protocols TLSv1.2;" in config
    assert f'ssl_ciphers "{SPINE_POLICY.cipher_string}";' in config
    assert "ssl_prefer_server_ciphers on;" in config
    assert "add_header Cache-Control no-store always;" in config


def test_reference_pages_cover_every_code() -> None:
    """validation.md names every FailureCode; revocation.md every RevocationMode."""
    from spinepki import FailureCode, RevocationMode

    validation = (ROOT / "docs" / "validation.md").read_text(encoding="utf-8")
    revocation = (ROOT / "docs" / "revocation.md").read_text(encoding="utf-8")
    assert [c.name for c in FailureCode if f"`{c.name}`" not in validation] == []
    assert [m.value for m in RevocationMode if f"`{m.value}`" not in revocation] == []
