"""``requested_scope`` parsing and the scope-versus-interaction rule [SEC]."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Scope", "ScopeError", "ScopeRequest", "check_scope", "parse_scope"]


class Scope(enum.Enum):
    """Every ``requested_scope`` token GP Connect defines [JWT][SEC]."""

    PATIENT_READ = "patient/*.read"
    PATIENT_WRITE = "patient/*.write"
    ORGANIZATION_READ = "organization/*.read"
    ORGANIZATION_WRITE = "organization/*.write"
    CONF_NORMAL = "conf/N"
    """1.6: normal confidentiality; assumed when no ``conf/*`` token is sent."""
    CONF_RESTRICTED = "conf/R"
    """1.6: restricted (sensitive) information, only for GP2GP-style migration."""

    @property
    def is_base(self) -> bool:
        """Whether this is one of the four patient/organization scopes."""
        return self not in _CONF


_CONF = frozenset({Scope.CONF_NORMAL, Scope.CONF_RESTRICTED})
_BY_VALUE = {s.value: s for s in Scope}
# Ten tokens is far beyond any legitimate list (one base scope and one conf scope).
_MAX_TOKENS = 10


class ScopeError(Exception):
    """A ``requested_scope`` that is malformed or does not suit the interaction.

    Attributes:
        reason: a fixed description that never echoes the claim's value.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class ScopeRequest:
    """A parsed ``requested_scope``."""

    base: Scope
    """The single patient/organization scope."""
    confidentiality: Scope
    """``conf/N`` or ``conf/R``; ``conf/N`` when the claim named none [JWT]."""
    explicit_confidentiality: bool
    """Whether the claim named a ``conf/*`` token itself."""


def parse_scope(value: str, *, allow_confidentiality: bool) -> ScopeRequest:
    """Parse a ``requested_scope`` claim value.

    One base scope, optionally followed by one ``conf/*`` token, separated by single
    spaces (1.6 allows a space-separated list). Anything else is refused: unknown
    tokens, two base scopes (which one would apply?), repeats, odd whitespace.

    Args:
        value: the claim value.
        allow_confidentiality: whether ``conf/*`` tokens may appear at all (1.x only).

    Raises:
        ScopeError: the value is not a usable scope.
    """
    tokens = value.split(" ")
    if len(tokens) > _MAX_TOKENS:
        raise ScopeError("requested_scope has too many values")
    base: Scope | None = None
    conf: Scope | None = None
    for token in tokens:
        scope = _BY_VALUE.get(token)
        if scope is None:
            raise ScopeError("requested_scope holds an unknown scope")
        # Identity tests: a set lookup would hash the Enum member in Python code.
        if scope is Scope.CONF_NORMAL or scope is Scope.CONF_RESTRICTED:
            if not allow_confidentiality:
                raise ScopeError("requested_scope holds a conf/* scope this generation lacks")
            if conf is not None:
                raise ScopeError("requested_scope holds more than one conf/* scope")
            conf = scope
        else:
            if base is not None:
                raise ScopeError("requested_scope holds more than one resource scope")
            base = scope
    if base is None:
        raise ScopeError("requested_scope holds no patient/organization scope")
    return ScopeRequest(
        base=base,
        confidentiality=conf or Scope.CONF_NORMAL,
        explicit_confidentiality=conf is not None,
    )


def check_scope(request: ScopeRequest, *, required: Scope, restricted_allowed: bool) -> None:
    """Check a parsed scope against what the interaction needs.

    The base scope must be exactly the interaction's (read vs write, patient vs
    organization: the test pack refuses ``patient/*.write`` on a read and vice versa
    [PT-160]); ``conf/R`` only where migration allows it [JWT].

    Raises:
        ScopeError: the scope does not suit the interaction.
    """
    if request.base is not required:
        raise ScopeError(f"requested_scope does not suit this interaction (needs {required.value})")
    if request.confidentiality is Scope.CONF_RESTRICTED and not restricted_allowed:
        raise ScopeError("conf/R is only allowed on migration interactions")
