"""RequestGate.check directly: configuration, every option, 0.7.x rules, decisions."""

from __future__ import annotations

import base64
import json
import re
import string
from datetime import UTC, datetime, timedelta
from http import HTTPMethod
from typing import Any

import pytest
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st

from spinepki.errors import ConfigurationError, TokenParseError
from spinepki.gate import (
    Catalogue,
    ClientAuthMode,
    GateConfig,
    GateLimits,
    Generation,
    Interaction,
    IssueType,
    OutcomeCodingSystem,
    RequestGate,
    RootKind,
    Scope,
    SpineCode,
    WrongResourceTypeResponse,
    _jwt,
    decode_unsecured_jwt,
)
from tests.gate._helpers import (
    ASID,
    BY_ID,
    CARE_RECORD,
    CURRENT,
    LEGACY,
    NOW,
    NOW_DT,
    PATIENT,
    READ_PATIENT,
    ROOTS,
    V07_METADATA,
    Failure,
    Outcome,
    SerialDenyList,
    check,
    encode,
    interaction_ids,
    make_config,
    request_for,
    ssp_headers,
    v1_claims,
)


def with_claims(interaction: Interaction, claims: dict[str, Any]) -> Any:
    req = request_for(interaction)
    headers = ssp_headers(interaction.interaction_id, encode(claims))
    return req.__class__(**{**req.__dict__, "headers": headers, "claims": claims})


class TestConfig:
    """GateConfig and friends refuse settings that cannot work, at construction."""

    @pytest.mark.parametrize(
        "over",
        [
            {"provider_asid": ""},
            {"provider_asid": "1 2"},
            {"generations": frozenset()},
            {"client_auth": "http-496"},
            {"clock_tolerance": timedelta(seconds=-1)},
            {"clock_tolerance": timedelta(minutes=6)},
            {"certificate_checker": object()},
            {"expected_aud": ""},
            {"service_roots": {}},
            {"service_roots": {"foundations": "/a"}},
            {"service_roots": {RootKind.FOUNDATIONS: "/a/"}},
            {"service_roots": {RootKind.FOUNDATIONS: "a"}},
            {"service_roots": {RootKind.FOUNDATIONS: "/a//b"}},
            {"service_roots": {RootKind.FOUNDATIONS: "/a/../b"}},
            {"service_roots": {RootKind.FOUNDATIONS: "http://x/a"}},
            {"service_roots": {RootKind.FOUNDATIONS: "https://x/a?b=1"}},
            {"service_roots": {RootKind.FOUNDATIONS: ""}},
            {"service_roots": {RootKind.FOUNDATIONS: []}},
            {"service_roots": {RootKind.FOUNDATIONS: ["/a", "/a"]}},
        ],
    )
    def test_bad_config(self, over: dict[str, Any]) -> None:
        """Each unusable setting raises ConfigurationError (a ValueError)."""
        with pytest.raises(ConfigurationError) as info:
            make_config(**over)
        assert isinstance(info.value, ValueError)

    def test_url_roots_reduce_to_paths(self) -> None:
        """An https service root URL is matched by its path; several roots per kind work."""
        config = make_config(
            service_roots={
                RootKind.FOUNDATIONS: [
                    "https://gp.example.nhs.uk/A1/STU3/1/gpconnect",
                    "/B2/STU3/1/gpconnect",
                ]
            }
        )
        assert config.root_paths == (
            (RootKind.FOUNDATIONS, "/A1/STU3/1/gpconnect"),
            (RootKind.FOUNDATIONS, "/B2/STU3/1/gpconnect"),
        )

    @pytest.mark.parametrize("name", ["max_header_count", "max_body_bytes"])
    @pytest.mark.parametrize("value", [0, -1, True, 1.5])
    def test_bad_limits(self, name: str, value: Any) -> None:
        """Limits must be positive integers."""
        with pytest.raises(ConfigurationError):
            GateLimits(**{name: value})

    def test_gate_needs_config(self) -> None:
        """RequestGate refuses anything but a GateConfig."""
        with pytest.raises(ConfigurationError):
            RequestGate({"provider_asid": ASID})  # type: ignore[arg-type]


class TestCatalogueTable:
    """The catalogue is one data table, extensible by the user."""

    def test_every_rules_section_2_1_id_is_present(self) -> None:
        """All 23 current 1.x rows and the 0.7.x pair are in the default table."""
        assert len(CURRENT) == 25
        assert sum(i.generation is Generation.V0_7 for i in CURRENT) == 2

    def test_extend_with_a_new_interaction(self, ssp_cert: x509.Certificate) -> None:
        """A user-added row is honoured by a gate built on the extended catalogue."""
        extra = Interaction(
            "urn:example:read:thing-1",
            HTTPMethod.GET,
            RootKind.FOUNDATIONS,
            "/Thing/{id}",
            Scope.ORGANIZATION_READ,
        )
        gate = RequestGate(make_config(catalogue=Catalogue.default().extended(extra)))
        req = request_for(extra)
        assert check(gate, req, ssp_cert).allowed

    def test_duplicate_id_refused_unless_replace(self) -> None:
        """Adding an existing ID is a ConfigurationError unless replace=True."""
        row = Interaction(
            READ_PATIENT, HTTPMethod.POST, RootKind.FOUNDATIONS, "/Patient", Scope.PATIENT_WRITE
        )
        with pytest.raises(ConfigurationError):
            Catalogue.default().extended(row)
        replaced = Catalogue.default().extended(row, replace=True)
        assert replaced.get(READ_PATIENT) == row
        assert len(replaced) == len(Catalogue.default())

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"interaction_id": " x"},
            {"interaction_id": ""},
            {"method": "FETCH"},
            {"path": "Patient"},
            {"path": "/Patient/"},
            {"path": "/Patient/{name}"},
            {"scope": Scope.CONF_NORMAL},
            {"root": "foundations"},
        ],
    )
    def test_bad_rows(self, kwargs: dict[str, Any]) -> None:
        """Malformed rows are refused when built."""
        values: dict[str, Any] = {
            "interaction_id": "urn:x",
            "method": "GET",
            "root": RootKind.FOUNDATIONS,
            "path": "/X",
            "scope": Scope.PATIENT_READ,
        }
        values.update(kwargs)
        with pytest.raises(ConfigurationError):
            Interaction(**values)

    def test_catalogue_rows_must_be_interactions(self) -> None:
        """A Catalogue of something else is refused."""
        with pytest.raises(ConfigurationError):
            Catalogue(("x",))  # type: ignore[arg-type]

    @pytest.mark.parametrize("interaction", LEGACY, ids=interaction_ids(LEGACY))
    def test_legacy_drafts_behind_flag(self, interaction: Interaction, ssp_cert: Any) -> None:
        """Draft IDs are unknown by default and allowed with enable_legacy_drafts."""
        req = request_for(interaction)
        assert check(RequestGate(make_config()), req, ssp_cert).status == 400
        assert check(RequestGate(make_config(enable_legacy_drafts=True)), req, ssp_cert).allowed

    def test_generation_off_makes_ids_unknown(self, ssp_cert: Any) -> None:
        """With only 1.x enabled (the default), 0.7.x IDs are unknown."""
        gate = RequestGate(make_config(generations=frozenset({Generation.V1})))
        decision = check(gate, request_for(V07_METADATA), ssp_cert)
        assert "unknown interaction" in decision.diagnostics


class TestRequestLine:
    """Method, path and ID details that a real HTTP stack would not let through."""

    def test_trailing_space_in_id(self, gate: RequestGate, ssp_cert: Any) -> None:
        """A trailing space makes a different, unknown ID (servers usually strip it first)."""
        req = request_for(PATIENT)
        headers = [(k, v + " " if k == "Ssp-InteractionID" else v) for k, v in req.headers]
        decision = gate.check("GET", req.path, headers, peer_cert=ssp_cert, now=NOW_DT)
        assert "unknown interaction" in decision.diagnostics

    def test_lower_case_method(self, gate: RequestGate, ssp_cert: Any) -> None:
        """Methods are case-sensitive: 'get' is not GET."""
        req = request_for(PATIENT)
        decision = gate.check("get", req.path, req.headers, peer_cert=ssp_cert, now=NOW_DT)
        assert "HTTP method" in decision.diagnostics

    @pytest.mark.parametrize(
        "suffix",
        [
            "/Patient/..",
            "/Patient/.",
            "/Patient/",
            "/Patient/1/extra",
            "/Patient/" + "1" * 65,
            "/Patient/a b",
        ],
    )
    def test_bad_ids_in_path(self, gate: RequestGate, ssp_cert: Any, suffix: str) -> None:
        """Dot segments, empty, overlong or non-FHIR ids do not match {id}."""
        req = request_for(PATIENT)
        decision = gate.check(
            "GET", ROOTS[RootKind.FOUNDATIONS] + suffix, req.headers, peer_cert=ssp_cert, now=NOW_DT
        )
        assert decision.status == 400

    @pytest.mark.parametrize("allow", [True, False])
    def test_vread(self, ssp_cert: Any, allow: bool) -> None:
        """/_history/{vid} after a read is accepted only with allow_vread (default on)."""
        gate = RequestGate(make_config(allow_vread=allow))
        req = request_for(PATIENT)
        decision = gate.check(
            "GET", req.path + "/_history/2", req.headers, peer_cert=ssp_cert, now=NOW_DT
        )
        assert decision.allowed is allow
        bad = gate.check(
            "GET", req.path + "/_history/..", req.headers, peer_cert=ssp_cert, now=NOW_DT
        )
        assert not bad.allowed

    def test_bytes_inputs(self, gate: RequestGate, ssp_cert: Any) -> None:
        """Method, path, header names/values and query may all be bytes (ASGI)."""
        iid = "urn:nhs:names:services:gpconnect:fhir:rest:search:patient-1"
        req = request_for(BY_ID[(iid, RootKind.FOUNDATIONS)])
        headers = [(k.lower().encode(), v.encode()) for k, v in req.headers]
        decision = gate.check(
            b"GET",
            req.path.encode(),
            headers,
            query=req.query.encode(),
            peer_cert=ssp_cert,
            now=NOW_DT,
        )
        assert decision.allowed, decision.diagnostics

    def test_mapping_headers(self, gate: RequestGate, ssp_cert: Any) -> None:
        """A plain mapping of headers is accepted too."""
        req = request_for(PATIENT)
        decision = gate.check("GET", req.path, dict(req.headers), peer_cert=ssp_cert, now=NOW_DT)
        assert decision.allowed

    def test_non_utf8_path(self, gate: RequestGate, ssp_cert: Any) -> None:
        """A path that is not UTF-8 is 400."""
        req = request_for(PATIENT)
        decision = gate.check("GET", b"/A12345/\xff", req.headers, peer_cert=ssp_cert, now=NOW_DT)
        assert decision.diagnostics == "the request path is not UTF-8"

    def test_long_path_and_query(self, gate: RequestGate, ssp_cert: Any) -> None:
        """Path and query beyond their limits are 400."""
        req = request_for(PATIENT)
        assert (
            "too long"
            in gate.check(
                "GET", "/" + "a" * 3000, req.headers, peer_cert=ssp_cert, now=NOW_DT
            ).diagnostics
        )
        iid = "urn:nhs:names:services:gpconnect:fhir:rest:search:patient-1"
        search = request_for(BY_ID[(iid, RootKind.FOUNDATIONS)])
        decision = check(gate, search, ssp_cert, query="a=1&" * 3000)
        assert decision.diagnostics == "the query string is too long"
        decision = check(gate, search, ssp_cert, query="a=1&" * 150)
        assert "too many parameters" in decision.diagnostics
        assert check(gate, search, ssp_cert, query=None).status == 400

    def test_strict_trace_id(self, ssp_cert: Any) -> None:
        """strict_trace_id demands a UUID; the default accepts any non-blank value."""
        req = request_for(PATIENT)
        headers = [(k, "trace-1" if k == "Ssp-TraceID" else v) for k, v in req.headers]
        assert (
            RequestGate(make_config())
            .check("GET", req.path, headers, peer_cert=ssp_cert, now=NOW_DT)
            .allowed
        )
        strict = RequestGate(make_config(strict_trace_id=True))
        assert (
            "UUID"
            in strict.check("GET", req.path, headers, peer_cert=ssp_cert, now=NOW_DT).diagnostics
        )
        assert check(strict, req, ssp_cert).allowed

    @pytest.mark.parametrize(
        ("name", "value", "reason"),
        [
            ("Ssp-From", b"\xff", "not ASCII"),
            ("Ssp-From", "2000\t1", "cannot hold"),
            ("Ssp-From", "1, 2", "cannot hold"),
            ("Ssp-From", "x" * 9000, "too large"),
            ("X-Other", "x" * 9000, "too large"),
        ],
    )
    def test_header_values(
        self, gate: RequestGate, ssp_cert: Any, name: str, value: Any, reason: str
    ) -> None:
        """Non-ASCII, control characters, commas and oversize values are 400."""
        req = request_for(PATIENT)
        headers: list[tuple[Any, Any]] = [(k, v) for k, v in req.headers if k != name]
        headers.append((name, value))
        decision = gate.check("GET", req.path, headers, peer_cert=ssp_cert, now=NOW_DT)
        assert reason in decision.diagnostics

    def test_total_header_size(self, ssp_cert: Any) -> None:
        """The sum of header sizes is bounded too."""
        gate = RequestGate(make_config(limits=GateLimits(max_total_header_bytes=1000)))
        req = request_for(PATIENT)
        decision = gate.check("GET", req.path, req.headers, peer_cert=ssp_cert, now=NOW_DT)
        assert "too large" in decision.diagnostics

    def test_bad_header_name_type(self, gate: RequestGate, ssp_cert: Any) -> None:
        """A header name that is neither str nor bytes is a 400, not a crash."""
        req = request_for(PATIENT)
        headers: list[Any] = [*req.headers, (1, "x")]
        assert gate.check("GET", req.path, headers, peer_cert=ssp_cert, now=NOW_DT).status == 400

    def test_naive_now_is_a_caller_bug(self, gate: RequestGate, ssp_cert: Any) -> None:
        """A naive `now` raises ConfigurationError, as a naive `at` does for the validator.

        It is still a ValueError, so callers that caught that keep working.
        """
        req = request_for(PATIENT)
        with pytest.raises(ConfigurationError, match="timezone-aware") as caught:
            gate.check("GET", req.path, req.headers, peer_cert=ssp_cert, now=datetime(2025, 1, 1))
        assert caught.value.source == "now"
        assert isinstance(caught.value, ValueError)
        with pytest.raises(ConfigurationError, match="timezone-aware"):
            gate.check_nonblocking("GET", req.path, req.headers, now=datetime(2025, 1, 1))


class TestTime:
    """exp/iat rules with the decision time as an input."""

    def test_exp_boundary(self, gate: RequestGate, ssp_cert: Any) -> None:
        """Accepted one second before exp, refused at exp (SHALL NOT on/after exp)."""
        req = request_for(PATIENT)
        exp = req.claims["exp"]
        assert check(gate, req, ssp_cert, now=datetime.fromtimestamp(exp - 1, UTC)).allowed
        assert (
            check(gate, req, ssp_cert, now=datetime.fromtimestamp(exp, UTC)).diagnostics
            == "JWT has expired"
        )

    def test_clock_tolerance(self, ssp_cert: Any) -> None:
        """clock_tolerance extends acceptance past exp by exactly that much."""
        gate = RequestGate(make_config(clock_tolerance=timedelta(seconds=5)))
        req = request_for(PATIENT)
        exp = req.claims["exp"]
        assert check(gate, req, ssp_cert, now=datetime.fromtimestamp(exp + 4, UTC)).allowed
        assert not check(gate, req, ssp_cert, now=datetime.fromtimestamp(exp + 5, UTC)).allowed

    def test_clock_read_once_when_now_is_none(self, gate: RequestGate, ssp_cert: Any) -> None:
        """Without `now`, the gate reads the clock (a stale fixed-time token then fails)."""
        req = request_for(PATIENT)
        decision = gate.check("GET", req.path, req.headers, peer_cert=ssp_cert)
        assert decision.diagnostics == "JWT has expired"

    def test_other_timezone(self, gate: RequestGate, ssp_cert: Any) -> None:
        """Any aware `now` works, whatever its zone."""
        req = request_for(PATIENT)
        tz = datetime.fromtimestamp(NOW, UTC).astimezone(
            __import__("datetime").timezone(timedelta(hours=5))
        )
        assert check(gate, req, ssp_cert, now=tz).allowed


class TestClaimOptions:
    """The configurable JWT choices of rules §8."""

    def test_expected_aud(self, ssp_cert: Any) -> None:
        """expected_aud (off by default) compares aud exactly when set."""
        req = request_for(PATIENT)
        aud = req.claims["aud"]
        assert check(RequestGate(make_config(expected_aud=aud)), req, ssp_cert).allowed
        decision = check(RequestGate(make_config(expected_aud=aud + "x")), req, ssp_cert)
        assert "aud" in decision.diagnostics

    def test_wrong_resource_type_option(self, ssp_cert: Any) -> None:
        """A known wrong type is 400 by default and 422 with INVALID_RESOURCE when chosen."""
        claims = v1_claims(requesting_device={"resourceType": "Organization"})
        req = with_claims(PATIENT, claims)
        assert check(RequestGate(make_config()), req, ssp_cert).status == 400
        gate = RequestGate(
            make_config(wrong_resource_type=WrongResourceTypeResponse.INVALID_RESOURCE)
        )
        decision = check(gate, req, ssp_cert)
        assert (decision.status, decision.spine_code) == (422, SpineCode.INVALID_RESOURCE)

    def test_rc5_ods_off(self, ssp_cert: Any) -> None:
        """accept_rc5_ods_system=False refuses the RC5 ODS system."""
        org = {
            "resourceType": "Organization",
            "identifier": [
                {"system": "http://fhir.nhs.net/Id/ods-organization-code", "value": "A1"}
            ],
        }
        req = with_claims(PATIENT, v1_claims(requesting_organization=org))
        assert not check(
            RequestGate(make_config(accept_rc5_ods_system=False)), req, ssp_cert
        ).allowed

    def test_sub_match_off(self, ssp_cert: Any) -> None:
        """require_sub_matches_practitioner=False allows a different sub."""
        req = with_claims(PATIENT, v1_claims(sub="other"))
        assert check(
            RequestGate(make_config(require_sub_matches_practitioner=False)), req, ssp_cert
        ).allowed

    def test_requested_record_in_v1(self, ssp_cert: Any) -> None:
        """A 1.x requested_record is tolerated unless reject_v1_requested_record is set."""
        req = with_claims(PATIENT, v1_claims(requested_record={"resourceType": "Patient"}))
        assert check(RequestGate(make_config()), req, ssp_cert).allowed
        assert not check(
            RequestGate(make_config(reject_v1_requested_record=True)), req, ssp_cert
        ).allowed

    def test_scope_enforcement_off(self, ssp_cert: Any) -> None:
        """enforce_scope=False skips the scope rules (presence is still required)."""
        req = with_claims(PATIENT, v1_claims(requested_scope="anything"))
        assert check(RequestGate(make_config(enforce_scope=False)), req, ssp_cert).allowed
        assert not check(RequestGate(make_config()), req, ssp_cert).allowed

    def test_migrate_rule_without_scope_enforcement(self, ssp_cert: Any) -> None:
        """The conf/N sensitive-information rule still applies with enforce_scope=False."""
        iid = "urn:nhs:names:services:gpconnect:fhir:operation:gpc.migratestructuredrecord-1"
        migrate = BY_ID[(iid, RootKind.STRUCTURED)]
        req = request_for(migrate)
        body = json.dumps(
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "includeSensitiveInformation", "valueBoolean": True}],
            }
        ).encode()
        gate = RequestGate(make_config(enforce_scope=False))
        assert check(gate, req, ssp_cert, body=body).spine_code is SpineCode.CONFLICTING_VALUES
        restricted = with_claims(
            migrate, {**req.claims, "requested_scope": "patient/*.read conf/R"}
        )
        assert check(gate, restricted, ssp_cert, body=body).allowed

    @pytest.mark.parametrize(
        ("practitioner", "reason"),
        [
            (
                {
                    "resourceType": "Practitioner",
                    "id": "10019",
                    "identifier": [{"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "1"}],
                },
                "no name",
            ),
            ({"resourceType": "Practitioner", "name": {"family": "x"}}, "valid Practitioner"),
            ({"resourceType": "Practitioner", "name": [{"family": ["x"]}]}, "valid Practitioner"),
            ({"resourceType": "Practitioner", "name": [{"given": "x"}]}, "valid Practitioner"),
            ({"resourceType": "Practitioner", "id": 1}, "valid Practitioner"),
            ({"resourceType": "Practitioner", "identifier": [{"system": 1}]}, "valid Practitioner"),
            ({"resourceType": "Practitioner", "identifier": ["x"]}, "valid Practitioner"),
            ({"resourceType": "Practitioner", "identifier": [{"foo": "x"}]}, "valid Practitioner"),
        ],
    )
    def test_practitioner_shapes(
        self, gate: RequestGate, ssp_cert: Any, practitioner: Any, reason: str
    ) -> None:
        """Practitioner name/identifier/id shapes are checked (422 for invalid FHIR)."""
        req = with_claims(PATIENT, v1_claims(requesting_practitioner=practitioner))
        assert reason in check(gate, req, ssp_cert).diagnostics

    def test_primitive_extension_elements(self, gate: RequestGate, ssp_cert: Any) -> None:
        """FHIR JSON '_element' siblings of known elements are accepted."""
        device = {**v1_claims()["requesting_device"], "_model": {"extension": []}}
        assert check(
            gate, with_claims(PATIENT, v1_claims(requesting_device=device)), ssp_cert
        ).allowed


class TestV07:
    """0.7.x (DSTU2) rules: aud, requested_record, ids, resource statuses, body check."""

    def test_example_token_b_passes(self, gate: RequestGate, ssp_cert: Any) -> None:
        """Rules §3.7 token B with fresh times is accepted for getcarerecord."""
        decision = check(gate, request_for(CARE_RECORD), ssp_cert)
        assert decision.allowed, decision.diagnostics
        assert decision.content_type == "application/fhir+json" or decision.allowed

    @pytest.mark.parametrize(
        ("over", "reason"),
        [
            ({"aud": "https://providersupplier.thirdparty.nhs.uk/GP0001/DSTU2/1"}, "aud"),
            ({"requested_record": None}, "requested_record is missing"),
            ({"requested_record": {"resourceType": "Patient"}}, "NHS number"),
            ({"requested_record": {"resourceType": "Slot"}}, "valid Patient"),
            ({"requesting_device": {"resourceType": "Foo"}}, "valid Device"),
            ({"reason_for_request": "migration"}, "reason_for_request"),
            ({"requested_scope": "patient/*.read conf/N"}, "conf"),
        ],
    )
    def test_refused_with_400(
        self, gate: RequestGate, ssp_cert: Any, over: dict[str, Any], reason: str
    ) -> None:
        """0.7.x answers claim problems with 400, a resourceType that is not the one wanted
        included (0.7.4 JWT.feature, "JWT requesting device invalid resourceType") [PT-074].
        An element the resource lacks is 422 instead: see tests/gate/test_gate_pack.py."""
        req = request_for(CARE_RECORD)
        claims = {**req.claims, **over}
        claims = {k: v for k, v in claims.items() if v is not None}
        decision = check(gate, with_claims(CARE_RECORD, claims), ssp_cert)
        assert decision.status == 400
        assert reason in decision.diagnostics
        assert decision.generation is Generation.V0_7
        assert decision.content_type == "application/json+fhir"
        assert b"gpconnect-operationoutcome-1" in decision.operation_outcome()

    def test_ids_required(self, gate: RequestGate, ssp_cert: Any) -> None:
        """Device and Organization need an id in 0.7.x."""
        req = request_for(CARE_RECORD)
        org = {k: v for k, v in req.claims["requesting_organization"].items() if k != "id"}
        decision = check(
            gate, with_claims(CARE_RECORD, {**req.claims, "requesting_organization": org}), ssp_cert
        )
        assert "need an id" in decision.diagnostics

    def test_organization_requested_record(self, gate: RequestGate, ssp_cert: Any) -> None:
        """requested_record may be an Organization (ODS) for metadata."""
        record = {
            "resourceType": "Organization",
            "identifier": [
                {
                    "system": "http://fhir.nhs.net/Id/ods-organization-code",
                    "value": "OrgODSCode0001",
                }
            ],
        }
        req = request_for(
            V07_METADATA, requested_record=record, requested_scope="organization/*.read"
        )
        assert check(gate, req, ssp_cert).allowed
        # ... but not for a care record request with a body.
        care = request_for(CARE_RECORD, requested_record=record)
        assert "must be a Patient" in check(gate, care, ssp_cert).diagnostics

    @pytest.mark.parametrize(
        ("body", "status", "reason"),
        [
            (
                {
                    "resourceType": "Parameters",
                    "parameter": [
                        {"name": "patientNHSNumber", "valueIdentifier": {"value": "9999999999"}}
                    ],
                },
                400,
                "does not match",
            ),
            (
                {
                    "resourceType": "Parameters",
                    "parameter": [{"name": "patientNHSNumber", "valueString": "x"}],
                },
                422,
                "valueIdentifier",
            ),
            ({"resourceType": "Parameters", "parameter": []}, 200, "allowed"),
            ({"resourceType": "Patient"}, 422, "Parameters"),
            ({"resourceType": "Parameters", "parameter": {}}, 422, "malformed"),
            ([1], 422, "Parameters"),
        ],
    )
    def test_body_cross_check(
        self, gate: RequestGate, ssp_cert: Any, body: Any, status: int, reason: str
    ) -> None:
        """The body's patientNHSNumber must match requested_record; malformed bodies are 422."""
        decision = check(gate, request_for(CARE_RECORD), ssp_cert, body=json.dumps(body).encode())
        assert (decision.status, reason in decision.diagnostics) == (status, True)

    @pytest.mark.parametrize(
        "body", [b"{", b"\xff", b"[" * 100_000, b'{"a": NaN}', b'{"a":"\\ud800"}']
    )
    def test_malformed_body(self, gate: RequestGate, ssp_cert: Any, body: bytes) -> None:
        """Broken JSON, non-UTF-8, deep nesting, NaN, lone surrogates -> 422 INVALID_RESOURCE."""
        decision = check(gate, request_for(CARE_RECORD), ssp_cert, body=body)
        assert (decision.status, decision.spine_code) == (422, SpineCode.INVALID_RESOURCE)

    def test_body_size_limit(self, ssp_cert: Any) -> None:
        """A body beyond the limit is 400 even for interactions without a body rule."""
        gate = RequestGate(make_config(limits=GateLimits(max_body_bytes=10)))
        req = request_for(
            BY_ID[
                (
                    "urn:nhs:names:services:gpconnect:fhir:rest:create:appointment-1",
                    RootKind.FOUNDATIONS,
                )
            ]
        )
        assert "too large" in check(gate, req, ssp_cert).diagnostics

    def test_only_v07_enabled_shapes_early_errors(self, ssp_cert: Any) -> None:
        """Before an interaction is known, errors take the shape of the enabled generation."""
        gate = RequestGate(make_config(generations=frozenset({Generation.V0_7})))
        decision = gate.check("GET", "/x", [], peer_cert=ssp_cert, now=NOW_DT)
        assert decision.generation is Generation.V0_7


class TestCertificates:
    """Peer certificate rules; the checker is pluggable (CertificateChecker protocol)."""

    @pytest.mark.parametrize("mode", list(ClientAuthMode))
    def test_missing_is_496_in_both_modes(self, mode: ClientAuthMode) -> None:
        """No certificate -> 496 in http-496 mode, and (fail closed) in require mode too."""
        gate = RequestGate(make_config(client_auth=mode))
        req = request_for(PATIENT)
        decision = gate.check("GET", req.path, req.headers, now=NOW_DT)
        assert (decision.status, decision.spine_code, decision.issue_code) == (
            496,
            SpineCode.ACCESS_DENIED_SSL,
            IssueType.SECURITY,
        )
        assert mode.value in decision.diagnostics

    def test_checker_gets_chain_and_time(self, ssp_cert: Any) -> None:
        """The checker is called with the leaf, the intermediates and at=now."""
        checker = SerialDenyList()
        gate = RequestGate(make_config(certificate_checker=checker))
        assert check(gate, request_for(PATIENT), ssp_cert, peer_chain=[ssp_cert]).allowed
        assert checker.calls == [NOW_DT]

    def test_checker_failure_codes_are_sanitised(self, ssp_cert: Any) -> None:
        """Failure codes (enum or str) appear in diagnostics; unprintable ones do not."""
        import enum

        class Code(enum.Enum):
            EXPIRED = "expired"

        class Checker:
            def validate(self, leaf: Any, intermediates: Any = (), *, at: Any = None) -> Outcome:
                return Outcome(False, (Failure(Code.EXPIRED), Failure("bad\ncode"), object()))

        decision = check(
            RequestGate(make_config(certificate_checker=Checker())), request_for(PATIENT), ssp_cert
        )
        assert decision.status == 495
        assert (
            decision.diagnostics
            == "the client certificate is not acceptable (expired, unprintable, unknown)"
        )

    def test_checker_without_failures(self, ssp_cert: Any) -> None:
        """An invalid outcome with no failure list still refuses."""

        class Checker:
            def validate(self, leaf: Any, intermediates: Any = (), *, at: Any = None) -> Outcome:
                return Outcome(False)

        decision = check(
            RequestGate(make_config(certificate_checker=Checker())), request_for(PATIENT), ssp_cert
        )
        assert "unspecified" in decision.diagnostics

    def test_checker_that_raises_fails_closed(
        self, ssp_cert: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A checker exception is a 495 (fail closed), logged by type only."""

        class Broken:
            def validate(self, leaf: Any, intermediates: Any = (), *, at: Any = None) -> Outcome:
                raise RuntimeError("secret detail")

        decision = check(
            RequestGate(make_config(certificate_checker=Broken())), request_for(PATIENT), ssp_cert
        )
        assert decision.status == 495
        assert "checker-error" in decision.diagnostics
        assert "secret detail" not in caplog.text
        assert "RuntimeError" in caplog.text

    def test_real_validator_satisfies_protocol(self) -> None:
        """spinepki.validation.ClientCertValidator, when present, is a CertificateChecker."""
        validation = pytest.importorskip("spinepki.validation")
        from spinepki.gate import CertificateChecker

        validator_cls = getattr(validation, "ClientCertValidator", None)
        if validator_cls is None:
            pytest.skip("ClientCertValidator not landed yet")
        assert callable(getattr(validator_cls, "validate", None))
        assert CertificateChecker is not None


class TestDecision:
    """GateDecision rendering."""

    def test_allowed_decision(self, gate: RequestGate, ssp_cert: Any) -> None:
        """An allowed decision carries the interaction and claims, and only no-store."""
        decision = check(gate, request_for(PATIENT), ssp_cert)
        assert decision.allowed
        assert decision.status == 200
        assert decision.interaction is PATIENT
        assert decision.claims is not None
        assert decision.claims["sub"] == "10019"
        assert decision.response_headers() == (("Cache-Control", "no-store"),)
        assert decision.operation_outcome() == b""
        assert decision.status_line == "200 OK"

    @pytest.mark.parametrize("system", list(OutcomeCodingSystem))
    def test_outcome_coding_system(self, ssp_cert: Any, system: OutcomeCodingSystem) -> None:
        """The 1.x Spine coding system URI follows outcome_coding_system."""
        gate = RequestGate(make_config(outcome_coding_system=system))
        decision = gate.check("GET", "/x", [], peer_cert=ssp_cert, now=NOW_DT)
        body = json.loads(decision.operation_outcome())
        assert body["issue"][0]["details"]["coding"][0]["system"] == system.value
        assert decision.status_line == "400 Bad Request"
        assert ("Content-Type", "application/fhir+json") in decision.response_headers()

    def test_codes_displays_and_issue_types(self) -> None:
        """Displays are the Spine value set's [PT-VS]; issue types follow rules §1.3."""
        expected = {
            SpineCode.BAD_REQUEST: ("Bad request", "invalid"),
            SpineCode.INVALID_RESOURCE: ("Invalid validation of resource", "invalid"),
            SpineCode.CONFLICTING_VALUES: (
                "Conflicting values have been specified in different fields",
                "invalid",
            ),
            SpineCode.INVALID_IDENTIFIER_SYSTEM: ("Invalid identifier system", "value"),
            SpineCode.ACCESS_DENIED_SSL: (
                "SSL Protocol or Cipher requirements not met",
                "security",
            ),
        }
        assert set(expected) == set(SpineCode)
        for code, (display, issue) in expected.items():
            assert (code.display, code.issue_type.value) == (display, issue)

    def test_certificate_unusable_and_body_too_large(self, gate: RequestGate) -> None:
        """The middleware helpers build 495 and 400 decisions."""
        assert gate.certificate_unusable().status_line == "495 SSL Certificate Error"
        assert gate.body_too_large().status == 400
        assert RequestGate.has_body(b"POST")
        assert not RequestGate.has_body("GET")


def _reference_b64url(part: str) -> bytes | str:
    """The decoder before the one-pass rewrite: regex, length, canonical bits, decode."""
    if not part or re.fullmatch(r"[A-Za-z0-9_-]+", part) is None:
        return "JWT payload is not unpadded base64url"
    rem = len(part) % 4
    if rem == 1:
        return "JWT payload has an impossible base64url length"
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    if rem and alphabet.index(part[-1]) & (0x0F if rem == 2 else 0x03):
        return "JWT payload is not canonical base64url"
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class TestDecoder:
    """decode_unsecured_jwt, the public strict decoder."""

    def test_decodes_example(self) -> None:
        """The example token decodes to its claims."""
        assert decode_unsecured_jwt(encode(v1_claims()))["sub"] == "10019"

    @pytest.mark.parametrize(
        "token",
        [
            "é.e30.",
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.e3.",
            "e30.e30.",
            "bnVsbA.e30.",
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0..",
            "W3.e30.",
        ],
        ids=[
            "non-ascii",
            "impossible-length",
            "empty-header",
            "null-header",
            "empty-payload",
            "non-canonical-header",
        ],
    )
    def test_refused(self, token: str) -> None:
        """Malformed tokens raise TokenParseError with a message that does not quote them."""
        with pytest.raises(TokenParseError) as info:
            decode_unsecured_jwt(token)
        assert token not in str(info.value)
        assert info.value.code == "input.token"

    @pytest.mark.parametrize(
        ("part", "message"),
        [
            ("e30", None),
            ("e30+", "not unpadded base64url"),
            ("e3/9", "not unpadded base64url"),
            ("e30=", "not unpadded base64url"),
            ("e3 0", "not unpadded base64url"),
            ("e30\n", "not unpadded base64url"),
            ("e3%0", "not unpadded base64url"),
            ("e30é", "not unpadded base64url"),
            ("e30!x", "not unpadded base64url"),
            ("e30ab", "impossible base64url length"),
            ("e31", "not canonical base64url"),
            ("W3", "not canonical base64url"),
            ("", "not unpadded base64url"),
        ],
    )
    def test_base64url_parts(self, part: str, message: str | None) -> None:
        """A part is unpadded, canonical base64url or it is refused, with the message for
        what is wrong: the standard alphabet's '+' and '/', padding, whitespace and
        non-ASCII are not base64url (the strict C decoder refuses what the regex did)."""
        if message is None:
            assert _jwt._b64url(part, "payload") == b"{}"
            return
        with pytest.raises(TokenParseError, match=message):
            _jwt._b64url(part, "payload")

    @given(st.text(alphabet=string.ascii_letters + string.digits + "-_+/= .\n%!é", max_size=12))
    def test_base64url_same_answers_as_regex_reference(self, part: str) -> None:
        """The one-pass decoder gives the same bytes or the same refusal as the regex,
        translation and lenient decode it replaced."""
        try:
            got: bytes | str = _jwt._b64url(part, "payload")
        except TokenParseError as exc:
            got = str(exc)
        assert got == _reference_b64url(part)

    def test_max_bytes(self) -> None:
        """The length bound is checked first."""
        with pytest.raises(TokenParseError, match="too long"):
            decode_unsecured_jwt("a" * 11, max_bytes=10)


def test_check_outcome_protocols_are_runtime_checkable() -> None:
    """The checker-facing protocols accept structurally matching objects."""
    from spinepki.gate import CertificateChecker, CheckFailure, CheckOutcome

    assert isinstance(Outcome(True), CheckOutcome)
    assert isinstance(Failure("x"), CheckFailure)
    assert isinstance(SerialDenyList(), CertificateChecker)


def test_gate_config_is_frozen() -> None:
    """GateConfig is immutable."""
    config = make_config()
    with pytest.raises(AttributeError):
        config.provider_asid = "1"  # type: ignore[misc]
    assert isinstance(config, GateConfig)
