"""A small thread-safe LRU of validated results, each with a time window."""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from spinepki.validation._model import ValidationResult

__all__ = ["ResultCache"]


@dataclass(frozen=True, slots=True)
class _Entry:
    result: ValidationResult
    """The stored result, already marked ``from_cache=True``."""
    intermediates: Hashable
    """The intermediates the result was built with (compared on a hit)."""
    valid_from: dt.datetime
    """The validation time: earlier times are not covered (evidence is about later)."""
    valid_until: dt.datetime
    """Exclusive end: min(notAfter on the path, revocation nextUpdate, validation + TTL)."""
    generation: int = 0
    """The revocation checker's generation the result was built in (a hit needs the same)."""


class ResultCache:
    """Results keyed by the leaf as given (DER bytes or certificate object).

    One lock around an ``OrderedDict``: a hit is a hash, a comparison and a move, which
    keeps a repeat connection in the microseconds; the bound evicts least recently used.
    """

    __slots__ = ("_entries", "_lock", "_size")

    def __init__(self, size: int) -> None:
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(
        self, key: Hashable, intermediates: Hashable, at: dt.datetime, generation: int = 0
    ) -> ValidationResult | None:
        """The cached result when ``at`` is in its window, the intermediates match and the
        revocation evidence has not changed since (``generation``)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if (
                entry.intermediates != intermediates
                or not entry.valid_from <= at < entry.valid_until
                or entry.generation != generation
            ):
                if at >= entry.valid_until or entry.generation != generation:
                    del self._entries[key]  # stale for good: do not keep it around
                return None
            self._entries.move_to_end(key)
            return entry.result

    def put(
        self,
        key: Hashable,
        intermediates: Hashable,
        result: ValidationResult,
        *,
        valid_from: dt.datetime,
        valid_until: dt.datetime,
        generation: int = 0,
    ) -> None:
        """Store ``result`` (already ``from_cache=True``) for ``[valid_from, valid_until)``,
        built in the revocation checker's ``generation``."""
        if valid_until <= valid_from:
            return
        entry = _Entry(result, intermediates, valid_from, valid_until, generation)
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every result."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
