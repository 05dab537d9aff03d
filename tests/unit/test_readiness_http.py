"""The HTTP readiness check against a real loopback server: one client for all checks, a new
connection for each."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from harness import readiness
from harness.topology import Service


class _Health(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the client says otherwise
    connections: list[int] = []  # the client port of each connection accepted

    def setup(self) -> None:
        super().setup()
        self.connections.append(self.client_address[1])

    def do_GET(self) -> None:  # noqa: N802  (http.server's name)
        status = 200 if self.path == "/health" else 503
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    _Health.connections = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_checks_share_one_client_and_open_a_connection_each(server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches: a client (and its TLS context, ~24 ms of CPU) built for every check, as httpx.get()
    does, ten times a second per booting service; and a pooled keep-alive connection reused from one
    check to the next, which could answer for a server that has since gone."""
    built: list[httpx.Client] = []

    class Counted(httpx.Client):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            built.append(self)

    monkeypatch.setattr(readiness.httpx, "Client", Counted)
    readiness._http_client.cache_clear()
    service = Service("web", "web", 8000, "http", {"path": "/health"})
    try:
        assert [readiness.ready(service, "127.0.0.1", server) for _ in range(3)] == [True, True, True]
        assert len(built) == 1
        assert len(set(_Health.connections)) == 3
        assert readiness.ready(Service("web", "web", 8000, "http", {"path": "/other"}), "127.0.0.1", server) is False
    finally:
        readiness._http_client.cache_clear()
