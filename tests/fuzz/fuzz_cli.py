"""Fuzz target: the command line's input files, end to end through click.

``spinepki cert show FILE``, ``spinepki cert check FILE --chain F --trust F --crl F`` with
fuzzed file contents. Invariants: exit code 0, 1 or 2 only; an error is one ``Error:``
line, never a traceback; bounded time and memory per input.

Atheris: ``python -m tests.fuzz.fuzz_cli [libFuzzer flags] [corpus]``.
"""

from __future__ import annotations

import functools
import tempfile
import traceback
import warnings
from pathlib import Path

from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from hypothesis import strategies as st
from spinepki_cli.main import cli  # type: ignore[import-not-found,unused-ignore]

from tests.fuzz import _samples as s
from tests.fuzz._helpers import atheris_main, fuzz_test

ROLES = ("cert", "chain", "trust", "crl")


@functools.cache
def _dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="spinepki-fuzz-cli-"))


@functools.cache
def _valid() -> dict[str, bytes]:
    p = s.pki()
    return {
        "cert": s.chain_pem("ssp"),
        "chain": p.sub_ca.certificate.public_bytes(serialization.Encoding.PEM),
        "trust": p.trust_store().to_pem(),
        # The Sub CA's and the root's CRLs in one PEM file: the Sub CA is checked too.
        "crl": b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in (p.crl(), p.root_crl())
        ),
    }


def _known(result: Result) -> bool:
    """F6/F6b (UnsupportedAlgorithm from a key) and F7 (ValueError from trust.py), pinned
    by the regression tests in fuzz_x509.py; tolerated so campaigns look for new ones."""
    exc = result.exception
    if isinstance(exc, UnsupportedAlgorithm | x509.InvalidVersion | x509.DuplicateExtension):
        return True  # F6, F8b, F11
    if type(exc) is ValueError and result.exc_info is not None:
        frames = traceback.extract_tb(result.exc_info[2])
        # F7 (trust.py) and F9 (cli/cert.py prints an unparseable subject).
        return frames[-1].filename.endswith(("spinepki/trust.py", "cli/cert.py"))
    return False


def _run(args: list[str]) -> None:
    with warnings.catch_warnings():
        # cryptography warns (UserWarning, deprecations) about odd but parseable fields; a
        # real run prints the warning and goes on, pytest's filterwarnings=error would not.
        warnings.simplefilter("ignore")
        result = CliRunner().invoke(cli, args)
    if _known(result):
        return
    assert result.exit_code in {0, 1, 2}, (result.exit_code, result.output)
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


def _files(contents: dict[str, bytes]) -> dict[str, str]:
    paths = {}
    for role, data in contents.items():
        path = _dir() / f"{role}.bin"
        path.write_bytes(data)
        paths[role] = str(path)
    return paths


def _check_args(f: dict[str, str]) -> list[str]:
    """``cert check`` of the files ``f`` at the samples' time, against their CRL."""
    return [
        *("cert", "check", f["cert"], "--chain", f["chain"], "--trust", f["trust"]),
        *("--crl", f["crl"], "--fqdn", s.pki().ssp_fqdn, "--at", s.NOW_DT.isoformat()),
    ]


def _check(contents: dict[str, bytes]) -> None:
    f = _files(contents)
    _run(["cert", "show", f["cert"]])
    _run(_check_args(f))


@fuzz_test(st.sampled_from(ROLES), s.MUTATIONS)
def test_one_file_mutated(role: str, changes: list[tuple[int, int, int]]) -> None:
    """Valid inputs except one file, which has bytes flipped, deleted or inserted."""
    contents = dict(_valid())
    contents[role] = s.mutate(contents[role], changes)
    _check(contents)


@fuzz_test(st.sampled_from(ROLES), st.binary(max_size=1500))
def test_one_file_random(role: str, data: bytes) -> None:
    """Valid inputs except one file, which holds random bytes."""
    _check({**_valid(), role: data})


def test_valid_inputs_exit_zero() -> None:
    """Unmutated, the check passes (so every mutation starts from a valid invocation)."""
    f = _files(_valid())
    result = CliRunner().invoke(cli, _check_args(f))
    assert result.exit_code == 0, result.output


def _unparseable_subject_leaf() -> bytes:
    """The ssp leaf (PEM) with its subject's first AttributeValue string tag (UTF8String,
    0x0C) set to 0: it loads, but reading the subject raises ValueError."""
    cert = s.pki().leaf("ssp").certificate
    der = cert.public_bytes(serialization.Encoding.DER)
    name = cert.subject.public_bytes()
    tag = der.rindex(name) + 11  # byte 11 of the Name: the first value's string tag
    assert der[tag] == 0x0C
    broken = x509.load_der_x509_certificate(der[:tag] + b"\x00" + der[tag + 1 :])
    return broken.public_bytes(serialization.Encoding.PEM)


def test_regression_cert_check_unparseable_subject() -> None:
    """Found by atheris: ``cert check`` of that leaf must exit 1 (invalid), no traceback."""
    f = _files({**_valid(), "cert": _unparseable_subject_leaf()})
    result = CliRunner().invoke(
        cli,
        [
            "cert",
            "check",
            f["cert"],
            "--chain",
            f["chain"],
            "--trust",
            f["trust"],
            "--crl",
            f["crl"],
            "--at",
            s.NOW_DT.isoformat(),
        ],
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 1, result.output


def fuzz_one_input(data: bytes) -> None:
    """Atheris: the first byte picks which file the rest replaces."""
    if data:
        _check({**_valid(), ROLES[data[0] % len(ROLES)]: data[1:]})


def _atheris_seeds() -> list[bytes]:
    return [bytes([i]) + _valid()[role] for i, role in enumerate(ROLES)]


if __name__ == "__main__":
    atheris_main(fuzz_one_input, _atheris_seeds())
