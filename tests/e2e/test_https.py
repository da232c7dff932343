"""The gateway terminating TLS, as docker-compose runs it: a self-signed certificate, modern
protocols only, HSTS, and plain HTTP redirecting to HTTPS; in front of the test stack."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nginx.render import render
from shared_runtime.registry import SERVICES
from tests.e2e.conftest import PORT_OFFSET

HTTP_PORT, HTTPS_PORT = 18081, 18443


@pytest.fixture(scope="module")
def tls_gateway(stack: str) -> Iterator[Path]:
    # Not under pytest's private temporary directory: nginx's workers (nobody, under root) keep
    # the catalog cache here and must reach it.
    run = Path(tempfile.mkdtemp(prefix="tls-gateway-"))
    run.chmod(0o755)
    certificate = run / "tls.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(run / "tls.key"), "-out", str(certificate)],
        check=True, capture_output=True,
    )  # fmt: skip
    upstreams = {name: [f"127.0.0.1:{s.port + PORT_OFFSET}"] for name, s in SERVICES.items()}
    conf = render(run, str(HTTP_PORT), upstreams, tls_listen=str(HTTPS_PORT), tls_dir=str(run))
    subprocess.run(["nginx", "-p", str(run), "-c", str(conf)], check=True)
    yield certificate
    subprocess.run(["nginx", "-p", str(run), "-c", str(conf), "-s", "stop"], check=False)
    shutil.rmtree(run, ignore_errors=True)


def client_context(certificate: Path, version: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certificate))
    context.minimum_version = context.maximum_version = version
    return context


async def test_the_api_answers_over_https_with_hsts(tls_gateway: Path):
    verify = ssl.create_default_context(cafile=str(tls_gateway))
    async with httpx.AsyncClient(
        base_url=f"https://127.0.0.1:{HTTPS_PORT}", verify=verify
    ) as client:
        products = await client.get("/api/v1/products", params={"pageSize": 2})
        assert products.status_code == 200 and len(products.json()["items"]) == 2
        hsts = products.headers["Strict-Transport-Security"]
        assert "max-age=63072000" in hsts and "includeSubDomains" in hsts
        missing = await client.get("/api/v1/nowhere")
        assert missing.status_code == 404 and "Strict-Transport-Security" in missing.headers


async def test_plain_http_redirects_to_https_and_sends_no_hsts(tls_gateway: Path):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{HTTP_PORT}") as client:
        redirected = await client.get("/api/v1/products?page=2")
        assert redirected.status_code == 308
        assert redirected.headers["Location"] == "https://127.0.0.1/api/v1/products?page=2"
        assert "Strict-Transport-Security" not in redirected.headers
        assert (await client.get("/health")).status_code == 200  # for probes


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated")
@pytest.mark.parametrize(
    "version,accepted",
    [
        (ssl.TLSVersion.TLSv1_3, True),
        (ssl.TLSVersion.TLSv1_2, True),
        (ssl.TLSVersion.TLSv1_1, False),
    ],
)
async def test_only_modern_tls_is_spoken(
    tls_gateway: Path, version: ssl.TLSVersion, accepted: bool
):
    context = client_context(tls_gateway, version)
    if version == ssl.TLSVersion.TLSv1_1:
        # The client side would refuse it first at OpenSSL's default security level.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    async with httpx.AsyncClient(verify=context) as client:
        try:
            answer = await client.get(f"https://127.0.0.1:{HTTPS_PORT}/health")
        except httpx.ConnectError:
            assert not accepted, f"{version.name} was refused"
        else:
            assert accepted, f"{version.name} was accepted"
            assert answer.status_code == 200
