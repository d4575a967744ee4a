"""spinepki gate serve's WSGI app and settings, in-process (nginx end to end: test_nginx)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from spinepki.errors import ConfigurationError
from spinepki.gate_service import (
    GateService,
    GateServiceConfig,
    GateSettings,
    gunicorn_options,
    load_settings,
)
from spinepki.testpki import TestPKI
from tests.serverconfig import _helpers as h


@pytest.fixture(scope="module")
def files(spine_pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> h.PKIFiles:
    return h.write_pki_files(spine_pki, tmp_path_factory.mktemp("gate-pki"))


@pytest.fixture(scope="module")
def settings(files: h.PKIFiles, spine_pki: TestPKI) -> GateSettings:
    return GateSettings(
        provider_asid=h.ASID,
        service_roots={"foundations": [h.FOUNDATIONS]},
        trust_bundle=(str(files.bundle),),
        ssp_fqdns=(spine_pki.ssp_fqdn,),
        revocation="offline",
        crls=tuple(str(p) for p in files.crls),
        client_auth="http-496",
    )


@pytest.fixture(scope="module")
def service(settings: GateSettings) -> GateService:
    return GateService(settings.build())


def _call(
    app: GateService, path: str, environ: dict[str, Any]
) -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen["status"], seen["headers"] = status, dict(headers)
        return lambda data: None

    env = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "REMOTE_ADDR": "127.0.0.1", **environ}
    body: Iterable[bytes] = app(env, start_response)
    return seen["status"], seen["headers"], b"".join(body)


def _environ(pki: TestPKI, cert: str | None = "ssp", **headers: str) -> dict[str, Any]:
    env: dict[str, Any] = {
        "HTTP_X_ORIGINAL_METHOD": "GET",
        "HTTP_X_ORIGINAL_URI": h.METADATA_PATH,
    }
    if cert:
        env["HTTP_X_SSL_CLIENT_CERT"] = quote(pki.leaf(cert).cert_pem.decode(), safe="")
    merged = {**h.ssp_headers(), **headers}
    env.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in merged.items()})
    return env


class TestCheck:
    def test_allowed_is_204_no_store(self, service: GateService, spine_pki: TestPKI) -> None:
        """A valid SSP request: 204 with Cache-Control no-store."""
        status, headers, body = _call(service, "/check", _environ(spine_pki))
        assert status.startswith("204")
        assert headers["Cache-Control"] == "no-store"
        assert body == b""

    def test_refusal_is_403_with_real_status(
        self, service: GateService, spine_pki: TestPKI
    ) -> None:
        """A refusal: 403 (the only status auth_request passes on) plus the real status and
        the decision time for /explain."""
        status, headers, _ = _call(service, "/check", _environ(spine_pki, **{"Ssp-To": "1"}))
        assert status.startswith("403")
        assert headers["X-Spinepki-Status"] == "400"
        assert float(headers["X-Spinepki-Decision-Time"]) > 0

    def test_no_certificate_is_496(self, service: GateService, spine_pki: TestPKI) -> None:
        """No certificate header: the explain answer is 496 ACCESS_DENIED_SSL."""
        status, headers, body = _call(service, "/explain", _environ(spine_pki, cert=None))
        assert status.startswith("496")
        assert headers["Content-Type"] == "application/fhir+json"
        assert json.loads(body)["issue"][0]["details"]["coding"][0]["code"] == "ACCESS_DENIED_SSL"

    def test_garbage_certificate_header_is_495(
        self, service: GateService, spine_pki: TestPKI
    ) -> None:
        """A certificate header that does not parse: 495."""
        env = _environ(spine_pki)
        env["HTTP_X_SSL_CLIENT_CERT"] = (
            "-----BEGIN%20CERTIFICATE-----%0A%21%21%0A-----END%20CERTIFICATE-----"
        )
        status, _, _ = _call(service, "/explain", env)
        assert status.startswith("495")

    @pytest.mark.parametrize("cert", ["revoked", "wrong-fqdn", "foreign"])
    def test_validator_refusals_are_495(
        self, service: GateService, spine_pki: TestPKI, cert: str
    ) -> None:
        """ClientCertValidator is the certificate checker: revoked, wrong FQDN, foreign -> 495."""
        status, _, body = _call(service, "/explain", _environ(spine_pki, cert=cert))
        assert status.startswith("495"), body

    def test_path_is_percent_decoded_and_query_kept(
        self, service: GateService, spine_pki: TestPKI
    ) -> None:
        """X-Original-URI is split into a percent-decoded path and the raw query."""
        env = _environ(spine_pki, **{"Ssp-InteractionID": h.READ_PATIENT})
        env["HTTP_AUTHORIZATION"] = f"Bearer {h.token(scope='patient/*.read')}"
        env["HTTP_X_ORIGINAL_URI"] = f"{h.FOUNDATIONS}/Patient/%31?_format=json"
        status, _, _ = _call(service, "/check", env)
        assert status.startswith("204")

    def test_explain_pins_the_decision_time(
        self, settings: GateSettings, spine_pki: TestPKI
    ) -> None:
        """/explain decides at the time /check reported (within 60 s), so a token that expires
        between the two calls is still explained, not allowed."""
        clock = [datetime.now(UTC)]
        app = GateService(settings.build(), clock=lambda: clock[0])
        env = _environ(spine_pki, **{"Ssp-To": "1"})
        _, headers, _ = _call(app, "/check", env)
        clock[0] += timedelta(seconds=30)
        env["HTTP_X_SPINEPKI_DECISION_TIME"] = headers["X-Spinepki-Decision-Time"]
        status, _, _ = _call(app, "/explain", env)
        assert status.startswith("400")

    def test_explain_never_allows(self, service: GateService, spine_pki: TestPKI) -> None:
        """/explain for a request the gate allows fails closed with 500, never 2xx."""
        status, headers, body = _call(service, "/explain", _environ(spine_pki))
        assert status.startswith("500")
        assert headers["Cache-Control"] == "no-store"
        assert b"INTERNAL_SERVER_ERROR" in body

    def test_missing_proxy_headers_fail_closed(
        self, service: GateService, spine_pki: TestPKI
    ) -> None:
        """Without X-Original-Method/URI (a broken nginx config) the answer is 500."""
        env = _environ(spine_pki)
        del env["HTTP_X_ORIGINAL_URI"]
        status, _, _ = _call(service, "/check", env)
        assert status.startswith("500")


class TestEndpoints:
    def test_untrusted_peer_is_403(self, service: GateService, spine_pki: TestPKI) -> None:
        """Only trusted proxies are served."""
        status, _, _ = _call(service, "/check", {**_environ(spine_pki), "REMOTE_ADDR": "10.1.2.3"})
        assert status.startswith("403")
        status, _, _ = _call(service, "/check", {**_environ(spine_pki), "REMOTE_ADDR": "garbage"})
        assert status.startswith("403")

    def test_healthz_and_404(self, service: GateService) -> None:
        """/healthz answers 200; anything else 404; all with no-store."""
        status, headers, _ = _call(service, "/healthz", {})
        assert status.startswith("200")
        assert headers["Cache-Control"] == "no-store"
        status, _, _ = _call(service, "/other", {})
        assert status.startswith("404")


class TestSettings:
    def test_expected_aud_from_toml(
        self, tmp_path: Path, files: h.PKIFiles, spine_pki: TestPKI
    ) -> None:
        """expected_aud (TOML or --expected-aud) reaches the gate: a token addressed to
        another provider is refused (400), one addressed to this provider allowed."""
        path = tmp_path / "gate.toml"
        path.write_text(
            f'provider_asid = "{h.ASID}"\nssp_fqdns = "{spine_pki.ssp_fqdn}"\n'
            f'trust_bundle = ["{files.bundle}"]\nrevocation = "offline"\n'
            f'crls = ["{files.crls[0]}", "{files.crls[1]}"]\n'
            'expected_aud = "https://gp.example.nhs.uk/A12345/STU3/1/gpconnect"\n'
            f'[service_roots]\nfoundations = "{h.FOUNDATIONS}"\n'
        )
        service = GateService(load_settings(path).build())
        mine = h.token(aud="https://gp.example.nhs.uk/A12345/STU3/1/gpconnect")
        status, _, _ = _call(service, "/check", _environ(spine_pki, Authorization=f"Bearer {mine}"))
        assert status.startswith("204")
        other = h.token(aud="https://another.example.nhs.uk/B1/STU3/1/gpconnect")
        status, headers, _ = _call(
            service, "/check", _environ(spine_pki, Authorization=f"Bearer {other}")
        )
        assert (status[:3], headers["X-Spinepki-Status"]) == ("403", "400")

    def test_toml_round_trip(self, tmp_path: Path, files: h.PKIFiles, spine_pki: TestPKI) -> None:
        """A TOML file holds every setting; options override it."""
        path = tmp_path / "gate.toml"
        path.write_text(
            f'provider_asid = "{h.ASID}"\nssp_fqdns = "{spine_pki.ssp_fqdn}"\n'
            f'trust_bundle = ["{files.bundle}"]\nrevocation = "offline"\n'
            f'crls = ["{files.crls[0]}", "{files.crls[1]}"]\nworkers = 3\n'
            f'[service_roots]\nfoundations = "{h.FOUNDATIONS}"\n'
        )
        settings = load_settings(path).merged(listen="127.0.0.1:9100", workers=None)
        config = settings.build()
        assert config.workers == 3
        assert config.listen.port == 9100
        assert config.gate.provider_asid == h.ASID

    @pytest.mark.parametrize(
        "text",
        [
            "nope = 1\n",
            "workers = 'x'\n",
            "ssp_fqdns = 1\n",
            "provider_asid = 1\n",
            "[service_roots]\nx = 1\n",
            "= broken",
        ],
    )
    def test_bad_toml(self, tmp_path: Path, text: str) -> None:
        """Unknown keys, wrong types and bad TOML are ConfigurationErrors naming the key."""
        path = tmp_path / "bad.toml"
        path.write_text(text)
        with pytest.raises(ConfigurationError):
            load_settings(path)
        with pytest.raises(ConfigurationError):
            load_settings(tmp_path / "missing.toml")

    @pytest.mark.parametrize(
        "change",
        [
            {"provider_asid": None},
            {"ssp_fqdns": ()},
            {"environment": "int"},
            {"revocation": "sometimes"},
            {"client_auth": "maybe"},
            {"service_roots": {"nowhere": ["/x"]}},
            {"crls": ("/does/not/exist.pem",)},
            {"trusted_proxies": ("not-an-ip",)},
            {"workers": 0},
            {"listen": "9000"},
        ],
        ids=lambda c: next(iter(c)),
    )
    def test_bad_settings(self, settings: GateSettings, change: dict[str, Any]) -> None:
        """Every unusable setting is refused when the service is built."""
        values = {n: getattr(settings, n) for n in settings.__dataclass_fields__}
        values.update(change)
        with pytest.raises(ConfigurationError):
            GateSettings(**values).build()
        with pytest.raises(ConfigurationError):
            settings.merged(nonsense=1)

    def test_gunicorn_options(self, settings: GateSettings) -> None:
        """gthread workers, keep-alive above nginx's 60 s, bounded headers, preloaded app."""
        options = gunicorn_options(settings.build())
        assert options["worker_class"] == "gthread"
        assert options["keepalive"] > 60
        assert options["preload_app"] is True
        assert options["limit_request_field_size"] >= 8192
        with pytest.raises(ConfigurationError):
            GateServiceConfig(gate=settings.build().gate, trusted_proxies=())


class TestServe:
    def test_serve_hands_gunicorn_the_app_and_options(
        self, settings: GateSettings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """serve() configures gunicorn with gunicorn_options and the GateService app."""
        from gunicorn.app.base import BaseApplication

        from spinepki.gate_service import serve

        seen: dict[str, Any] = {}

        def fake_run(self: Any) -> None:
            seen["app"] = self.load()
            seen["bind"] = self.cfg.bind
            seen["worker_class"] = self.cfg.worker_class_str

        monkeypatch.setattr(BaseApplication, "run", fake_run)
        serve(settings.build())
        assert isinstance(seen["app"], GateService)
        assert seen["bind"] == ["127.0.0.1:9000"]
        assert seen["worker_class"] == "gthread"

    def test_serve_without_gunicorn(
        self, settings: GateSettings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without gunicorn installed, serve() names the extra to install."""
        import sys

        from spinepki.gate_service import serve

        monkeypatch.setitem(sys.modules, "gunicorn.app.base", None)
        with pytest.raises(ConfigurationError, match=r"spinepki\[gate\]"):
            serve(settings.build())
