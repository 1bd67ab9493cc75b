"""The official OpenAI SDK over HTTPS (`server.tls`), trusting a private CA.

The CA and the router's certificate are made with the `openssl` command
(installed by `.ci/run`); the router is the real binary on a loopback port.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import openai
import pytest

from conftest import CLIENT_TIMEOUT_S, STARTUP_DEADLINE_S, _binary, free_port


def _openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_pki(dir: Path) -> None:
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(dir, "req", "-x509", "-days", "2", "-keyout", "ca.key", "-out", "ca.pem", *ec,
             "-subj", "/CN=switchyard compat CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign")
    _openssl(dir, "req", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", *ec)
    (dir / "ext.cnf").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(dir, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")


@pytest.fixture(scope="module")
def tls_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    dir = tmp_path_factory.mktemp("tls")
    _make_pki(dir)
    # Paths relative to the config file's directory.
    (dir / "router.yaml").write_text(
        "server:\n  tls: { cert: server.pem, key: server.key }\n"
        "upstreams:\n  local: { provider: mock }\n"
        "models:\n  demo:\n    targets: [local]\n"
    )
    port = free_port()
    log = open(dir / "switchyard.stderr.log", "wb")
    process = subprocess.Popen(
        [str(_binary()), "--config", str(dir / "router.yaml"), "--listen", f"127.0.0.1:{port}"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/",
    )
    context = ssl.create_default_context(cafile=str(dir / "ca.pem"))
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    base = f"https://localhost:{port}"
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while True:
        try:
            with opener.open(f"{base}/health", timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the TLS router did not start: {(dir / 'switchyard.stderr.log').read_text()}")
        time.sleep(0.05)
    try:
        yield base, dir / "ca.pem"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_the_sdk_streams_and_answers_over_https_with_a_private_ca(tls_router) -> None:
    base, ca = tls_router
    os.environ.setdefault("NO_PROXY", "localhost,127.0.0.1")
    client = openai.OpenAI(
        base_url=f"{base}/v1",
        api_key="sk-test-dummy",
        timeout=CLIENT_TIMEOUT_S,
        http_client=openai.DefaultHttpx2Client(verify=ssl.create_default_context(cafile=str(ca))),
    )
    answer = client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "hello over tls"}]
    )
    assert "hello over tls" in answer.choices[0].message.content
    stream = client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "stream it"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert "stream it" in text
    assert [m.id for m in client.models.list()] == ["demo"]


def test_the_sdk_refuses_the_router_without_the_ca(tls_router) -> None:
    base, _ = tls_router
    client = openai.OpenAI(base_url=f"{base}/v1", api_key="sk-test-dummy", max_retries=0,
                           timeout=CLIENT_TIMEOUT_S)
    with pytest.raises(openai.APIConnectionError):
        client.models.list()


def test_curl_gets_http2_by_alpn_and_a_stream(tls_router) -> None:
    base, ca = tls_router
    result = subprocess.run(
        ["curl", "-sS", "--max-time", "20", "--cacert", str(ca), "--http2",
         "-o", "/dev/null", "-w", "%{http_version} %{http_code}", f"{base}/health"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "2 200", result.stdout
    stream = subprocess.run(
        ["curl", "-sS", "--max-time", "20", "--cacert", str(ca), "-N",
         "-H", "content-type: application/json",
         "-d", '{"model":"demo","stream":true,"messages":[{"role":"user","content":"curl over tls"}]}',
         f"{base}/v1/chat/completions"],
        capture_output=True, text=True, timeout=30,
    )
    assert stream.returncode == 0, stream.stderr
    assert stream.stdout.rstrip().endswith("data: [DONE]"), stream.stdout
    assert "curl" in stream.stdout
