"""The shared fuzz harness: one decorator for both engines, and per-input invariants.

``fuzz_test(*strategies)`` turns a property body into:

* under ``make test`` (no ``SPINEPKI_FUZZ_SECONDS``): an ordinary hypothesis test with a
  small example budget, deterministic under the "ci" profile of ``tests/conftest.py``;
* under ``make fuzz`` (``SPINEPKI_FUZZ_SECONDS`` set): a randomised campaign that runs the
  same body in chunks of fresh examples until the module's time share is spent.

Every input runs inside :func:`bounded`: it must finish within ``MAX_SECONDS`` and its
Python allocations (tracemalloc peak) must stay below ``MAX_BYTES``. The number of inputs
run per test is counted in :data:`COUNTS` (reported by ``tests/fuzz/conftest.py``).

``atheris_main`` is the coverage-guided entry point each module calls under
``if __name__ == "__main__"``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

#: Seconds each target module's hypothesis tests share under ``make fuzz``; unset: CI mode.
ENV_SECONDS = "SPINEPKI_FUZZ_SECONDS"
FUZZ_SECONDS = float(os.environ.get(ENV_SECONDS) or 0)
FUZZ_MODE = FUZZ_SECONDS > 0
#: Examples per hypothesis test under ``make test`` (the deterministic slice).
CI_EXAMPLES = 40
#: Examples per chunk of a campaign (a fresh random seed per chunk).
CHUNK = 250
#: No single input may take longer than this (seconds, including tracemalloc's overhead).
MAX_SECONDS = 1.0
#: No single input may make Python allocate more than this at peak (bytes).
MAX_BYTES = 64 * 1024 * 1024

COUNTS: Counter[str] = Counter()
"""Inputs run per test, keyed ``module::test``."""
FAILURES: dict[str, str] = {}
"""First invariant failure per test under a campaign (the test also fails)."""

_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
FUZZ_PROFILE = settings(
    max_examples=CHUNK,
    derandomize=False,
    database=None,
    deadline=None,
    print_blob=True,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=_SUPPRESS,
)
settings.register_profile("fuzz", FUZZ_PROFILE)


class InvariantError(AssertionError):
    """An input broke a time or memory bound."""


@contextlib.contextmanager
def bounded(max_seconds: float = MAX_SECONDS, max_bytes: int = MAX_BYTES) -> Iterator[None]:
    """Fail if the block takes longer than ``max_seconds`` or allocates over ``max_bytes``.

    tracemalloc sees Python allocations only; memory held by native code (the Rust X.509
    parser, OpenSSL) is bounded by the input-size limits and by atheris' ``-rss_limit_mb``.
    """
    owner = not tracemalloc.is_tracing()
    if owner:
        tracemalloc.start()
    else:
        tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] - base
        if owner:
            tracemalloc.stop()
    if elapsed > max_seconds:
        raise InvariantError(f"one input took {elapsed:.3f} s (bound {max_seconds} s)")
    if peak > max_bytes:
        raise InvariantError(f"one input allocated {peak} bytes at peak (bound {max_bytes})")


@dataclass(frozen=True)
class Registered:
    """One fuzz test: its counted body and its strategies (the atheris runner reuses them)."""

    name: str
    body: Callable[..., None]
    strategies: tuple[st.SearchStrategy[Any], ...]


REGISTRY: dict[str, list[Registered]] = {}


def _module_share(module: str) -> float:
    return FUZZ_SECONDS / max(1, len(REGISTRY.get(module, ())))


def fuzz_test(
    *strategies: st.SearchStrategy[Any],
    ci_examples: int = CI_EXAMPLES,
    max_seconds: float = MAX_SECONDS,
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Make ``body(*drawn)`` a hypothesis test (CI) or a timed campaign (``make fuzz``).

    ``max_seconds`` is the per-input time bound (a target whose inputs are network round
    trips to a server, like ``fuzz_connection``, needs more than the default).
    """

    def decorate(body: Callable[..., None]) -> Callable[..., None]:
        module = body.__module__
        name = f"{module.rsplit('.', 1)[-1]}::{body.__name__}"

        @functools.wraps(body)
        def counted(*args: Any, **kwargs: Any) -> None:
            COUNTS[name] += 1
            with bounded(max_seconds):
                body(*args, **kwargs)

        REGISTRY.setdefault(module, []).append(Registered(name, counted, strategies))
        if not FUZZ_MODE:
            ci = settings(max_examples=ci_examples, deadline=None, suppress_health_check=_SUPPRESS)
            test: Callable[..., None] = ci(given(*strategies)(counted))
            return test

        def campaign() -> None:
            stop = time.monotonic() + _module_share(module)
            while time.monotonic() < stop:
                chunk = settings(FUZZ_PROFILE)(given(*strategies)(counted))
                try:
                    chunk()
                except BaseException as exc:
                    FAILURES.setdefault(name, f"{type(exc).__name__}: {exc}"[:2000])
                    raise

        campaign.__name__ = body.__name__
        campaign.__qualname__ = body.__qualname__
        campaign.__doc__ = body.__doc__
        campaign.__module__ = module
        return campaign

    return decorate


# -- atheris ------------------------------------------------------------------------------


def hypothesis_entry(module: str) -> Callable[[bytes], None]:
    """One bytes -> None function driving every hypothesis test of ``module`` in turn.

    The first byte picks the test; the rest is hypothesis' choice sequence, so atheris'
    coverage feedback steers the same strategies the property tests use.
    """
    entries = []
    for reg in REGISTRY[module]:
        test = settings(FUZZ_PROFILE, phases=[Phase.generate])(given(*reg.strategies)(reg.body))
        entries.append(test.hypothesis.fuzz_one_input)  # type: ignore[attr-defined]

    def one_input(data: bytes) -> None:
        if data:
            entries[data[0] % len(entries)](data[1:])

    return one_input


def atheris_main(one_input: Callable[[bytes], None], seeds: Sequence[bytes] = ()) -> None:
    """Run atheris over ``one_input`` (libFuzzer flags come from ``sys.argv``).

    ``--write-seeds DIR`` writes ``seeds`` into DIR (the corpus) and exits.
    """
    if len(sys.argv) == 3 and sys.argv[1] == "--write-seeds":
        corpus = Path(sys.argv[2])
        corpus.mkdir(parents=True, exist_ok=True)
        for i, seed in enumerate(seeds):
            (corpus / f"seed-{i:03d}").write_bytes(seed)
        return
    # Optional (installed by `make fuzz` where a wheel exists) and untyped.
    import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

    atheris.instrument_all()
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
