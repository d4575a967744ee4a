"""Pure judgements over responses: refused or served, leaks, banners, no-store.

Kept apart from the network code so each rule is testable on its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from spinepki.securitytest._http import Response

__all__ = [
    "Verdict",
    "banner",
    "combine",
    "expect_refusal",
    "is_operation_outcome",
    "leaks",
    "no_store",
    "resource_type",
]

Verdict = tuple[bool | None, str]
"""(passed, note): True passed, False failed, None undetermined."""

# What an error response must never show: stack traces, exception class names, paths.
_LEAKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Traceback \(most recent call last\)"), "a Python traceback"),
    (re.compile(r'File "[^"\r\n]+", line \d+'), "a Python stack frame"),
    (re.compile(r"\bat [\w$.]+\([\w$]+\.(?:java|kt|scala|groovy):\d+\)"), "a Java stack frame"),
    (re.compile(r"\bat [\w.`<>]+\([^)\r\n]*\) in [^\r\n]+:line \d+"), "a .NET stack frame"),
    (re.compile(r"\b[A-Z][A-Za-z0-9]+(?:Exception|Error)\b"), "an exception class name"),
    (
        re.compile(r"(?:/usr/|/home/|/opt/|/var/|/srv/|/app/|site-packages|[A-Za-z]:\\\\)"),
        "a file path",
    ),
    (re.compile(r"\b[\w-]+\.(?:py|java|php|rb|cs|go|js):\d+\b"), "a source file and line"),
)
_BANNER_HEADERS = ("x-powered-by", "x-aspnet-version", "x-aspnetmvc-version", "x-generator")
_VERSION = re.compile(r"\d+\.\d+|/\s*\d")
_BODY_BANNER = re.compile(
    r"\b(?:Apache|nginx|Jetty|Tomcat|Microsoft-IIS|Kestrel|gunicorn|uvicorn|Werkzeug|"
    r"hypercorn|anycorn|Express|PHP|Python|OpenSSL)[/ ]v?\d+(?:\.\d+)+",
    re.IGNORECASE,
)


def resource_type(response: Response) -> str | None:
    """The ``resourceType`` of a JSON body, or None."""
    try:
        value = json.loads(response.body)
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("resourceType"), str):
        return str(value["resourceType"])
    return None


def is_operation_outcome(response: Response) -> bool:
    """True when the body is a FHIR OperationOutcome."""
    return resource_type(response) == "OperationOutcome"


def expect_refusal(response: Response, *, gp_connect_400: bool = False) -> Verdict:
    """A request that must be refused: 4xx (or a closed connection), never 2xx or 5xx.

    With ``gp_connect_400`` only ``400`` with an OperationOutcome passes [ERR].
    A redirect serves nothing and passes; a timeout or a failed connect is undetermined.
    """
    if response.outcome == "closed":
        if gp_connect_400:
            return False, "closed without the 400 OperationOutcome"
        return True, "connection closed"
    if not response.answered or response.status is None:
        return None, response.error or response.outcome
    status = response.status
    if status >= 500:
        return False, f"{status} (a server error)"
    if 400 <= status < 500:
        if gp_connect_400 and (status != 400 or not is_operation_outcome(response)):
            return False, f"{status} without the 400 OperationOutcome GP Connect requires"
        return True, str(status)
    if 300 <= status < 400:
        if gp_connect_400:
            return False, f"{status} redirect instead of 400"
        return True, f"{status} redirect (nothing served)"
    return False, f"served {status}"


def combine(verdicts: Iterable[tuple[str, Verdict]]) -> Verdict:
    """One verdict from named ones: any failure fails, any unknown is unknown."""
    items = list(verdicts)
    failed = [f"{name}: {note}" for name, (ok, note) in items if ok is False]
    unknown = [f"{name}: {note}" for name, (ok, note) in items if ok is None]
    if failed:
        return False, f"{len(failed)} of {len(items)} not refused as required — " + "; ".join(
            failed
        )
    if unknown:
        return None, f"{len(unknown)} of {len(items)} got no verdict — " + "; ".join(unknown)
    notes: dict[str, int] = {}
    for _, (_, note) in items:
        notes[note] = notes.get(note, 0) + 1
    summary = "; ".join(f"{note} x{n}" if n > 1 else note for note, n in notes.items())
    if len(items) == 1:
        return True, summary
    return True, f"all {len(items)} handled as required ({summary})"


def leaks(response: Response) -> list[str]:
    """What an error response shows that it must not (empty: nothing)."""
    text = response.body.decode("iso-8859-1")
    return [what for pattern, what in _LEAKS if pattern.search(text)]


def banner(response: Response) -> list[str]:
    """Product/version banners in the response (empty: none)."""
    found: list[str] = []
    server = response.header("Server")
    if server is not None and _VERSION.search(server):
        found.append(f"Server: {server}")
    for name, value in response.headers:
        if name.lower() in _BANNER_HEADERS:
            found.append(f"{name}: {value}")
    if response.status is not None and response.status >= 400:
        m = _BODY_BANNER.search(response.body.decode("iso-8859-1"))
        if m:
            found.append(f"error page names {m.group(0)!r}")
    return found


def no_store(response: Response) -> bool:
    """True when the response's Cache-Control includes ``no-store``."""
    value = response.header("Cache-Control")
    return value is not None and "no-store" in value.lower()
