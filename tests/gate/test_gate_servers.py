"""Every gate rule through a real server: TLS handshakes and HTTP on 127.0.0.1.

ASGI: anycorn (it fills the ASGI TLS extension; hypercorn 0.18 and uvicorn 0.54 do not)
running Starlette. WSGI: werkzeug's server (it sets ``SSL_CLIENT_CERT``) running Flask.
Both use ``spinepki.tls.server_context`` in http-496 mode and ``spinepki.testpki``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from spinepki.gate import INTERACTIONS, RootKind
from tests.gate._helpers import (
    CURRENT,
    FROM_ASID,
    READ_METADATA,
    READ_PATIENT,
    ROOTS,
    Server,
    b64,
    encode,
    fresh_request,
    interaction_ids,
    outcome_of,
    ssp_headers,
)

pytestmark = pytest.mark.network

BY_ID = {(i.interaction_id, i.root): i for i in INTERACTIONS}
METADATA = BY_ID[(READ_METADATA, RootKind.FOUNDATIONS)]
PATIENT = BY_ID[(READ_PATIENT, RootKind.FOUNDATIONS)]


def assert_allowed(response: Any, method: str, path: str) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    echoed = response.json()
    assert (echoed["method"], echoed["path"]) == (method, path)


def assert_bad_request(response: Any, code: str = "BAD_REQUEST", status: int = 400) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/")
    got = outcome_of(response)
    assert got["code"] == code
    return str(got["diagnostics"])


class TestCatalogue:
    """Each catalogue entry: allowed as specified, refused with another method, path or ID."""

    @pytest.mark.parametrize("interaction", CURRENT, ids=interaction_ids(CURRENT))
    def test_allowed_asgi(self, asgi_server: Server, interaction: Any) -> None:
        """The specified method + path + ID reaches the Starlette app with no-store."""
        req = fresh_request(interaction)
        resp = asgi_server.send(req)
        assert_allowed(resp, req.method, req.path)
        assert resp.json()["body_length"] == len(req.body or b"")

    @pytest.mark.parametrize("interaction", CURRENT, ids=interaction_ids(CURRENT))
    def test_allowed_wsgi(self, wsgi_server: Server, interaction: Any) -> None:
        """The specified method + path + ID reaches the Flask app with no-store."""
        req = fresh_request(interaction)
        assert_allowed(wsgi_server.send(req), req.method, req.path)

    @pytest.mark.parametrize("interaction", CURRENT, ids=interaction_ids(CURRENT))
    def test_wrong_method(self, asgi_server: Server, interaction: Any) -> None:
        """Any other HTTP verb for the ID is 400 BAD_REQUEST."""
        req = fresh_request(interaction)
        other = "DELETE" if req.method != "DELETE" else "GET"
        resp = asgi_server.ssp.request(
            other, asgi_server.base_url + req.url_path, headers=req.headers
        )
        assert "HTTP method" in assert_bad_request(resp)

    @pytest.mark.parametrize("interaction", CURRENT, ids=interaction_ids(CURRENT))
    def test_wrong_path(self, asgi_server: Server, interaction: Any) -> None:
        """The ID on a path it does not name (here: the wrong case) is 400 BAD_REQUEST."""
        req = fresh_request(interaction)
        root = ROOTS[interaction.root]
        wrong = root + req.path[len(root) :].swapcase()
        resp = asgi_server.ssp.request(
            req.method,
            asgi_server.base_url + wrong + (f"?{req.query}" if req.query else ""),
            headers=req.headers,
            content=req.body,
        )
        assert "path does not match" in assert_bad_request(resp)

    @pytest.mark.parametrize("interaction", CURRENT, ids=interaction_ids(CURRENT))
    def test_wrong_id(self, asgi_server: Server, interaction: Any) -> None:
        """An interaction ID that is not in the catalogue is 400 BAD_REQUEST."""
        req = fresh_request(interaction)
        headers = [(k, v[:-1] + "9" if k == "Ssp-InteractionID" else v) for k, v in req.headers]
        resp = asgi_server.send(req, headers=headers)
        assert "unknown interaction" in assert_bad_request(resp)

    def test_other_roots_interaction_on_wrong_root(self, asgi_server: Server) -> None:
        """A Foundations metadata ID sent to the Structured root is refused (rules §2.1 pairs)."""
        req = fresh_request(METADATA)
        resp = asgi_server.ssp.get(
            asgi_server.base_url + ROOTS[RootKind.STRUCTURED] + "/metadata", headers=req.headers
        )
        assert_bad_request(resp)

    def test_update_and_cancel_share_a_path(self, asgi_server: Server) -> None:
        """update and cancel appointment are both acceptable on PUT /Appointment/{id}."""
        for action in ("update", "cancel"):
            iid = f"urn:nhs:names:services:gpconnect:fhir:rest:{action}:appointment-1"
            req = fresh_request(BY_ID[(iid, RootKind.FOUNDATIONS)])
            assert asgi_server.send(req).status_code == 200


class TestSearchIdentifier:
    """Search interactions need exactly one identifier with an allowed system [DEMO]."""

    def _search(self) -> Any:
        iid = "urn:nhs:names:services:gpconnect:fhir:rest:search:patient-1"
        return BY_ID[(iid, RootKind.FOUNDATIONS)]

    @pytest.mark.parametrize(
        ("query", "code"),
        [
            ("", "BAD_REQUEST"),
            ("identifier=https://fhir.nhs.uk/Id/nhs-number|1&identifier=x|2", "BAD_REQUEST"),
            ("identifier=https://fhir.nhs.uk/Id/local|9658218873", "INVALID_IDENTIFIER_SYSTEM"),
            ("identifier=9658218873", "INVALID_IDENTIFIER_SYSTEM"),
        ],
        ids=["missing", "twice", "wrong-system", "no-system"],
    )
    def test_bad_identifier(self, asgi_server: Server, query: str, code: str) -> None:
        """A missing, repeated or wrongly-systemed identifier is refused."""
        req = fresh_request(self._search())
        url = asgi_server.base_url + req.path + (f"?{query}" if query else "")
        resp = asgi_server.ssp.get(url, headers=req.headers)
        diagnostics = assert_bad_request(resp, code)
        assert "9658218873" not in diagnostics
        # Identity codes carry issue type "value" (rules §1.3); header problems "invalid".
        assert outcome_of(resp)["issue"] == (
            "value" if code == "INVALID_IDENTIFIER_SYSTEM" else "invalid"
        )


class TestHeaders:
    """SSP header rules (rules §1.1), through the ASGI middleware."""

    @pytest.mark.parametrize(
        "name", ["Ssp-TraceID", "Ssp-From", "Ssp-To", "Ssp-InteractionID", "Authorization"]
    )
    @pytest.mark.parametrize("value", [None, ""], ids=["missing", "blank"])
    def test_missing_or_blank(self, asgi_server: Server, name: str, value: str | None) -> None:
        """Each SSP header missing or blank -> 400 BAD_REQUEST naming the header."""
        req = fresh_request(METADATA)
        headers = ssp_headers(READ_METADATA, req.headers[-1][1][7:], **{name: value})
        diagnostics = assert_bad_request(asgi_server.send(req, headers=headers))
        assert name in diagnostics

    def test_wrong_to_asid(self, asgi_server: Server) -> None:
        """Ssp-To other than the provider's ASID -> 400 (test pack uses 123456789123)."""
        req = fresh_request(METADATA)
        headers = [(k, "123456789123" if k == "Ssp-To" else v) for k, v in req.headers]
        assert "Ssp-To" in assert_bad_request(asgi_server.send(req, headers=headers))

    def test_names_case_insensitive(self, asgi_server: Server) -> None:
        """``Ssp-InteractionId`` (the test pack's spelling) and lower-case names work."""
        req = fresh_request(METADATA)
        headers = [
            ("Ssp-InteractionId" if k == "Ssp-InteractionID" else k.lower(), v)
            for k, v in req.headers
        ]
        assert asgi_server.send(req, headers=headers).status_code == 200

    @pytest.mark.parametrize("name", ["Ssp-TraceID", "Ssp-From", "Ssp-To", "Ssp-InteractionID"])
    def test_duplicate_rejected(self, asgi_server: Server, name: str) -> None:
        """A repeated SSP header is refused, even with identical values."""
        req = fresh_request(METADATA)
        value = dict(req.headers)[name]
        headers = [*req.headers, (name, value)]
        assert "more than once" in assert_bad_request(asgi_server.send(req, headers=headers))

    @pytest.mark.parametrize("name", ["Ssp-From", "Ssp-To"])
    def test_duplicate_rejected_wsgi(self, wsgi_server: Server, name: str) -> None:
        """Under WSGI the server joins duplicates with a comma, which is refused too."""
        req = fresh_request(METADATA)
        headers = [*req.headers, (name, FROM_ASID)]
        assert_bad_request(wsgi_server.send(req, headers=headers))

    def test_extra_headers_tolerated(self, asgi_server: Server) -> None:
        """Additional non-standard headers are allowed (0.7 'allow and audit' test)."""
        req = fresh_request(METADATA)
        headers = [*req.headers, ("X-Extra", "1"), ("X-Extra", "2"), ("Forwarded", "for=x")]
        assert asgi_server.send(req, headers=headers).status_code == 200

    def test_too_many_headers(self, asgi_server: Server) -> None:
        """More headers than the limit -> 400, not a crash."""
        req = fresh_request(METADATA)
        headers = [*req.headers, *((f"X-H{i}", "v") for i in range(120))]
        assert "too many headers" in assert_bad_request(asgi_server.send(req, headers=headers))

    def test_authorization_not_bearer(self, asgi_server: Server) -> None:
        """A non-Bearer Authorization is 400."""
        req = fresh_request(METADATA)
        headers = [(k, "Basic Zm9vOmJhcg==" if k == "Authorization" else v) for k, v in req.headers]
        assert "Bearer" in assert_bad_request(asgi_server.send(req, headers=headers))


def _send_token(server: Server, token: str, interaction: Any = PATIENT) -> Any:
    req = fresh_request(interaction)
    headers = [(k, f"Bearer {token}" if k == "Authorization" else v) for k, v in req.headers]
    return server.send(req, headers=headers)


def _claims(interaction: Any = PATIENT, **over: Any) -> dict[str, Any]:
    claims = fresh_request(interaction).claims
    for key, value in over.items():
        if value is _DROP:
            claims.pop(key)
        else:
            claims[key] = value
    return claims


_DROP = object()
_NOW = object()  # placeholder resolved per test to the real clock


class TestJWT:
    """Every JWT rule of rules §3 (error mapping §3.6), through the ASGI middleware."""

    def test_example_token_a_with_fresh_times_passes(self, asgi_server: Server) -> None:
        """Rules §3.7 token A, with fresh iat/exp, is accepted."""
        assert _send_token(asgi_server, encode(_claims())).status_code == 200

    @pytest.mark.parametrize(
        "token",
        [
            pytest.param("not-a-jwt", id="one-part"),
            pytest.param("a.b", id="two-parts"),
            pytest.param('{"alg":"none"}.{"iss":"x"}.', id="raw-json"),
            pytest.param("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0=.e30.", id="padded"),
            pytest.param("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.e30+.", id="std-alphabet"),
            pytest.param("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.e30.c2ln", id="signature"),
            pytest.param("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.e31.", id="non-canonical"),
            pytest.param("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.W10.", id="payload-array"),
            pytest.param("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.bnVsbA.", id="payload-null"),
        ],
    )
    def test_malformed_token(self, asgi_server: Server, token: str) -> None:
        """Tokens that are not a strict unsecured JWT are 400 BAD_REQUEST."""
        assert_bad_request(_send_token(asgi_server, token))

    @pytest.mark.parametrize(
        "header",
        [
            {"alg": "HS256", "typ": "JWT"},
            {"alg": "none"},
            {"alg": "none", "typ": "JWT", "kid": "1"},
            {"alg": "None", "typ": "JWT"},
        ],
        ids=["hs256", "no-typ", "extra-key", "alg-case"],
    )
    def test_header_must_be_exact(self, asgi_server: Server, header: dict[str, str]) -> None:
        """The header must be exactly {"alg":"none","typ":"JWT"} [JWT][DEMO]."""
        assert "header" in assert_bad_request(_send_token(asgi_server, encode(_claims(), header)))

    def test_header_key_order_free(self, asgi_server: Server) -> None:
        """.NET may emit typ before alg; key order is not significant."""
        token = encode(_claims(), {"typ": "JWT", "alg": "none"})
        assert _send_token(asgi_server, token).status_code == 200

    @pytest.mark.parametrize(
        "claim",
        [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "reason_for_request",
            "requested_scope",
            "requesting_device",
            "requesting_organization",
            "requesting_practitioner",
        ],
    )
    @pytest.mark.parametrize("how", ["missing", "null"])
    def test_required_claim(self, asgi_server: Server, claim: str, how: str) -> None:
        """Each required claim missing or null -> 400 naming the claim (rules §3.5.2)."""
        claims = _claims(**{claim: _DROP if how == "missing" else None})
        diagnostics = assert_bad_request(_send_token(asgi_server, encode(claims)))
        assert claim in diagnostics

    @pytest.mark.parametrize(
        ("claim", "value"),
        [
            ("iss", 1),
            ("sub", ["10019"]),
            ("aud", {}),
            ("exp", "1"),
            ("iat", 1.5),
            ("exp", True),
            ("reason_for_request", 0),
            ("requested_scope", ["patient/*.read"]),
            ("requesting_device", "Device"),
        ],
    )
    def test_wrong_claim_type(self, asgi_server: Server, claim: str, value: Any) -> None:
        """A claim of the wrong JSON type -> 400."""
        assert_bad_request(_send_token(asgi_server, encode(_claims(**{claim: value}))))

    @pytest.mark.parametrize("delta", [299, 301, 300_000], ids=["299", "301", "spec-sample"])
    def test_exp_minus_iat_must_be_300(self, asgi_server: Server, delta: int) -> None:
        """exp - iat must be exactly 300 s (299 and 301 -> 400; the spec page's sample fails)."""
        claims = _claims()
        claims["exp"] = claims["iat"] + delta
        assert "300 seconds" in assert_bad_request(_send_token(asgi_server, encode(claims)))

    def test_expired(self, asgi_server: Server) -> None:
        """iat = now - 600 with exp = iat + 300 has expired -> 400 [PT-160]."""
        claims = _claims()
        claims["iat"] -= 600
        claims["exp"] -= 600
        assert "expired" in assert_bad_request(_send_token(asgi_server, encode(claims)))

    def test_future_iat_accepted(self, asgi_server: Server) -> None:
        """iat = now + 200 is accepted: iat is not validated against the clock [RN-123]."""
        claims = _claims()
        claims["iat"] += 202
        claims["exp"] += 202
        assert _send_token(asgi_server, encode(claims)).status_code == 200

    @pytest.mark.parametrize("reason", ["badReason", "migration", "DIRECTCARE", ""])
    def test_reason_for_request(self, asgi_server: Server, reason: str) -> None:
        """Only directcare is valid outside the migrate interactions."""
        claims = _claims(reason_for_request=reason)
        assert_bad_request(_send_token(asgi_server, encode(claims)))

    def test_migrate_needs_migration_reason(self, asgi_server: Server) -> None:
        """The 1.6 migrate interaction refuses directcare."""
        iid = "urn:nhs:names:services:gpconnect:fhir:operation:gpc.migratestructuredrecord-1"
        migrate = BY_ID[(iid, RootKind.STRUCTURED)]
        claims = _claims(migrate, reason_for_request="directcare")
        assert "reason_for_request" in assert_bad_request(
            _send_token(asgi_server, encode(claims), migrate)
        )

    def test_migrate_without_practitioner_allowed(self, asgi_server: Server) -> None:
        """Migrate: requesting_practitioner is SHOULD, and the test pack omits it [PT-160]."""
        iid = "urn:nhs:names:services:gpconnect:fhir:operation:gpc.migratestructuredrecord-1"
        migrate = BY_ID[(iid, RootKind.STRUCTURED)]
        claims = _claims(migrate, requesting_practitioner=_DROP)
        assert _send_token(asgi_server, encode(claims), migrate).status_code == 200

    def test_sub_must_equal_practitioner_id(self, asgi_server: Server) -> None:
        """sub != requesting_practitioner.id -> 400."""
        assert "sub" in assert_bad_request(_send_token(asgi_server, encode(_claims(sub="99"))))

    @pytest.mark.parametrize(
        ("claim", "resource"),
        [
            ("requesting_device", {"resourceType": "InvalidResourceType"}),
            ("requesting_organization", {"resourceType": "Organization", "identifier": [], "x": 1}),
            ("requesting_practitioner", {"resourceType": "Practitioner", "practitionerRole": []}),
            ("requesting_device", {"resourceType": "Device", "identifier": {"value": "x"}}),
        ],
        ids=["non-fhir-type", "unknown-element", "dstu2-element-in-stu3", "bad-shape"],
    )
    def test_invalid_resource_is_422(self, asgi_server: Server, claim: str, resource: Any) -> None:
        """A claim resource failing validation -> 422 INVALID_RESOURCE in 1.x [PT-160]."""
        claims = _claims()
        if resource["resourceType"] == claims[claim].get("resourceType"):
            resource = {**claims[claim], **resource}
        claims[claim] = resource
        assert_bad_request(_send_token(asgi_server, encode(claims)), "INVALID_RESOURCE", 422)

    def test_known_wrong_type_is_400(self, asgi_server: Server) -> None:
        """A valid FHIR resource of the wrong type (Patient as practitioner) -> 400 [ERR]."""
        claims = _claims(requesting_practitioner={"resourceType": "Patient"})
        assert_bad_request(_send_token(asgi_server, encode(claims)))

    def test_organization_needs_ods(self, asgi_server: Server) -> None:
        """An organisation without an ODS code identifier -> 400."""
        org = {"resourceType": "Organization", "name": "Test Hospital"}
        assert "ODS" in assert_bad_request(
            _send_token(asgi_server, encode(_claims(requesting_organization=org)))
        )

    def test_practitioner_needs_sds_user_id(self, asgi_server: Server) -> None:
        """A practitioner without an SDS user id identifier -> 400."""
        prac = dict(_claims()["requesting_practitioner"])
        prac["identifier"] = prac["identifier"][1:]
        assert "SDS" in assert_bad_request(
            _send_token(asgi_server, encode(_claims(requesting_practitioner=prac)))
        )

    def test_unk_and_no_role_profile_accepted(self, asgi_server: Server) -> None:
        """UNK SDS values and a missing role profile + local id are accepted [PT-160]."""
        prac = dict(_claims()["requesting_practitioner"])
        prac["identifier"] = [{"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "UNK"}]
        token = encode(_claims(requesting_practitioner=prac))
        assert _send_token(asgi_server, token).status_code == 200

    def test_device_system_need_not_be_url(self, asgi_server: Server) -> None:
        """The test pack's device identifier system 'GPConnectTestSystem' is accepted."""
        device = {
            "resourceType": "Device",
            "identifier": [{"system": "GPConnectTestSystem", "value": "Client"}],
            "model": "v1",
            "version": "1.1",
        }
        token = encode(_claims(requesting_device=device))
        assert _send_token(asgi_server, token).status_code == 200

    def test_rc5_ods_system_accepted(self, asgi_server: Server) -> None:
        """The RC5-era ODS system of the 1.0-1.2 test packs is accepted by default [PT-100]."""
        org = {
            "resourceType": "Organization",
            "identifier": [
                {"system": "http://fhir.nhs.net/Id/ods-organization-code", "value": "X"}
            ],
        }
        token = encode(_claims(requesting_organization=org))
        assert _send_token(asgi_server, token).status_code == 200

    def test_token_too_long(self, asgi_server: Server) -> None:
        """A token beyond limits.max_token_bytes -> 400 before any decoding."""
        token = encode(_claims(padding="x" * 9000))
        assert "too long" in assert_bad_request(_send_token(asgi_server, token))

    def test_non_utf8_payload(self, asgi_server: Server) -> None:
        """A payload that is not UTF-8 -> 400."""
        payload = b'{"a":"\xff"}'
        token = f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{b64(payload)}."
        assert_bad_request(_send_token(asgi_server, token))


class TestScope:
    """requested_scope rules (rules §4), through the ASGI middleware."""

    @pytest.mark.parametrize(
        ("interaction_id", "root", "scope"),
        [
            (
                "fhir:rest:search:patient_appointments-1",
                RootKind.FOUNDATIONS,
                "organization/*.write",
            ),
            ("fhir:rest:search:patient_appointments-1", RootKind.FOUNDATIONS, "patient/*.write"),
            ("fhir:operation:gpc.registerpatient-1", RootKind.FOUNDATIONS, "patient/*.read"),
            ("fhir:operation:gpc.registerpatient-1", RootKind.FOUNDATIONS, "organization/*.read"),
            ("fhir:rest:read:metadata-1", RootKind.FOUNDATIONS, "badScope"),
            ("fhir:rest:read:metadata-1", RootKind.FOUNDATIONS, "patient/*.read"),
            ("fhir:rest:read:patient-1", RootKind.FOUNDATIONS, "patient/*.read patient/*.write"),
            ("fhir:rest:read:patient-1", RootKind.FOUNDATIONS, "patient/*.read conf/R"),
            ("fhir:rest:read:patient-1", RootKind.FOUNDATIONS, "patient/*.read  conf/N"),
            ("fhir:rest:read:patient-1", RootKind.FOUNDATIONS, "conf/N"),
            ("fhir:rest:read:patient-1", RootKind.FOUNDATIONS, "patient/*.read conf/N conf/N"),
        ],
        ids=[
            "appointments-org-write",
            "appointments-patient-write",
            "register-patient-read",
            "register-org-read",
            "metadata-badScope",
            "metadata-patient-read",
            "two-base-scopes",
            "conf-R-outside-migration",
            "double-space",
            "conf-only",
            "conf-twice",
        ],
    )
    def test_refused(
        self, asgi_server: Server, interaction_id: str, root: RootKind, scope: str
    ) -> None:
        """Unknown scopes and scopes that do not suit the interaction -> 400 BAD_REQUEST."""
        interaction = BY_ID[(f"urn:nhs:names:services:gpconnect:{interaction_id}", root)]
        token = encode(_claims(interaction, requested_scope=scope))
        diagnostics = assert_bad_request(_send_token(asgi_server, token, interaction))
        assert "scope" in diagnostics or "conf" in diagnostics

    @pytest.mark.parametrize(
        ("scope", "sensitive"), [("patient/*.read conf/N", False), ("patient/*.read conf/R", True)]
    )
    def test_migrate_conf_scopes(self, asgi_server: Server, scope: str, sensitive: bool) -> None:
        """Migrate accepts patient/*.read with conf/N or conf/R [MIG][PT-CODE], each with the
        includeSensitiveInformation value it allows (1.6.0 StructuredMigrate.feature)."""
        iid = "urn:nhs:names:services:gpconnect:fhir:operation:gpc.migratestructuredrecord-1"
        migrate = BY_ID[(iid, RootKind.STRUCTURED)]
        req = fresh_request(migrate, requested_scope=scope)
        body = {
            "resourceType": "Parameters",
            "parameter": [
                {
                    "name": "includeFullRecord",
                    "part": [{"name": "includeSensitiveInformation", "valueBoolean": sensitive}],
                }
            ],
        }
        assert asgi_server.send(req, content=json.dumps(body).encode()).status_code == 200

    def test_conf_n_with_sensitive_request(self, asgi_server: Server) -> None:
        """Migrate with conf/N asking for sensitive information -> 400 CONFLICTING_VALUES."""
        iid = "urn:nhs:names:services:gpconnect:fhir:operation:gpc.migratestructuredrecord-1"
        migrate = BY_ID[(iid, RootKind.STRUCTURED)]
        req = fresh_request(migrate, requested_scope="patient/*.read conf/N")
        body = {
            "resourceType": "Parameters",
            "parameter": [
                {
                    "name": "includeFullRecord",
                    "part": [{"name": "includeSensitiveInformation", "valueBoolean": True}],
                }
            ],
        }
        resp = asgi_server.send(req, content=json.dumps(body).encode())
        assert_bad_request(resp, "CONFLICTING_VALUES")
        # conf/R may ask for it.
        req = fresh_request(migrate, requested_scope="patient/*.read conf/R")
        assert asgi_server.send(req, content=json.dumps(body).encode()).status_code == 200


class TestClientCertificate:
    """http-496 mode: no certificate -> 496; a certificate the checker refuses -> 495."""

    @pytest.mark.parametrize("server", ["asgi_server", "wsgi_server"])
    def test_no_certificate_496(self, server: str, request: pytest.FixtureRequest) -> None:
        """The handshake completes without a certificate and the gate answers 496."""
        srv: Server = request.getfixturevalue(server)
        resp = srv.send(fresh_request(METADATA), client=srv.anonymous)
        assert_bad_request(resp, "ACCESS_DENIED_SSL", 496)

    @pytest.mark.parametrize("server", ["asgi_server", "wsgi_server"])
    def test_refused_certificate_495(self, server: str, request: pytest.FixtureRequest) -> None:
        """A chain-valid certificate the checker refuses (revoked) -> 495 with its code."""
        srv: Server = request.getfixturevalue(server)
        resp = srv.send(fresh_request(METADATA), client=srv.revoked)
        assert "revoked" in assert_bad_request(resp, "ACCESS_DENIED_SSL", 495)


class TestResponses:
    """Cache-Control and bodies on everything the gate lets through or produces."""

    def test_no_store_replaces_weaker_value(self, asgi_server: Server) -> None:
        """The app's max-age=600 becomes no-store (and there is only one Cache-Control)."""
        resp = asgi_server.send(fresh_request(METADATA))
        assert resp.headers.get_list("cache-control") == ["no-store"]

    def test_no_store_on_errors(self, wsgi_server: Server) -> None:
        """A rejection carries no-store and the OperationOutcome media type."""
        req = fresh_request(METADATA)
        resp = wsgi_server.send(req, headers=req.headers[:-1])
        assert resp.headers["cache-control"] == "no-store"
        assert resp.headers["content-type"] == "application/fhir+json"

    def test_body_replayed_to_app(self, asgi_server: Server) -> None:
        """The buffered body reaches the app intact."""
        iid = "urn:nhs:names:services:gpconnect:fhir:rest:create:appointment-1"
        req = fresh_request(BY_ID[(iid, RootKind.FOUNDATIONS)])
        body = json.dumps({"resourceType": "Appointment", "pad": "y" * 50_000}).encode()
        resp = asgi_server.send(req, content=body)
        assert resp.json()["body_length"] == len(body)

    @pytest.mark.parametrize("server", ["asgi_server", "wsgi_server"])
    def test_body_too_large(self, server: str, request: pytest.FixtureRequest) -> None:
        """A body beyond limits.max_body_bytes -> 400 without reading it all."""
        srv: Server = request.getfixturevalue(server)
        iid = "urn:nhs:names:services:gpconnect:fhir:rest:create:appointment-1"
        req = fresh_request(BY_ID[(iid, RootKind.FOUNDATIONS)])
        assert "too large" in assert_bad_request(srv.send(req, content=b"x" * (1024 * 1024 + 1)))

    def test_v07_outcome_shape(self, asgi_server: Server) -> None:
        """0.7.x rejections use the DSTU2 profile and coding system."""
        iid = "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getcarerecord"
        req = fresh_request(BY_ID[(iid, RootKind.ACCESS_RECORD_HTML)], sub="other")
        resp = asgi_server.send(req)
        assert resp.status_code == 400
        body = resp.json()
        assert body["meta"]["profile"] == [
            "http://fhir.nhs.net/StructureDefinition/gpconnect-operationoutcome-1"
        ]
        coding = body["issue"][0]["details"]["coding"][0]
        assert coding["system"] == "http://fhir.nhs.net/ValueSet/gpconnect-error-or-warning-code-1"
