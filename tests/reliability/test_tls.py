"""TLS: verification is on by default; a per-endpoint CA bundle works; plain HTTP only to loopback
unless explicitly allowed; an insecure flag on one endpoint does not weaken another.

The rig's target is put behind TLS-terminating proxies with a certificate from a CA made here
(openssl). The machine-wide AWS_CA_BUNDLE is removed, so only the providers file decides trust."""

from __future__ import annotations

import os
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import unique
from tests.reliability import dataset
from tests.reliability.conftest import Rig
from tests.reliability.faultproxy import FaultProxy


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls(rig: Rig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=failover test CA",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=work)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
             "-out", "server.csr", cwd=work)  # fmt: skip
    (work / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=work)  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(work / "server.pem", work / "server.key")
    trusted = FaultProxy(rig.target.state.endpoint, tls=context)
    other = FaultProxy(rig.target.state.endpoint, tls=context)
    document = yaml.safe_load(Path(rig.env["FAILOVER_PROVIDERS"]).read_text())
    credentials = document["providers"]["dst"]["credentials"]
    storage = {"type": "s3", "options": {"vendor": "seaweedfs", "connect_timeout": 2, "read_timeout": 4}}
    document["providers"].update(
        {
            "tls-default": {"endpoint": trusted.endpoint, "credentials": credentials, "storage": storage},
            "tls-ca": {
                "endpoint": trusted.endpoint,
                "credentials": credentials,
                "ca_bundle": str(work / "ca.pem"),
                "storage": storage,
            },
            "tls-insecure": {
                "endpoint": other.endpoint,
                "credentials": credentials,
                "verify_tls": False,
                "storage": storage,
            },
            "far-http": {"endpoint": "http://192.0.2.10:9000", "credentials": credentials, "storage": storage},
            "far-http-allowed": {
                "endpoint": "http://192.0.2.10:9000",
                "allow_plain_http": True,
                "credentials": credentials,
                "storage": storage,
            },
        }
    )
    providers = work / "providers.yaml"
    providers.write_text(yaml.safe_dump(document))
    yield {"providers": providers, "trusted": trusted, "other": other}
    trusted.close()
    other.close()


def run(rig: Rig, tls: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    from tests.reliability.test_bad_input import cli

    env = {k: v for k, v in os.environ.items() if k not in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return cli(rig, "--providers", str(tls["providers"]), *args)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_verification_is_on_by_default(rig: Rig, tls: dict[str, Any], record: Any) -> None:
    result = run(rig, tls, "ls", "tls-default:")
    assert result.returncode == 3, result.stderr
    assert "certificate is not trusted" in result.stderr and "ca_bundle" in result.stderr
    handshakes = tls["trusted"].stats.requests
    assert sum(handshakes.values()) == 0, "no request went through an untrusted connection"
    record("tls: untrusted certificate refused", exit=result.returncode, requests_sent=sum(handshakes.values()))


def test_a_per_endpoint_ca_bundle_works(rig: Rig, tls: dict[str, Any]) -> None:
    bucket = unique("tls")
    dataset.seed(rig.reader("source"), bucket, dataset.build(10, 1, 9))
    result = run(rig, tls, "sync", f"src:{bucket}", f"tls-ca:{bucket}")
    assert result.returncode in (0, 1), result.stderr  # 1: the awkward keys SeaweedFS cannot hold
    assert "certificate" not in result.stderr
    assert run(rig, tls, "ls", f"tls-ca:{bucket}").returncode == 0


def test_an_insecure_endpoint_does_not_weaken_another(rig: Rig, tls: dict[str, Any]) -> None:
    bucket = unique("tls-mix")
    dataset.seed(rig.reader("source"), bucket, dataset.build(5, 0, 0))
    assert run(rig, tls, "sync", f"src:{bucket}", f"tls-ca:{bucket}").returncode in (0, 1)
    assert run(rig, tls, "ls", f"tls-insecure:{bucket}").returncode == 0, "verify_tls: false accepts it"
    # In one process: read through the insecure endpoint, write through the default one.
    mixed = run(rig, tls, "sync", f"tls-insecure:{bucket}", f"tls-default:{bucket}-copy")
    assert mixed.returncode == 3 and "certificate is not trusted" in mixed.stderr


def test_plain_http_only_to_loopback_unless_allowed(rig: Rig, tls: dict[str, Any]) -> None:
    refused = run(rig, tls, "ls", "far-http:")
    assert refused.returncode == 2
    assert "plain" in refused.stderr.lower() and "allow_plain_http" in refused.stderr
    # Allowed: the configuration is accepted, and the check goes as far as trying to connect.
    allowed = run(rig, tls, "--json", "providers", "check", "far-http-allowed")
    assert allowed.returncode == 3 and "allow_plain_http" not in allowed.stdout + allowed.stderr
    assert "cannot connect to 192.0.2.10:9000" in allowed.stdout
