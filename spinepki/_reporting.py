"""What the scanner's and the security test's reports share: looking at their checks."""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar


class _Check(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def passed(self) -> bool | None: ...


C = TypeVar("C", bound=_Check)


class CheckedReport(Generic[C]):
    """Mixin for a frozen report dataclass with a ``checks`` tuple (slots-compatible)."""

    __slots__ = ()
    checks: tuple[C, ...]

    @property
    def failed(self) -> tuple[C, ...]:
        """The checks that failed."""
        return tuple(c for c in self.checks if c.passed is False)

    @property
    def undetermined(self) -> tuple[C, ...]:
        """The checks that could not be determined."""
        return tuple(c for c in self.checks if c.passed is None)

    def check(self, check_id: str) -> C:
        """The check with ``check_id``.

        Raises:
            KeyError: no such check.
        """
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)
