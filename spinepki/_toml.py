"""Reading a TOML configuration file strictly: bounded, every failure a typed error, and
every key read or refused.

Shared by the reference provider's configuration and the SSP simulator's directory
(which passes its own error class). Private and neutral, at the bottom of the layers
(docs/architecture.md), so neither application reaches into the other's private modules.
"""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from spinepki.errors import ConfigurationError, ProviderConfigError

__all__ = ["ConfigErrorFactory", "Table", "read_toml"]

E = TypeVar("E", bound=enum.Enum)
V = TypeVar("V")

#: Builds the error for a dotted key and a reason (``ProviderConfigError`` or a sibling).
ConfigErrorFactory = Callable[[str, str], ConfigurationError]


def read_toml(
    file: Path, error: ConfigErrorFactory = ProviderConfigError, *, max_bytes: int | None = None
) -> dict[str, Any]:
    """Parse a TOML configuration file; every failure is ``error("file", reason)``.

    ``max_bytes`` bounds what is read (a larger file is refused before parsing).
    """
    try:
        with file.open("rb") as handle:
            raw = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    except OSError as exc:
        raise error("file", f"cannot read {file}: {exc.strerror or exc}") from exc
    if max_bytes is not None and len(raw) > max_bytes:
        raise error("file", f"{file} is larger than {max_bytes} bytes")
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise error("file", f"{file} is not valid TOML: {exc}") from exc
    except RecursionError:  # Python 3.11's tomllib has no nesting limit (found by fuzzing)
        raise error("file", f"{file} nests arrays or tables too deeply") from None


class Table:
    """A TOML table read key by key; :meth:`done` refuses whatever was not read.

    Unknown keys are errors, not warnings: a misspelt ``max_conections`` would otherwise
    silently leave the default in force. Errors are ``error(dotted key, reason)``
    (``ProviderConfigError`` here; the SSP simulator's configuration passes its own).
    """

    __slots__ = ("_data", "_error", "_prefix", "_seen")

    def __init__(
        self, data: Mapping[str, Any], prefix: str, error: ConfigErrorFactory = ProviderConfigError
    ) -> None:
        self._data = data
        self._prefix = prefix
        self._error = error
        self._seen: set[str] = set()

    def _key(self, name: str) -> str:
        return f"{self._prefix}{name}"

    def remaining(self) -> list[str]:
        return [k for k in self._data if k not in self._seen]

    def take(self, name: str) -> Any:
        self._seen.add(name)
        return self._data[name]

    def table(self, name: str, *, required: bool = True) -> Any:
        if name not in self._data:
            if required:
                raise self._error(self._key(name), "missing table")
            return None
        value = self.take(name)
        if not isinstance(value, Mapping):
            raise self._error(self._key(name), "must be a table")
        return Table(value, f"{self._key(name)}.", self._error)

    def string(self, name: str, default: str | None = None) -> str:
        if name not in self._data:
            if default is None:
                raise self._error(self._key(name), "missing key")
            return default
        value = self.take(name)
        if not isinstance(value, str) or not value.strip():
            raise self._error(self._key(name), "must be a non-empty string")
        return value

    def optional_string(self, name: str) -> str | None:
        return self.string(name) if name in self._data else None

    def strings(self, name: str, *, required: bool = True) -> tuple[str, ...]:
        if name not in self._data:
            if required:
                raise self._error(self._key(name), "missing key")
            return ()
        value = self.take(name)
        if isinstance(value, str):
            value = [value]
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, str) and v.strip() for v in value)
        ):
            raise self._error(self._key(name), "must be a non-empty list of strings")
        return tuple(value)

    def integer(self, name: str, default: int) -> int:
        if name not in self._data:
            return default
        value = self.take(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._error(self._key(name), "must be an integer")
        return value

    def number(self, name: str, default: float) -> float:
        if name not in self._data:
            return default
        value = self.take(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._error(self._key(name), "must be a number")
        return float(value)

    def enum(self, name: str, kind: Any, default: Any) -> Any:
        if name not in self._data:
            return default
        value = self.take(name)
        try:
            return kind(value)
        except ValueError:
            known = ", ".join(str(m.value) for m in kind)
            raise self._error(self._key(name), f"{value!r} is not one of: {known}") from None

    def keyed_by(self, kind: type[E], value: Callable[[Table, str], V], *, what: str) -> dict[E, V]:
        """This whole table as a mapping whose keys are members of the enum ``kind``.

        Each value is read by ``value(self, key)``; a key that is no member is an error
        naming the ``what`` and the known values. Every key is read, so the table is done.
        """
        read: dict[E, V] = {}
        for name in self.remaining():
            try:
                member = kind(name)
            except ValueError:
                known = ", ".join(str(m.value) for m in kind)
                raise self._error(
                    self._key(name), f"unknown {what}; expected one of: {known}"
                ) from None
            read[member] = value(self, name)
        self.done()
        return read

    def done(self) -> None:
        extra = self.remaining()
        if extra:
            raise self._error(self._key(extra[0]), "unknown key")
