"""RequestGate: the framework-neutral check of one request against the GP Connect rules."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from spinepki._json import parse_json_strict
from spinepki.errors import ConfigurationError, TokenParseError
from spinepki.gate._catalogue import BodyRule, Interaction
from spinepki.gate._config import ClientAuthMode, GateConfig, Generation
from spinepki.gate._decision import GateDecision, Rejection
from spinepki.gate._headers import (
    HeaderInput,
    SspHeader,
    collect_headers,
    identification_headers,
    safe_value,
)
from spinepki.gate._jwt import NHS_NUMBER_V07, check_claims, decode_unsecured_jwt
from spinepki.gate._outcome import SpineCode
from spinepki.gate._scope import Scope, ScopeError, check_scope, parse_scope

if TYPE_CHECKING:
    from cryptography import x509

__all__ = ["RequestGate"]

_log = logging.getLogger("spinepki.gate")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
SOFT_FAILED = "soft-failed"
"""``GateDecision.revocation`` of a certificate accepted under revocation SOFT_FAIL."""
_MAX_WARNINGS = 3
#: FailureCode.REVOCATION_UNKNOWN's value (a checker's codes arrive as strings).
_REVOCATION_UNKNOWN = "revocation_unknown"
_MAX_WARNING_CHARS = 160
# A URL's user:password@ and its query/fragment (up to ": " or whitespace), removed from
# revocation problem texts before they are logged or audited.
_URL_USERINFO = re.compile(r"(?<=://)[^/\s@]*@")
_URL_QUERY = re.compile(r"[?#]\S*?(?=:?(?:\s|$))")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


#: ``ssp`` before the headers were read (identity-compared, never mutated).
_NOT_READ: list[str | None] = [None] * 5


class _WouldBlock(Exception):
    """Internal: the certificate check has no cached answer (``check_nonblocking``)."""


class RequestGate:
    """Checks one request against the GP Connect provider rules and returns a decision.

    Stateless per request and safe to share between threads and tasks: all state is
    the frozen :class:`GateConfig`, precomputed here once.

    Example::

        gate = RequestGate(config)
        decision = gate.check("GET", "/A12345/STU3/1/gpconnect/metadata", headers,
                              peer_cert=cert)
        if not decision.allowed:
            return decision.status, decision.response_headers(), decision.operation_outcome()
    """

    __slots__ = ("_cached_lookup", "_catalogue", "_config", "_default_generation", "_roots_by_kind")

    def __init__(self, config: GateConfig) -> None:
        """Precompute the lookups ``check`` needs.

        Raises:
            ConfigurationError: ``config`` is not a :class:`GateConfig`.
        """
        if not isinstance(config, GateConfig):
            raise ConfigurationError("RequestGate needs a GateConfig", source="config")
        self._config = config
        enabled: dict[str, Interaction] = {}
        for row in config.catalogue.interactions:
            if row.generation in config.generations and (
                config.enable_legacy_drafts or not row.legacy
            ):
                enabled[row.interaction_id] = row
        self._catalogue = enabled
        roots: dict[Any, list[str]] = {}
        for kind, path in config.root_paths:
            roots.setdefault(kind, []).append(path)
        self._roots_by_kind = {k: tuple(v) for k, v in roots.items()}
        # Before an interaction is known, answer in the shape of the newest enabled one.
        self._default_generation = (
            Generation.V1 if Generation.V1 in config.generations else Generation.V0_7
        )
        # The checker's optional non-blocking query (CachedCertificateChecker).
        lookup = getattr(config.certificate_checker, "cached", None)
        self._cached_lookup: Callable[..., Any] | None = lookup if callable(lookup) else None

    @property
    def config(self) -> GateConfig:
        """The configuration this gate enforces."""
        return self._config

    @property
    def may_block(self) -> bool:
        """Whether :meth:`check` can block: a certificate checker is configured, and
        validating may fetch revocation evidence. Without one ``check`` is pure CPU."""
        return self._config.certificate_checker is not None

    def certificate_unusable(
        self, diagnostics: str = "client certificate unusable", headers: HeaderInput | None = None
    ) -> GateDecision:
        """A 495 decision for a certificate that a source could not even parse.

        Middlewares call this when the peer certificate they were handed is garbage, which
        the gate's own ``check`` never sees. ``headers``, when given, supply the
        ``Ssp-TraceID``/``Ssp-From``/``Ssp-To`` of the decision (for its audit record).
        """
        return self._reject(
            Rejection(diagnostics, status=495, spine=SpineCode.ACCESS_DENIED_SSL),
            None,
            None,
            self._ids(headers),
        )

    def body_too_large(self, headers: HeaderInput | None = None) -> GateDecision:
        """The 400 decision for a request body beyond ``limits.max_body_bytes``
        (``headers`` as for :meth:`certificate_unusable`)."""
        return self._reject(
            Rejection("the request body is too large"), None, None, self._ids(headers)
        )

    def body_incomplete(self, headers: HeaderInput | None = None) -> GateDecision:
        """The 400 decision for a request whose body never completed (the client went
        away, or the server's body deadline closed the connection; ``headers`` as for
        :meth:`certificate_unusable`)."""
        return self._reject(
            Rejection("the request body is incomplete"), None, None, self._ids(headers)
        )

    def check_body(self, decision: GateDecision, body: bytes) -> GateDecision:
        """Apply the body rules to a request :meth:`check` allowed without its body.

        How a middleware avoids reading a body it will refuse anyway: ``check`` with
        ``body=None`` decides everything that needs no body (the certificate, the SSP
        headers, the token, the scope); only when that allows the request is the body
        read and judged here. A refused ``decision`` is returned as it is.

        Returns:
            ``decision`` when the body passes, else the refusal (400/422).
        """
        if not decision.allowed or decision.interaction is None or decision.claims is None:
            return decision
        interaction, claims = decision.interaction, decision.claims
        try:
            # The scope was checked with the claims; this only recovers its confidentiality.
            confidentiality = self._check_scope(claims, interaction)
            self._check_body(body, interaction, claims, confidentiality)
        except Rejection as rejection:
            ids = (decision.trace_id, decision.from_asid, decision.to_asid)
            return self._reject(rejection, interaction, claims, ids)
        return decision

    def _ids(self, headers: HeaderInput | None) -> tuple[str | None, str | None, str | None]:
        if headers is None:
            return (None, None, None)
        return identification_headers(headers, self._config.limits)

    def check(
        self,
        method: str | bytes,
        path: str | bytes,
        headers: HeaderInput,
        *,
        query: str | bytes | None = None,
        body: bytes | None = None,
        peer_cert: x509.Certificate | None = None,
        peer_chain: Sequence[x509.Certificate] = (),
        now: datetime | None = None,
    ) -> GateDecision:
        """Check one request.

        Args:
            method: the HTTP method, exactly as received (methods are case-sensitive).
            path: the decoded request path, without the query string.
            headers: (name, value) pairs as received (str or bytes), or a mapping.
            query: the raw query string (no ``?``); None means there was none.
            body: the request body, for the rules that need it; None skips those rules.
            peer_cert: the client certificate, already parsed.
            peer_chain: intermediates the client sent with it.
            now: the decision time (timezone-aware); None reads the clock once, here.

        Returns:
            The decision; ``check`` never raises for anything the request holds.

        Raises:
            ConfigurationError: ``now`` is naive (a caller bug, not a request problem).
        """
        return self._check(
            method, path, headers, query, body, peer_cert, peer_chain, now, cached_only=False
        )

    def check_nonblocking(
        self,
        method: str | bytes,
        path: str | bytes,
        headers: HeaderInput,
        *,
        query: str | bytes | None = None,
        body: bytes | None = None,
        peer_cert: x509.Certificate | None = None,
        peer_chain: Sequence[x509.Certificate] = (),
        now: datetime | None = None,
    ) -> GateDecision | None:
        """:meth:`check`, but only if it can be decided without blocking; else None.

        The certificate is judged from the checker's ``cached`` answer
        (:class:`~spinepki.gate.CachedCertificateChecker`); when there is none (the
        checker has no ``cached``, or nothing fresh is cached), nothing is decided and
        None is returned: call :meth:`check` where blocking is harmless (a worker thread).
        Without a certificate checker this is exactly :meth:`check`. An event-loop
        server's fast path: the SSP presents the same certificate again and again.

        Raises:
            ConfigurationError: ``now`` is naive.
        """
        try:
            return self._check(
                method, path, headers, query, body, peer_cert, peer_chain, now, cached_only=True
            )
        except _WouldBlock:
            return None

    def _check(
        self,
        method: str | bytes,
        path: str | bytes,
        headers: HeaderInput,
        query: str | bytes | None,
        body: bytes | None,
        peer_cert: x509.Certificate | None,
        peer_chain: Sequence[x509.Certificate],
        now: datetime | None,
        *,
        cached_only: bool,
    ) -> GateDecision:
        if now is None:
            now = datetime.now(UTC)
        elif now.tzinfo is None or now.utcoffset() is None:
            # The same mistake as a naive ``at`` given to the validator, so the same error.
            raise ConfigurationError(
                "the request time must be timezone-aware (e.g. datetime.now(UTC))", source="now"
            )
        config = self._config
        interaction: Interaction | None = None
        claims: dict[str, Any] | None = None
        ssp: list[str | None] = _NOT_READ
        certified = False
        try:
            warnings = self._check_certificate(peer_cert, peer_chain, now, cached_only)
            certified = True
            ssp = collect_headers(headers, config.limits)
            interaction = self._check_ssp_headers(ssp)
            self._check_request_line(interaction, method, path, query)
            claims = self._decode_token(ssp[SspHeader.AUTHORIZATION])
            check_claims(claims, interaction, config, now.timestamp())
            scope_conf = self._check_scope(claims, interaction)
            if body is not None:
                self._check_body(body, interaction, claims, scope_conf)
        except Rejection as rejection:
            if ssp is _NOT_READ:
                # Refused before the headers were read (the certificate), or while they
                # were (a limit): the audit record still gets the SSP identification.
                ids = identification_headers(headers, config.limits, reiterable_only=certified)
            else:
                ids = (ssp[0], ssp[1], ssp[2])
            return self._reject(rejection, interaction, claims, ids)
        if warnings is not None:
            return self._allow_with_warnings(interaction, claims, ssp, warnings)
        return GateDecision(
            allowed=True,
            status=200,
            spine_code=None,
            issue_code=None,
            diagnostics="allowed",
            interaction=interaction,
            claims=claims,
            generation=interaction.generation,
            coding_system=config.outcome_coding_system,
            trace_id=safe_value(ssp[0]),
            from_asid=safe_value(ssp[1]),
            to_asid=safe_value(ssp[2]),
        )

    # -- the rules, in the order the reference provider applies them [DEMO] --------

    def _allow_with_warnings(
        self,
        interaction: Interaction,
        claims: dict[str, Any] | None,
        ssp: list[str | None],
        warnings: tuple[str, ...],
    ) -> GateDecision:
        decision = GateDecision(
            allowed=True,
            status=200,
            spine_code=None,
            issue_code=None,
            diagnostics="allowed",
            interaction=interaction,
            claims=claims,
            generation=interaction.generation,
            coding_system=self._config.outcome_coding_system,
            trace_id=safe_value(ssp[0]),
            from_asid=safe_value(ssp[1]),
            to_asid=safe_value(ssp[2]),
            revocation=SOFT_FAILED,
            warnings=warnings,
        )
        _log.warning(
            "client certificate accepted without revocation evidence (revocation soft-fail) "
            "trace=%s: %s",
            decision.trace_id or "-",
            "; ".join(warnings),
        )
        return decision

    def _check_certificate(
        self,
        peer_cert: x509.Certificate | None,
        peer_chain: Sequence[x509.Certificate],
        now: datetime,
        cached_only: bool,
    ) -> tuple[str, ...] | None:
        """Refuse an unacceptable certificate; return the warnings of a soft-failed
        revocation check (None in the common case)."""
        config = self._config
        if peer_cert is None:
            # In REQUIRE mode the handshake should have refused the client already, so a
            # certificate-less request here means TLS is not enforcing it: fail closed.
            mode = "http-496" if config.client_auth is ClientAuthMode.HTTP_496 else "require"
            raise Rejection(
                f"a client certificate is required (client auth mode {mode})",
                status=496,
                spine=SpineCode.ACCESS_DENIED_SSL,
            )
        checker = config.certificate_checker
        if checker is None:
            return None
        if cached_only:
            lookup = self._cached_lookup
            if lookup is None:
                raise _WouldBlock
            try:
                known = lookup(peer_cert, tuple(peer_chain), at=now)
            except Exception:  # the full check decides (and logs), off the event loop
                raise _WouldBlock from None
            if known is None:
                raise _WouldBlock
        try:
            outcome = (
                known if cached_only else checker.validate(peer_cert, tuple(peer_chain), at=now)
            )
            valid = outcome.valid is True
            # Each code once: the leaf and its Sub CA may fail for the same reason.
            codes = [] if valid else list(dict.fromkeys(_code(f) for f in outcome.failures))
            warnings = _soft_fail_warnings(outcome) if valid else None
        except Exception as exc:  # a checker that breaks must fail closed
            _log.error("certificate checker raised %s; refusing the request", type(exc).__name__)
            valid, codes = False, ["checker-error"]
        if not valid:
            detail = ", ".join(codes[:5]) if codes else "unspecified"
            why = f"the client certificate is not acceptable ({detail})"
            if _REVOCATION_UNKNOWN in codes:
                # The certificate may be fine: say that the evidence was missing, so the
                # operator looks at the CRL/OCSP responder rather than the certificate.
                why += (
                    "; its revocation status is unknown: the revocation data (CRL or OCSP) "
                    "was unreachable or unusable"
                )
            raise Rejection(
                why,
                status=495,
                spine=SpineCode.ACCESS_DENIED_SSL,
            )
        return warnings

    def _check_ssp_headers(self, ssp: list[str | None]) -> Interaction:
        for header in (SspHeader.TRACE_ID, SspHeader.FROM, SspHeader.TO):
            value = ssp[header]
            if value is None or not value.strip():
                raise Rejection(f"the {header.spelling} header is missing or blank")
        trace = ssp[SspHeader.TRACE_ID]
        if self._config.strict_trace_id and (trace is None or not _UUID.fullmatch(trace)):
            raise Rejection("the Ssp-TraceID header is not a UUID")
        if ssp[SspHeader.TO] != self._config.provider_asid:
            raise Rejection("the Ssp-To header is not this provider's ASID")
        iid = ssp[SspHeader.INTERACTION_ID]
        if iid is None or not iid.strip():
            raise Rejection("the Ssp-InteractionID header is missing or blank")
        interaction = self._catalogue.get(iid)
        if interaction is None:
            raise Rejection("the Ssp-InteractionID header names an unknown interaction")
        return interaction

    def _check_request_line(
        self,
        interaction: Interaction,
        method: str | bytes,
        path: str | bytes,
        query: str | bytes | None,
    ) -> None:
        limits = self._config.limits
        if isinstance(method, bytes):
            method = method.decode("latin-1")
        if method != interaction.method.value:
            raise Rejection("the HTTP method is not valid for the Ssp-InteractionID")
        if isinstance(path, bytes):
            try:
                path = path.decode("utf-8")
            except UnicodeDecodeError:
                raise Rejection("the request path is not UTF-8") from None
        if len(path) > limits.max_path_bytes:
            raise Rejection("the request path is too long")
        for root in self._roots_by_kind.get(interaction.root, ()):
            if path.startswith(root) and path[len(root) : len(root) + 1] == "/":
                segments = path[len(root) + 1 :].split("/")
                if interaction.matches_path(segments, allow_vread=self._config.allow_vread):
                    break
        else:
            raise Rejection("the request path does not match the Ssp-InteractionID")
        if interaction.identifier_systems:
            self._check_identifier(interaction, query)

    def _check_identifier(self, interaction: Interaction, query: str | bytes | None) -> None:
        # The query is read only to find the identifier's system; its values (NHS
        # numbers) are never copied into diagnostics.
        if query is None:
            query = ""
        if len(query) > self._config.limits.max_query_bytes:
            raise Rejection("the query string is too long")
        if isinstance(query, bytes):
            query = query.decode("latin-1")
        try:
            pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=100)
        except ValueError:
            raise Rejection("the query string has too many parameters") from None
        identifiers = [value for key, value in pairs if key == "identifier"]
        if len(identifiers) != 1:
            raise Rejection("the search needs exactly one identifier parameter")
        system, bar, _ = identifiers[0].partition("|")
        if not bar or system not in interaction.identifier_systems:
            raise Rejection(
                "the identifier parameter's system is not valid for this search",
                spine=SpineCode.INVALID_IDENTIFIER_SYSTEM,
            )

    def _decode_token(self, authorization: str | None) -> dict[str, Any]:
        if authorization is None or not authorization.strip():
            raise Rejection("the Authorization header is missing or blank")
        scheme, space, token = authorization.partition(" ")
        # The auth scheme is case-insensitive (RFC 7235 §2.1); the token is not.
        if not space or scheme.lower() != "bearer" or not token:
            raise Rejection("the Authorization header is not a Bearer token")
        try:
            return decode_unsecured_jwt(token, max_bytes=self._config.limits.max_token_bytes)
        except TokenParseError as exc:
            raise Rejection(exc.reason) from None

    def _check_scope(self, claims: Mapping[str, Any], interaction: Interaction) -> Scope:
        value = claims["requested_scope"]  # presence and type checked with the claims
        v1 = interaction.generation is Generation.V1
        if not self._config.enforce_scope:
            # Still needed by the migrate body rule: absent conf/* means conf/N [JWT].
            return Scope.CONF_RESTRICTED if "conf/R" in value.split(" ") else Scope.CONF_NORMAL
        try:
            request = parse_scope(value, allow_confidentiality=v1)
            check_scope(
                request,
                required=interaction.scope,
                restricted_allowed=interaction.restricted_confidentiality,
            )
        except ScopeError as exc:
            raise Rejection(exc.reason) from None
        return request.confidentiality

    def _check_body(
        self,
        body: bytes,
        interaction: Interaction,
        claims: Mapping[str, Any],
        confidentiality: Scope,
    ) -> None:
        if len(body) > self._config.limits.max_body_bytes:
            raise Rejection("the request body is too large")
        rule = interaction.body_rule
        if rule is None:
            return
        try:
            resource = parse_json_strict(body, what="the request body")
        except TokenParseError as exc:
            raise Rejection(exc.reason, status=422, spine=SpineCode.INVALID_RESOURCE) from None
        if not isinstance(resource, dict) or resource.get("resourceType") != "Parameters":
            raise Rejection(
                "the request body is not a Parameters resource",
                status=422,
                spine=SpineCode.INVALID_RESOURCE,
            )
        parameters = resource.get("parameter")
        if not isinstance(parameters, list) or not all(isinstance(p, dict) for p in parameters):
            raise Rejection(
                "the request body's parameter element is malformed",
                status=422,
                spine=SpineCode.INVALID_RESOURCE,
            )
        if rule is BodyRule.CARE_RECORD_NHS_NUMBER:
            _care_record_rule(parameters, claims)
        else:
            _migrate_rule(parameters, confidentiality)

    # -- decisions ------------------------------------------------------------------------

    def _reject(
        self,
        rejection: Rejection,
        interaction: Interaction | None,
        claims: Mapping[str, Any] | None,
        ids: tuple[str | None, str | None, str | None],
    ) -> GateDecision:
        return GateDecision(
            allowed=False,
            status=rejection.status,
            spine_code=rejection.spine,
            issue_code=rejection.issue,
            diagnostics=rejection.diagnostics,
            interaction=interaction,
            claims=claims,
            generation=interaction.generation if interaction else self._default_generation,
            coding_system=self._config.outcome_coding_system,
            trace_id=safe_value(ids[0]),
            from_asid=safe_value(ids[1]),
            to_asid=safe_value(ids[2]),
        )

    @staticmethod
    def has_body(method: str | bytes) -> bool:
        """Whether a middleware should buffer the body of a request with ``method``."""
        if isinstance(method, bytes):
            method = method.decode("latin-1")
        return method in _BODY_METHODS


def _soft_fail_warnings(outcome: object) -> tuple[str, ...] | None:
    """Why a valid outcome's revocation check soft-failed, redacted; None if it did not.

    ``outcome.revocation`` is optional (``ValidationResult`` has it; a third-party
    checker need not): only ``soft_failed is True`` counts.
    """
    revocation = getattr(outcome, "revocation", None)
    if revocation is None or getattr(revocation, "soft_failed", False) is not True:
        return None
    problems = getattr(revocation, "problems", ())
    if not isinstance(problems, tuple | list):
        problems = ()
    out = [_redact(p) for p in problems[:_MAX_WARNINGS] if isinstance(p, str)]
    return tuple(out) or ("revocation status unknown",)


def _redact(problem: str) -> str:
    """A revocation problem text fit for logs: no URL credentials or queries, printable
    ASCII, bounded length."""
    text = _URL_QUERY.sub("", _URL_USERINFO.sub("", problem[: _MAX_WARNING_CHARS * 4]))
    text = _UNPRINTABLE.sub("?", text)
    if len(text) > _MAX_WARNING_CHARS:
        text = text[: _MAX_WARNING_CHARS - 3] + "..."
    return text


def _code(failure: object) -> str:
    code = getattr(failure, "code", None)
    value = getattr(code, "value", code)
    text = str(value) if value is not None else "unknown"
    return safe_value(text) or "unprintable"


def _care_record_rule(parameters: list[dict[str, Any]], claims: Mapping[str, Any]) -> None:
    """0.7.x: the body's patientNHSNumber must be the token's requested_record [JWT-07].

    Every patientNHSNumber parameter is judged, not just the first: an application may read
    another copy, so a second one naming a different patient must not slip through. More
    than one is refused outright, and the identifier's system must be the NHS number's.
    """
    found = [p for p in parameters if p.get("name") == "patientNHSNumber"]
    if not found:
        return  # the application answers a missing parameter (INVALID_PARAMETER)
    if len(found) > 1:
        raise Rejection(
            "patientNHSNumber appears more than once", status=422, spine=SpineCode.INVALID_RESOURCE
        )
    ident = found[0].get("valueIdentifier")
    if not isinstance(ident, dict):
        raise Rejection(
            "patientNHSNumber has no valueIdentifier", status=422, spine=SpineCode.INVALID_RESOURCE
        )
    record = claims["requested_record"]  # validated by check_claims for 0.7.x
    if record.get("resourceType") != "Patient":
        raise Rejection("requested_record must be a Patient for a care record request")
    wanted = [
        i.get("value") for i in record.get("identifier", ()) if i.get("system") == NHS_NUMBER_V07
    ]
    if ident.get("system") != NHS_NUMBER_V07 or ident.get("value") not in wanted:
        raise Rejection("patientNHSNumber in the body does not match the JWT requested_record")


def _migrate_rule(parameters: list[dict[str, Any]], confidentiality: Scope) -> None:
    """1.6 migrate structured: ``includeSensitiveInformation`` must agree with the scope.

    ``conf/N`` (or no ``conf/*``) may not ask for sensitive information, and ``conf/R`` may
    not decline it: the 1.6.0 pack's StructuredMigrate.feature expects 400 for
    ``includeSensitiveInformation`` true with "Normal confidentiality" and for false with
    "Sensitive confidentiality" ("... where JWT scope is incorrect expect Fail") [MIG][ERR].
    The parameter is 1..1 and a JSON boolean: a second copy, or a value an application
    could read as truthy (``"false"``), is 422 INVALID_RESOURCE. A missing one is the
    application's (422 INVALID_PARAMETER).
    """
    candidates: list[dict[str, Any]] = []
    for p in parameters:
        if p.get("name") == "includeSensitiveInformation":
            candidates.append(p)
        parts = p.get("part")
        if isinstance(parts, list):
            candidates.extend(
                q
                for q in parts
                if isinstance(q, dict) and q.get("name") == "includeSensitiveInformation"
            )
    if not candidates:
        return
    if len(candidates) > 1:
        raise Rejection(
            "includeSensitiveInformation appears more than once",
            status=422,
            spine=SpineCode.INVALID_RESOURCE,
        )
    value = candidates[0].get("valueBoolean")
    if type(value) is not bool:
        raise Rejection(
            "includeSensitiveInformation has no boolean valueBoolean",
            status=422,
            spine=SpineCode.INVALID_RESOURCE,
        )
    if value and confidentiality is Scope.CONF_NORMAL:
        raise Rejection(
            "conf/N scope cannot ask for sensitive information",
            spine=SpineCode.CONFLICTING_VALUES,
        )
    if not value and confidentiality is Scope.CONF_RESTRICTED:
        raise Rejection(
            "conf/R scope must ask for sensitive information (includeSensitiveInformation)",
            spine=SpineCode.CONFLICTING_VALUES,
        )
