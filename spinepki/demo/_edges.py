"""Real servers on 127.0.0.1 for the demo's deployment shapes and the tests.

nginx, Apache httpd and HAProxy run as child processes with their own files under a
directory the caller gives, on free loopback ports, stopped when the ``with`` block
ends. ASGI applications (the in-process middleware, the gated applications behind Apache
and HAProxy, the plain application behind nginx) are served by anycorn in one background
event loop. Waiting is always polling with a deadline; every process is stopped by the
id it was started with.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from spinepki.errors import ConfigurationError

__all__ = [
    "APACHE_MODULES_DIR",
    "AsgiHost",
    "apache_main_conf",
    "find_server",
    "free_port",
    "nginx_main_conf",
    "run_apache",
    "run_haproxy",
    "run_nginx",
    "run_process",
    "stop_process",
    "wait_for_port",
]

_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")
_PACKAGES = {"nginx": "nginx", "apache2": "apache2", "haproxy": "haproxy"}
#: Debian's modules directory (apache2 2.4); the export needs these modules.
APACHE_MODULES_DIR = "/usr/lib/apache2/modules"
_APACHE_MODULES = (
    "mpm_event",
    "authz_core",
    "ssl",
    "socache_shmcb",
    "headers",
    "proxy",
    "proxy_http",
    "rewrite",
)


def find_server(name: str) -> str:
    """The path of the ``nginx``, ``apache2`` or ``haproxy`` binary.

    Raises:
        ConfigurationError: it is not installed (names the Debian package).
    """
    found = shutil.which(name) or next(
        (f"{d}/{name}" for d in _SBIN if os.access(f"{d}/{name}", os.X_OK)), None
    )
    if found is None:
        raise ConfigurationError(
            f"{name} is not installed (Debian: apt-get install {_PACKAGES.get(name, name)})",
            source=name,
        )
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, *, deadline_s: float = 15.0, proc: subprocess.Popen[Any] | None = None
) -> None:
    """Poll until 127.0.0.1:port accepts a TCP connection.

    Raises:
        RuntimeError: ``proc`` exited first.
        TimeoutError: nothing listens by the deadline.
    """
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {deadline_s} s")


def stop_process(
    proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 10.0
) -> None:
    """Stop a child we started: ``sig``, then SIGKILL after ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


@contextlib.contextmanager
def run_process(
    argv: Sequence[str],
    *,
    ports: Sequence[int],
    log: Path,
    stop_signal: int = signal.SIGTERM,
    cwd: Path | None = None,
    deadline_s: float = 30.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` as a child until the block ends, once every port in ``ports`` listens.

    Raises:
        RuntimeError: it exited or did not listen in time (with the end of its log).
    """
    with open(log, "wb") as out:
        # The argv is built here from installed binaries and files we wrote, never input.
        proc = subprocess.Popen(  # noqa: S603
            list(argv), stdout=out, stderr=subprocess.STDOUT, cwd=cwd, stdin=subprocess.DEVNULL
        )
        try:
            try:
                for port in ports:
                    wait_for_port(port, proc=proc, deadline_s=deadline_s)
            except (RuntimeError, TimeoutError) as exc:
                out.flush()
                text = log.read_text(errors="replace")
                raise RuntimeError(f"{argv[0]} did not start: {exc}\n{text[-3000:]}") from None
            yield proc
        finally:
            stop_process(proc, stop_signal)


# -- nginx ---------------------------------------------------------------------------

_NGINX_MAIN = """\
# Minimal nginx.conf wrapper: foreground, own prefix, loopback only.
daemon off;
master_process on;
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log {level};
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {prefix}/spinepki.conf;
}}
"""


def nginx_main_conf(prefix: Path, *, workers: int = 1, level: str = "info") -> str:
    """The ``nginx.conf`` that includes an exported ``spinepki.conf`` from ``prefix``."""
    return _NGINX_MAIN.format(prefix=prefix, workers=workers, level=level)


@contextlib.contextmanager
def run_nginx(binary: str, prefix: Path, server_block: str, port: int) -> Iterator[int]:
    """nginx (``daemon off``) with ``server_block`` as its ``spinepki.conf``; yields ``port``."""
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    (prefix / "spinepki.conf").write_text(server_block)
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_main_conf(prefix))
    argv = [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    # SIGQUIT: graceful shutdown (SIGKILL after the timeout).
    with run_process(argv, ports=[port], log=prefix / "stderr.log", stop_signal=signal.SIGQUIT):
        yield port


# -- Apache httpd ----------------------------------------------------------------------


def apache_main_conf(prefix: Path, exports: Sequence[str]) -> Path:
    """Write an ``httpd.conf`` under ``prefix`` that includes every export in ``exports``.

    Loads the modules the export needs from Debian's directory; workers run as ``nobody``
    when started as root (httpd refuses to serve as root). Returns the file's path.
    """
    prefix.mkdir(parents=True, exist_ok=True)
    lines = [
        f"ServerRoot {prefix}",
        f"PidFile {prefix}/httpd.pid",
        f"ErrorLog {prefix}/error.log",
        "ServerName localhost",
        f"DefaultRuntimeDir {prefix}",
    ]
    if os.geteuid() == 0:
        lines += ["User nobody", "Group nogroup"]
    lines += [f"LoadModule {m}_module {APACHE_MODULES_DIR}/mod_{m}.so" for m in _APACHE_MODULES]
    for i, export in enumerate(exports):
        (prefix / f"spinepki-{i}.conf").write_text(export)
        lines.append(f"Include {prefix}/spinepki-{i}.conf")
    conf = prefix / "httpd.conf"
    conf.write_text("\n".join([*lines, ""]))
    return conf


@contextlib.contextmanager
def run_apache(
    binary: str, prefix: Path, exports: Sequence[str], ports: Sequence[int]
) -> Iterator[None]:
    """httpd in the foreground with every export in ``exports`` included
    (:func:`apache_main_conf`)."""
    argv = [binary, "-f", str(apache_main_conf(prefix, exports)), "-DFOREGROUND"]
    # SIGTERM stops httpd at once (SIGWINCH would wait for every connection).
    with run_process(argv, ports=ports, log=prefix / "stderr.log"):
        yield


# -- HAProxy -----------------------------------------------------------------------------


@contextlib.contextmanager
def run_haproxy(binary: str, prefix: Path, config: str, port: int) -> Iterator[int]:
    """HAProxy in the foreground (``-db``) with ``config``; yields ``port``."""
    prefix.mkdir(parents=True, exist_ok=True)
    cfg = prefix / "haproxy.cfg"
    cfg.write_text(config)
    with run_process([binary, "-db", "-f", str(cfg)], ports=[port], log=prefix / "stderr.log"):
        yield port


# -- ASGI applications ----------------------------------------------------------------


def _refused_handshake(record: logging.LogRecord) -> bool:
    """Drop anyio's record of a handshake that OpenSSL refused (keep anything else)."""
    error = record.exc_info[1] if record.exc_info else None
    return not isinstance(error, ssl.SSLError | ConnectionError | EOFError)


class AsgiHost:
    """anycorn servers for several ASGI applications in one background event loop.

    ``serve(app)`` binds 127.0.0.1 on a free port (TLS with ``ssl_context``) and returns
    the address; leaving the ``with`` block stops them all.

    Raises:
        ConfigurationError: anycorn is not installed (``pip install 'spinepki[provider]'``).
    """

    def __init__(self) -> None:
        try:
            import anycorn  # noqa: F401, PLC0415 - optional dependency
        except ImportError:
            raise ConfigurationError(
                "serving ASGI applications needs anycorn: pip install 'spinepki[provider]'",
                source="anycorn",
            ) from None
        self._stack = contextlib.ExitStack()
        self._portal: Any = None
        self._stops: list[tuple[Any, Any]] = []

    def __enter__(self) -> AsgiHost:
        import anyio.from_thread  # noqa: PLC0415 - present with anycorn

        # anyio logs every refused handshake at ERROR with a traceback; refusing the
        # rogues' handshakes is what these servers are for.
        tls_log = logging.getLogger("anyio.streams.tls")
        tls_log.addFilter(_refused_handshake)
        self._stack.callback(tls_log.removeFilter, _refused_handshake)
        self._portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())
        return self

    def serve(self, app: Any, ssl_context: ssl.SSLContext | None = None) -> tuple[str, int]:
        """Serve ``app`` until the block ends; returns its (host, port)."""
        import anycorn  # noqa: PLC0415
        import anyio  # noqa: PLC0415

        class _Config(anycorn.Config):
            # anycorn builds its own context from files; hand it spinepki's instead.
            def create_ssl_context(self) -> ssl.SSLContext | None:
                return ssl_context

            @property
            def ssl_enabled(self) -> bool:
                return ssl_context is not None

        config = _Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None  # access logs record query strings (NHS numbers)
        config.errorlog = None
        portal = self._portal
        stop = portal.call(anyio.Event)
        future, binds = portal.start_task(
            partial(anycorn.serve, app, config, shutdown_trigger=stop.wait)
        )
        self._stops.append((stop, future))
        host, _, port = str(binds[0]).rpartition(":")
        return host.rpartition("/")[2], int(port)

    def __exit__(self, *exc: object) -> None:
        try:
            for stop, future in reversed(self._stops):
                self._portal.call(stop.set)
                with contextlib.suppress(Exception):
                    future.result(timeout=10)
        finally:
            self._stack.close()
