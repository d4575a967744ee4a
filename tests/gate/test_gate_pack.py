"""The gate against the GP Connect provider assurance pack: the cases it used to get wrong.

Each test names the pack scenario it follows (nhsconnect/gpconnect-provider-testing):
the 0.7.4 pack's ``JWT.feature`` (a resource with an element it does not have is 422, a
resourceType that is not the one wanted is 400), the 1.6.0 pack's
``StructuredMigrate.feature`` (``includeSensitiveInformation`` must agree with the
``conf/*`` scope), and RFC 7519 §4 on duplicate claim names. The reference provider
(``spinepki serve``) is checked end to end for the rules a configuration file or a body
decides: ``expected_aud`` and the migrate rule.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spinepki.gate import (
    GateLimits,
    Generation,
    RequestGate,
    RootKind,
    SpineCode,
)
from spinepki.gate._fhir import _ELEMENTS
from tests.gate._helpers import (
    CARE_RECORD,
    MIGRATE,
    NOW,
    PATIENT,
    ROOTS,
    V07_METADATA,
    b64,
    check,
    encode,
    make_config,
    request_for,
    ssp_headers,
    v07_claims,
    v1_claims,
)

RESOURCE_CLAIMS = ("requesting_device", "requesting_organization", "requesting_practitioner")


def _token_request(interaction: Any, claims: dict[str, Any]) -> Any:
    req = request_for(interaction)
    headers = ssp_headers(interaction.interaction_id, encode(claims))
    return req.__class__(**{**req.__dict__, "headers": headers, "claims": claims})


def _raw_request(interaction: Any, token: str) -> Any:
    req = request_for(interaction)
    return req.__class__(
        **{**req.__dict__, "headers": ssp_headers(interaction.interaction_id, token)}
    )


# -- 0.7.4 JWT.feature: invalid fields and resource types --------------------------------


class TestV07Resources:
    """0.7.x: an unknown element is 422 INVALID_RESOURCE; a wrong resourceType is 400."""

    @pytest.mark.parametrize("claim", RESOURCE_CLAIMS)
    @pytest.mark.parametrize("interaction", [CARE_RECORD, V07_METADATA], ids=["care", "metadata"])
    def test_invalid_field_is_422(
        self, gate: RequestGate, ssp_cert: Any, claim: str, interaction: Any
    ) -> None:
        """0.7.4 JWT.feature "JWT requesting device/organization/practitioner is not valid
        FHIR ... resource" (an ``invalidField`` element added): 422 INVALID_RESOURCE."""
        scope = "organization/*.read" if interaction is V07_METADATA else "patient/*.read"
        claims = v07_claims(scope=scope)
        claims[claim] = {**claims[claim], "invalidField": "x"}
        decision = check(gate, _token_request(interaction, claims), ssp_cert)
        assert (decision.status, decision.spine_code) == (422, SpineCode.INVALID_RESOURCE)
        assert decision.generation is Generation.V0_7
        assert decision.content_type == "application/json+fhir"
        assert claim in decision.diagnostics

    @pytest.mark.parametrize("claim", RESOURCE_CLAIMS)
    @pytest.mark.parametrize("rtype", ["InvalidResourceType", "Patient"])
    def test_invalid_resource_type_is_400(
        self, gate: RequestGate, ssp_cert: Any, claim: str, rtype: str
    ) -> None:
        """0.7.4 JWT.feature "JWT requesting ... invalid resourceType": 400 BAD_REQUEST,
        for a name that is no FHIR type and for a real type in the wrong claim alike."""
        claims = v07_claims()
        claims[claim] = {**claims[claim], "resourceType": rtype}
        decision = check(gate, _token_request(CARE_RECORD, claims), ssp_cert)
        assert (decision.status, decision.spine_code) == (400, SpineCode.BAD_REQUEST)

    @pytest.mark.parametrize(
        ("claim", "bad"),
        [
            ("requesting_organization", {"identifier": {"system": "x"}}),
            ("requesting_practitioner", {"name": [{"family": ["Jones"]}]}),
        ],
    )
    def test_malformed_element_is_422(
        self, gate: RequestGate, ssp_cert: Any, claim: str, bad: dict[str, Any]
    ) -> None:
        """A known element of the wrong shape fails validation like an unknown one: 422."""
        claims = v07_claims()
        claims[claim] = {**claims[claim], **bad}
        decision = check(gate, _token_request(CARE_RECORD, claims), ssp_cert)
        assert (decision.status, decision.spine_code) == (422, SpineCode.INVALID_RESOURCE)

    @settings(
        max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        claim=st.sampled_from(RESOURCE_CLAIMS),
        generation=st.sampled_from([Generation.V0_7, Generation.V1]),
        name=st.text(
            alphabet=st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=20
        ),
    )
    def test_any_unknown_element_is_422_in_both_generations(
        self, gate: RequestGate, ssp_cert: Any, claim: str, generation: Generation, name: str
    ) -> None:
        """The general rule: any element name the resource type lacks is 422
        INVALID_RESOURCE, in 0.7.x as in 1.x; a legitimate SSP token is still allowed."""
        rtype = {"requesting_device": "Device", "requesting_organization": "Organization"}.get(
            claim, "Practitioner"
        )
        allowed = _ELEMENTS[generation][rtype]
        v07 = generation is Generation.V0_7
        interaction = CARE_RECORD if v07 else PATIENT
        claims = v07_claims() if v07 else v1_claims()
        assert check(gate, _token_request(interaction, claims), ssp_cert).allowed
        if name in allowed or (name.startswith("_") and name[1:] in allowed):
            return
        claims[claim] = {**claims[claim], name: "x"}
        decision = check(gate, _token_request(interaction, claims), ssp_cert)
        assert (decision.status, decision.spine_code) == (422, SpineCode.INVALID_RESOURCE)


# -- RFC 7519 §4: duplicate member names ---------------------------------------------------


def _with_duplicate(
    claims: dict[str, Any], name: str, value: Any, *, spelt: str | None = None
) -> str:
    """The claims as JSON text with a second ``name`` member (optionally spelt with
    escapes) placed before the real one, so a first-wins parser would read ``value``."""
    text = json.dumps(claims, separators=(",", ":"))
    first = f'"{spelt}"' if spelt is not None else json.dumps(name)
    return "{" + first + ":" + json.dumps(value) + "," + text[1:]


class TestDuplicateMembers:
    """No object in the token (header or claims) or body may name a member twice."""

    HEADER = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())

    def _token(self, payload: str, header: str | None = None) -> str:
        return f"{header or self.HEADER}.{b64(payload.encode())}."

    def test_header_alg_twice(self, gate: RequestGate, ssp_cert: Any) -> None:
        """``{"alg":"HS256","alg":"none"}``: a first-wins parser sees HS256 (RFC 7519 §4)."""
        header = b64(b'{"alg":"HS256","alg":"none","typ":"JWT"}')
        claims = json.dumps(v1_claims(), separators=(",", ":"))
        decision = check(gate, _raw_request(PATIENT, self._token(claims, header)), ssp_cert)
        assert (decision.status, decision.spine_code) == (400, SpineCode.BAD_REQUEST)
        assert decision.diagnostics == "JWT header names a member twice"

    @pytest.mark.parametrize(
        ("name", "value", "spelt"),
        [
            ("exp", NOW + 3600, None),
            ("exp", NOW + 3600, "\\u0065xp"),
            ("requested_scope", "patient/*.write", None),
            ("aud", "https://another.provider.nhs.uk/B12345/STU3/1", None),
            ("reason_for_request", "migration", None),
        ],
        ids=["exp", "escaped-exp", "requested_scope", "aud", "reason_for_request"],
    )
    def test_claim_twice(
        self, gate: RequestGate, ssp_cert: Any, name: str, value: Any, spelt: str | None
    ) -> None:
        """A duplicate exp, requested_scope, aud or reason_for_request — escaped or not —
        is 400, though Python's json (last wins) would have seen the valid value."""
        payload = _with_duplicate(v1_claims(), name, value, spelt=spelt)
        decision = check(gate, _raw_request(PATIENT, self._token(payload)), ssp_cert)
        assert (decision.status, decision.spine_code) == (400, SpineCode.BAD_REQUEST)
        assert decision.diagnostics == "JWT payload names a member twice"
        # The same token without the duplicate is served.
        clean = json.dumps(v1_claims(), separators=(",", ":"))
        assert check(gate, _raw_request(PATIENT, self._token(clean)), ssp_cert).allowed

    def test_nested_member_twice(self, gate: RequestGate, ssp_cert: Any) -> None:
        """Inside a FHIR resource too: a second resourceType in requesting_practitioner."""
        claims = v1_claims()
        text = json.dumps(claims, separators=(",", ":")).replace(
            '"requesting_practitioner":{', '"requesting_practitioner":{"resourceType":"Patient",'
        )
        decision = check(gate, _raw_request(PATIENT, self._token(text)), ssp_cert)
        assert decision.status == 400

    def test_body_member_twice(self, gate: RequestGate, ssp_cert: Any) -> None:
        """A body with a duplicate valueBoolean is 422 INVALID_RESOURCE, whichever comes first."""
        req = request_for(MIGRATE, requested_scope="patient/*.read conf/N")
        body = (
            b'{"resourceType":"Parameters","parameter":[{"name":"includeFullRecord","part":'
            b'[{"name":"includeSensitiveInformation","valueBoolean":true,"valueBoolean":false}]}]}'
        )
        decision = check(gate, req, ssp_cert, body=body)
        assert (decision.status, decision.spine_code) == (422, SpineCode.INVALID_RESOURCE)
        assert decision.diagnostics == "the request body names a member twice"

    @settings(
        max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(data=st.data())
    def test_any_duplicate_anywhere_is_refused(
        self, gate: RequestGate, ssp_cert: Any, data: Any
    ) -> None:
        """The general rule, generated: any member of any object of the claims, repeated
        with any value and any mix of escaped characters, is refused; the token without
        the repeat is served."""
        claims = v1_claims()
        objects: list[dict[str, Any]] = [claims]
        for value in claims.values():
            if isinstance(value, dict):
                objects.append(value)
        target = data.draw(st.sampled_from(objects))
        name = data.draw(st.sampled_from(sorted(target)))
        mask = data.draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
        spelt = "".join(f"\\u{ord(c):04x}" if m else c for c, m in zip(name, mask, strict=True))
        marker = "__dup__"
        target[marker] = data.draw(st.one_of(st.integers(), st.text(max_size=5), st.none()))
        text = json.dumps(claims, separators=(",", ":"))
        del target[marker]
        text = text.replace(f'"{marker}"', f'"{spelt}"', 1)
        decision = check(gate, _raw_request(PATIENT, self._token(text)), ssp_cert)
        assert (decision.status, decision.diagnostics) == (400, "JWT payload names a member twice")
        clean = json.dumps(claims, separators=(",", ":"))
        assert check(gate, _raw_request(PATIENT, self._token(clean)), ssp_cert).allowed

    def test_hundredfold_members_stay_linear(self, gate: RequestGate, ssp_cert: Any) -> None:
        """A payload of 100x the usual member count (no duplicate) and one with a
        duplicate at the end are judged in bounded time; limits refuse what is larger."""
        claims = v1_claims()
        for i in range(1200):
            claims[f"x{i}"] = i
        text = json.dumps(claims, separators=(",", ":"))
        started = time.perf_counter()
        decision = check(gate, _raw_request(PATIENT, self._token(text)), ssp_cert)
        assert decision.status == 400  # too long for max_token_bytes
        limits = GateLimits(
            max_token_bytes=1 << 20, max_header_bytes=1 << 20, max_total_header_bytes=1 << 21
        )
        wide = RequestGate(make_config(limits=limits))
        assert check(wide, _raw_request(PATIENT, self._token(text)), ssp_cert).allowed
        dup = text[:-1] + ',"x0":1}'
        assert check(wide, _raw_request(PATIENT, self._token(dup)), ssp_cert).status == 400
        assert time.perf_counter() - started < 5


# -- 1.6.0 StructuredMigrate.feature: includeSensitiveInformation vs conf/* -----------------


def _migrate_body(value: Any, *, copies: int = 1, top_level: bool = False) -> bytes:
    parts = [{"name": "includeSensitiveInformation", "valueBoolean": value}] * copies
    parameters: list[dict[str, Any]] = [
        {
            "name": "patientNHSNumber",
            "valueIdentifier": {
                "system": "https://fhir.nhs.uk/Id/nhs-number",
                "value": "9690937278",
            },
        }
    ]
    if top_level:
        parameters += parts
    else:
        parameters.append({"name": "includeFullRecord", "part": parts})
    return json.dumps({"resourceType": "Parameters", "parameter": parameters}).encode()


class TestMigrateSensitivity:
    """The gate owns the rule (it has the token and, when given, the body)."""

    @pytest.mark.parametrize(
        ("conf", "sensitive", "status"),
        [
            ("", False, 200),
            ("", True, 400),  # no conf/* means conf/N [JWT]
            (" conf/N", False, 200),
            (" conf/N", True, 400),  # "... inc Sensitive Data where JWT scope is incorrect"
            (" conf/R", True, 200),
            (" conf/R", False, 400),  # "... exc Sensitive Data where JWT scope is incorrect"
        ],
    )
    def test_scope_and_parameter_agree(
        self, gate: RequestGate, ssp_cert: Any, conf: str, sensitive: bool, status: int
    ) -> None:
        """1.6.0 StructuredMigrate.feature: a conf/N token may not ask for sensitive data
        and a conf/R token may not decline it: 400 CONFLICTING_VALUES [MIG][ERR]."""
        req = request_for(MIGRATE, requested_scope="patient/*.read" + conf)
        decision = check(gate, req, ssp_cert, body=_migrate_body(sensitive))
        assert decision.status == status, decision.diagnostics
        if status == 400:
            assert decision.spine_code is SpineCode.CONFLICTING_VALUES

    @pytest.mark.parametrize("value", ["false", "true", 0, 1, None, [], {}])
    def test_not_a_boolean_is_422(self, gate: RequestGate, ssp_cert: Any, value: Any) -> None:
        """``"false"`` (truthy to an application that tests it) and other non-booleans:
        422 INVALID_RESOURCE, whatever the scope."""
        for conf in ("conf/N", "conf/R"):
            req = request_for(MIGRATE, requested_scope=f"patient/*.read {conf}")
            decision = check(gate, req, ssp_cert, body=_migrate_body(value))
            assert (decision.status, decision.spine_code) == (422, SpineCode.INVALID_RESOURCE)

    @pytest.mark.parametrize("top_level", [False, True])
    def test_two_copies_is_422(self, gate: RequestGate, ssp_cert: Any, top_level: bool) -> None:
        """The parameter is 1..1: two copies (an application might read either) are 422."""
        req = request_for(MIGRATE, requested_scope="patient/*.read conf/R")
        body = _migrate_body(True, copies=2, top_level=top_level)
        assert check(gate, req, ssp_cert, body=body).status == 422

    def test_missing_parameter_is_the_applications(self, gate: RequestGate, ssp_cert: Any) -> None:
        """No includeSensitiveInformation at all: allowed through (the application answers
        422 INVALID_PARAMETER for the mandatory parameter)."""
        req = request_for(MIGRATE, requested_scope="patient/*.read conf/R")
        body = json.dumps({"resourceType": "Parameters", "parameter": []}).encode()
        assert check(gate, req, ssp_cert, body=body).allowed

    @settings(
        max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        conf=st.sampled_from(["", " conf/N", " conf/R"]),
        value=st.one_of(st.booleans(), st.integers(), st.text(max_size=5), st.none()),
        top_level=st.booleans(),
    )
    def test_generated(
        self, gate: RequestGate, ssp_cert: Any, conf: str, value: Any, top_level: bool
    ) -> None:
        """Generated: allowed exactly when the value is a boolean equal to "conf/R was
        asked for"; never a 5xx."""
        req = request_for(MIGRATE, requested_scope="patient/*.read" + conf)
        decision = check(gate, req, ssp_cert, body=_migrate_body(value, top_level=top_level))
        restricted = conf == " conf/R"
        expected = type(value) is bool and value == restricted
        assert decision.allowed is expected
        assert decision.status in (200, 400, 422)


# -- the reference provider: expected_aud from provider.toml, the migrate rule ------------


@pytest.fixture(scope="module")
def provider_dir(pki: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from spinepki.testpki import write_pki

    directory: Path = tmp_path_factory.mktemp("pack-provider")
    write_pki(pki, directory)
    return directory


AUD = "https://gp.example.nhs.uk/A12345/STU3/1/gpconnect"


@pytest.fixture(scope="module")
def reference_provider(provider_dir: Path, pki: Any) -> Iterator[Any]:
    """``spinepki serve`` from a provider.toml that sets expected_aud, with a structured root."""
    pytest.importorskip("anycorn")
    from spinepki.provider import load_config, run_provider
    from spinepki.revocation import RevocationChecker, RevocationMode

    toml = provider_dir / "provider.toml"
    toml.write_text(
        "[provider]\n"
        'asid = "918999198738"\n'
        'client_auth = "http-496"\n'
        "port = 0\n"
        f'expected_aud = ["{AUD}", "{AUD}/structured"]\n'
        "[provider.service_roots]\n"
        f'foundations = ["{ROOTS[RootKind.FOUNDATIONS]}"]\n'
        f'structured = ["{ROOTS[RootKind.STRUCTURED]}"]\n'
        "[tls]\n"
        'certificate = "certs/provider.chain.pem"\n'
        'key = "certs/provider.key.pem"\n'
        'trust_files = ["ca/trust-bundle.pem"]\n'
        "[validation]\n"
        f'ssp_fqdns = ["{pki.ssp_fqdn}"]\n'
    )
    config = load_config(toml)
    assert config.expected_aud == (AUD, f"{AUD}/structured")
    revocation = RevocationChecker(RevocationMode.OFFLINE, crls=[pki.crl(), pki.crl("root")])
    with run_provider(config, revocation=revocation) as server:
        yield server


def _send(
    server: Any, pki: Any, interaction: Any, claims: dict[str, Any], body: bytes | None = None
) -> tuple[int, str]:
    from spinepki._probe import probe
    from spinepki.tls import client_context

    leaf = pki.leaf("ssp")
    ctx = client_context(
        pki.trust_store(), cert=leaf.chain_pem, key=leaf.key_pem, unsafe_skip_credential_checks=True
    )
    req = request_for(interaction)
    lines = [f"{req.method} {req.url_path} HTTP/1.1", f"Host: {pki.provider_fqdn}"]
    lines += [f"{k}: {v}" for k, v in ssp_headers(interaction.interaction_id, encode(claims))]
    if body is not None:
        lines += ["Content-Type: application/fhir+json", f"Content-Length: {len(body)}"]
    lines.append("Connection: close")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
    result = probe(server.address, ctx, server_hostname=pki.provider_fqdn, request=raw, timeout=10)
    head = result.response.split(b"\r\n", 1)[0].decode()
    status = int(head.split(" ")[1])
    code = re.search(rb'"code":"([A-Z_]+)"', result.response)
    return status, code.group(1).decode() if code else ""


class TestReferenceProvider:
    """``spinepki serve`` refuses both, end to end over TLS."""

    def test_expected_aud_from_provider_toml(self, reference_provider: Any, pki: Any) -> None:
        """A token addressed to another provider is 400; one addressed to this one (either
        configured root) is served."""
        now = int(time.time())
        ok = v1_claims(now, aud=AUD)
        assert _send(reference_provider, pki, PATIENT, ok)[0] in (200, 404)
        other = v1_claims(now, aud="https://another-supplier.example.nhs.uk/B67890/STU3/1")
        assert _send(reference_provider, pki, PATIENT, other) == (400, "BAD_REQUEST")

    @pytest.mark.parametrize(("conf", "sensitive"), [("conf/R", False), ("conf/N", True)])
    def test_migrate_conflict_refused(
        self, reference_provider: Any, pki: Any, conf: str, sensitive: bool
    ) -> None:
        """The migrate body reaches the gate through the provider's middleware: 400
        CONFLICTING_VALUES; the agreeing request is passed to the application."""
        now = int(time.time())
        claims = v1_claims(
            now,
            aud=f"{AUD}/structured",
            scope=f"patient/*.read {conf}",
            reason_for_request="migration",
        )
        assert _send(reference_provider, pki, MIGRATE, claims, _migrate_body(sensitive)) == (
            400,
            "CONFLICTING_VALUES",
        )
        status, _ = _send(reference_provider, pki, MIGRATE, claims, _migrate_body(not sensitive))
        assert status not in (400, 495, 496)  # the demo application's own answer (501)
