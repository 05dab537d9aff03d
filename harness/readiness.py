"""Whether a service is ready: it answers its own protocol, not merely a TCP connect.

Docker's port proxy accepts connections long before the server inside listens, so each check
speaks the protocol the topology names for the service (SQL, AMQP, HTTP, or a bare TCP accept
for a service that speaks none of them), with the credentials or path the topology gives.
"""

from __future__ import annotations

import functools
import socket
from typing import Any, Callable

import httpx

from harness.topology import Service

CHECK_TIMEOUT_S = 2


def sql_keywords(params: dict[str, str], host: str, port: int, connect_timeout: int) -> dict[str, Any]:
    """psycopg.connect() keywords for a database at host:port, as the topology's sql readiness
    names its user (the same for the check and for the harness's own connections)."""
    return {"host": host, "port": port, "user": params["user"], "password": params["password"],
            "dbname": params["database"], "connect_timeout": connect_timeout}


def amqp_credentials(params: dict[str, str]) -> Any:
    """pika credentials of a broker, as the topology's amqp readiness names them."""
    import pika

    return pika.PlainCredentials(params["user"], params["password"])


def _sql(params: dict[str, str], host: str, port: int) -> bool:
    import psycopg

    with psycopg.connect(**sql_keywords(params, host, port, CHECK_TIMEOUT_S)) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


def _amqp(params: dict[str, str], host: str, port: int) -> bool:
    import logging

    import pika

    logging.getLogger("pika").setLevel(logging.CRITICAL)  # a broker still booting is expected here
    connection = pika.BlockingConnection(pika.ConnectionParameters(
        host=host, port=port, connection_attempts=1, socket_timeout=CHECK_TIMEOUT_S,
        blocked_connection_timeout=CHECK_TIMEOUT_S,
        credentials=amqp_credentials(params)))
    connection.close()
    return True


@functools.cache
def _http_client() -> httpx.Client:
    """The one client of every HTTP check. httpx.get() builds a client, and with it a TLS context,
    per call: ~24 ms of CPU, at ten checks a second for each service still booting, on the cores
    the services boot on. No keep-alive: each check opens a new connection, so a pooled one never
    answers for a server that has gone (a restarted service is checked afresh)."""
    return httpx.Client(timeout=CHECK_TIMEOUT_S, limits=httpx.Limits(max_keepalive_connections=0))


def _http(params: dict[str, str], host: str, port: int) -> bool:
    return _http_client().get(f"http://{host}:{port}{params.get('path', '/health')}").status_code == 200


def _tcp(params: dict[str, str], host: str, port: int) -> bool:
    """Accepts and does not close at once: Docker's proxy accepts and then drops the connection
    while nothing listens inside, so a connection that stays open a moment is a listener."""
    with socket.create_connection((host, port), timeout=CHECK_TIMEOUT_S) as sock:
        sock.settimeout(0.2)
        try:
            return sock.recv(1) != b""
        except TimeoutError:
            return True


CHECKS: dict[str, Callable[[dict[str, str], str, int], bool]] = {
    "sql": _sql, "amqp": _amqp, "http": _http, "tcp": _tcp,
}


def ready(service: Service, host: str, port: int) -> bool:
    """One try of the service's own protocol at host:port (raises or False when not ready)."""
    return CHECKS[service.readiness](service.readiness_params, host, port)
