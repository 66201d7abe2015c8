"""https:// (browsers give a page on another machine the microphone only over TLS): a server
started with a self-signed certificate answers over https with that certificate, verified by its
own PEM, and refuses plain http; the pair is kept in the posetalk cache and reused, made again
only for new names; a missing, unreadable, malformed or mismatched certificate or key, or half of
the pair, is a ServerConfigError that says which, from Python and from `posetalk serve`."""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
from pathlib import Path

import aiohttp
import pytest
from posetalk.streaming import tls
from posetalk.streaming.errors import ServerConfigError
from posetalk.streaming.server import ServerConfig
from posetalk.tests.streaming_fixtures import server_thread


async def get_status(url: str, ssl_option: ssl.SSLContext | bool) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.get(url, ssl=ssl_option) as resp:
        return resp.status, await resp.json()


def test_a_self_signed_server_answers_https_and_only_https(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSETALK_CACHE", str(tmp_path))
    with server_thread(self_signed=True) as t:
        assert t.server is not None and t.server.tls is not None
        assert t.url.startswith("https://127.0.0.1:")
        cert = tmp_path / "tls" / "self-signed.crt"
        assert t.server.tls.cert == cert
        trusted = ssl.create_default_context(cafile=str(cert))  # verifies the chain and the name 127.0.0.1
        status, health = asyncio.run(get_status(t.base + "healthz", trusted))
        assert status == 200 and health["status"] == "ok"
        with pytest.raises(aiohttp.ClientError):  # plain http to the TLS port: no answer
            asyncio.run(get_status(t.base.replace("https://", "http://") + "healthz", False))
        with pytest.raises(aiohttp.ClientConnectorCertificateError):  # an untrusted certificate is refused
            asyncio.run(get_status(t.base + "healthz", ssl.create_default_context()))
        # The fingerprint printed is the certificate's the server presents.
        presented = ssl.get_server_certificate(("127.0.0.1", t.server.port))
        digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(presented)).hexdigest()
        assert t.server.tls.fingerprint.replace(":", "").lower() == digest
        fingerprint = t.server.tls.fingerprint
    assert (os.stat(tmp_path / "tls" / "self-signed.key").st_mode & 0o777) == 0o600

    # Later starts reuse the pair (the fingerprint a browser accepted stays), new names get a new one.
    again = tls.setup("127.0.0.1", None, None, True)
    assert again is not None and again.fingerprint == fingerprint
    other = tls.setup("192.0.2.7", None, None, True)
    assert other is not None and other.fingerprint != fingerprint
    assert "192.0.2.7" in tls.names_for("192.0.2.7") and "localhost" in tls.names_for("192.0.2.7")


def test_bad_certificate_settings_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cert, key = tls.self_signed(["localhost"], tmp_path / "a")
    other_cert, other_key = tls.self_signed(["localhost"], tmp_path / "b")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    missing = str(tmp_path / "nope.pem")
    ServerConfig(cert=str(cert), key=str(key)).check()  # a good pair
    assert ServerConfig(cert=str(cert), key=str(key)).uses_tls

    cases = [
        (dict(cert=missing, key=str(key)), "certificate file .*nope.pem does not exist"),
        (dict(cert=str(cert), key=missing), "key file .*nope.pem does not exist"),
        (dict(cert=str(cert)), "--cert needs --key"),
        (dict(key=str(key)), "--key needs --cert"),
        (dict(cert=str(cert), key=str(key), self_signed=True), "not both"),
        (dict(cert=str(garbage), key=str(key)), "certificate file .*garbage.pem is not a PEM certificate"),
        (dict(cert=str(cert), key=str(garbage)), "key file .*garbage.pem is not an unencrypted PEM private key"),
        (dict(cert=str(key), key=str(key)), "certificate file .*self-signed.key is not a PEM certificate"),
        (dict(cert=str(cert), key=str(other_key)), "the key must be the certificate's"),
        (dict(idle_timeout_s=0.0), "timeouts must be positive"),
    ]
    for settings, message in cases:
        with pytest.raises(ServerConfigError, match=message):
            ServerConfig(**settings).check()  # type: ignore[arg-type]
    if os.geteuid() != 0:  # root reads any file
        os.chmod(other_cert, 0)
        with pytest.raises(ServerConfigError, match="cannot be read"):
            ServerConfig(cert=str(other_cert), key=str(other_key)).check()

    from posetalk.clients.cli import main

    assert main(["serve", "--port", "0", "--cert", missing, "--key", str(key)]) == 2
    assert "nope.pem does not exist" in capsys.readouterr().err
    assert main(["serve", "--port", "0", "--cert", str(cert)]) == 2
    assert "--cert needs --key" in capsys.readouterr().err


def test_the_python_client_talks_to_a_self_signed_server_when_told_its_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from posetalk.clients.rtc_client import run_client
    from posetalk.tests.engine_fixtures import buzz

    monkeypatch.setenv("POSETALK_CACHE", str(tmp_path))
    with server_thread(self_signed=True) as t:
        cert = tmp_path / "tls" / "self-signed.crt"
        with pytest.raises(aiohttp.ClientConnectorCertificateError):  # not told: refused, as it should be
            asyncio.run(run_client(t.url, buzz(0.5), tmp_path / "no.mp4", tail_s=0.2))
        result = asyncio.run(run_client(t.url, buzz(1.0), tmp_path / "yes.mp4", tail_s=0.3, cafile=cert))
    assert result.frames >= 25 and (tmp_path / "yes.mp4").stat().st_size > 0
