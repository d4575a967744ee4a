"""The demo and the local integration environment behind ``spinepki demo`` and ``spinepki env``.

This package sits above every other part of the library: it starts reference providers
(:mod:`spinepki.provider`), the SSP simulator (:mod:`spinepki.ssp`), the exported server
configurations (:mod:`spinepki.serverconfig`) and the test PKI's responder, and plays
scripted callers against them. Nothing else in :mod:`spinepki` imports it, so the test PKI
(:mod:`spinepki.testpki`) stays a leaf that any project can use on its own.

It is not covered by the stability policy (docs/stability.md): the names below are what
the command line and the project's own tests use, and may change in any release.
"""

from __future__ import annotations

from spinepki.demo._callers import Caller, default_callers
from spinepki.demo._demo import DemoEnvironment, demo_environment
from spinepki.demo._environment import (
    Environment,
    default_directory,
    directory_toml,
    run_environment,
)
from spinepki.demo._parity import (
    DIFFERENCES,
    DemoOutcome,
    ParityMatrix,
    Shape,
    differences_markdown,
)
from spinepki.demo._ssp_demo import SSPDemo, SSPOutcome, ssp_demo

__all__ = [
    "DIFFERENCES",
    "Caller",
    "DemoEnvironment",
    "DemoOutcome",
    "Environment",
    "ParityMatrix",
    "SSPDemo",
    "SSPOutcome",
    "Shape",
    "default_callers",
    "default_directory",
    "demo_environment",
    "differences_markdown",
    "directory_toml",
    "run_environment",
    "ssp_demo",
]
