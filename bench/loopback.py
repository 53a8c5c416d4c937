"""HTTPS on loopback: a trustme CA, the fast server in its own process, the clients."""

from __future__ import annotations

import contextlib
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import trustme

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Endpoint:
    """Where the fast server listens and how a client trusts it."""

    port: int
    ca_path: str

    def client_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts the test CA only."""
        return ssl.create_default_context(cafile=self.ca_path)

    def base_url(self, size: int, chunks: int = 1, pause_ms: int = 0) -> str:
        """A ``base_url`` whose ``/api/generate`` answers ``size`` bytes in ``chunks``."""
        return f"https://{HOST}:{self.port}/b/{size}/{chunks}/{pause_ms}"

    def generate_url(self, size: int, chunks: int = 1, pause_ms: int = 0) -> str:
        """The full generate URL for raw clients."""
        return self.base_url(size, chunks, pause_ms) + "/api/generate"

    @property
    def stats_url(self) -> str:
        """The server's statistics URL."""
        return f"https://{HOST}:{self.port}/stats"


def write_certificates(directory: Path) -> tuple[str, str]:
    """A CA and a server certificate for 127.0.0.1; returns (ca_path, server_pem)."""
    ca = trustme.CA()
    ca_path, server_pem = directory / "ca.pem", directory / "server.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    ca.issue_cert(HOST).private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    return str(ca_path), str(server_pem)


@contextlib.contextmanager
def fast_server(directory: Path) -> Iterator[Endpoint]:
    """Start ``fast_server.py`` in a separate process; yield its endpoint."""
    ca_path, server_pem = write_certificates(directory)
    command = [sys.executable, str(HERE / "fast_server.py"), "--cert", server_pem]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the fast server did not start: {line!r}")
        yield Endpoint(port=int(line.split()[1]), ca_path=ca_path)
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
