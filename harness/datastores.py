"""The run's database and message broker, reached straight on their published ports, as an
operator would (not through a proxy, so a fault on the system's edges never blocks the harness).

Which service is the database or the broker is the topology's word, never a name: the service
whose readiness speaks the role's protocol (sql, amqp), and of several, the one that declares the
role as a capability (`database`, `broker`). The credentials are those the topology gives the
readiness check. The broker helpers are what an operator does with a queue: its depth, a look at
what it holds, a purge, a re-drive of a dead-letter queue.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness import topology
from harness.errors import HarnessError
from harness.readiness import amqp_credentials, sql_keywords
from harness.topology import Topology
from harness.view import StackView

if TYPE_CHECKING:
    import psycopg

# role -> the readiness protocol its service speaks (its capability has the role's name)
ROLES = {"database": "sql", "broker": "amqp"}


def datastore(system: Topology, role: str) -> str:
    """The service of a topology that plays a role (database, broker): the only one whose
    readiness speaks the role's protocol, or of several, the one declaring the role."""
    speaking = [name for name, s in system.services.items() if s.readiness == ROLES[role]]
    declared = [name for name in speaking if role in system.services[name].capabilities]
    chosen = declared or speaking
    if not chosen:
        raise HarnessError(f"the system {system.name!r} has no {role}: no service's readiness is "
                           f"{ROLES[role]} (see its topology file)")
    if len(chosen) > 1:
        raise HarnessError(f"the system {system.name!r} has {len(chosen)} services that could be its {role} "
                           f"({', '.join(chosen)}): declare the capability `{role}` on one of them")
    return chosen[0]


def database_params_at(host: str, port: int, connect_timeout: int = 5,
                       system: Topology | None = None) -> dict[str, Any]:
    """psycopg.connect() keywords for the run's database at a host and port, as the harness's user
    (the credentials its topology, by default the active one, gives the database's readiness check)."""
    system = system or topology.active()
    return sql_keywords(system.services[datastore(system, "database")].readiness_params, host, port, connect_timeout)


def database_params(stack: StackView, connect_timeout: int = 5) -> dict[str, Any]:
    """psycopg.connect() keywords for a stack's database on its published port (not through a proxy)."""
    endpoint = stack.endpoint(datastore(stack.topology, "database"))
    return database_params_at(endpoint.host, endpoint.port, connect_timeout, stack.topology)


def connect_database(stack: StackView, *, autocommit: bool = False, connect_timeout: int = 5) -> psycopg.Connection:
    """A connection to a stack's database, as an operator would open one (use it in a `with`)."""
    import psycopg

    return psycopg.connect(**database_params(stack, connect_timeout), autocommit=autocommit)


def broker_credentials(system: Topology | None = None, service: str | None = None) -> Any:
    """The broker's credentials (of `service`, by default the topology's broker), as the topology,
    by default the active one, gives them to the readiness check."""
    system = system or topology.active()
    return amqp_credentials(system.services[service or datastore(system, "broker")].readiness_params)


@contextlib.contextmanager
def channel(host: str, port: int, **options: Any) -> Iterator[Any]:
    """A short-lived AMQP channel to the run's broker (published port); `options` are further
    pika.ConnectionParameters, or replace the defaults (3 connection attempts, 0.5 s apart)."""
    import pika

    connection = pika.BlockingConnection(pika.ConnectionParameters(
        host=host, port=port, **({"connection_attempts": 3, "retry_delay": 0.5} | options),
        credentials=broker_credentials()))
    try:
        yield connection.channel()
    finally:
        if connection.is_open:
            connection.close()


def queue_depth(host: str, port: int, queue: str) -> int | None:
    """Messages waiting in a queue (None when the queue does not exist), read with a passive declare."""
    import pika.exceptions

    with channel(host, port) as amqp:
        try:
            count: int = amqp.queue_declare(queue, passive=True).method.message_count
            return count
        except pika.exceptions.ChannelClosedByBroker:
            return None


def _fetched(amqp: Any, queue: str) -> Iterator[tuple[Any, Any, bytes]]:
    """The messages a queue holds, fetched unacknowledged one by one (method, properties, body);
    bounded by the depth at the start, so what comes back meanwhile is not fetched twice."""
    depth = amqp.queue_declare(queue, passive=True).method.message_count
    for _ in range(depth):
        method, properties, body = amqp.basic_get(queue, auto_ack=False)
        if method is None:
            return
        yield method, properties, body


def redrive(host: str, port: int, queue: str, exchange: str) -> int:
    """Moves what a dead-letter queue holds back to `exchange` (the one the messages were first
    published to: a dead-letter queue does not say it), each message under its original routing
    key (the manual's first response, once the cause is fixed). Bounded by the depth at the start,
    so messages that fail again and come back are not moved twice."""
    import pika

    moved = 0
    with channel(host, port) as amqp:
        for method, properties, body in _fetched(amqp, queue):
            headers = properties.headers or {}
            routing_key = headers.get("x-original-routing-key") or method.routing_key
            amqp.basic_publish(exchange, routing_key, body, pika.BasicProperties(
                message_id=properties.message_id, content_type=properties.content_type, delivery_mode=2,
                headers={k: v for k, v in headers.items() if k not in ("x-reason", "x-death")}))
            amqp.basic_ack(method.delivery_tag)
            moved += 1
    return moved


@dataclass(frozen=True)
class Parked:
    """One message a queue holds, as peek() read it."""

    message_id: str | None
    headers: dict[str, Any]
    body: bytes


def peek(host: str, port: int, queue: str) -> list[Parked]:
    """What a queue holds, read without taking it away: every message is fetched unacknowledged
    and all of them are then rejected back with requeue, so the queue keeps them (an operator
    inspecting the DLQ must not empty it). Bounded by the depth at the start."""
    parked: list[Parked] = []
    with channel(host, port) as amqp:
        last = None
        for method, properties, body in _fetched(amqp, queue):
            last = method.delivery_tag
            parked.append(Parked(properties.message_id, dict(properties.headers or {}), body))
        if last is not None:
            amqp.basic_nack(delivery_tag=last, multiple=True, requeue=True)
    return parked


def purge(host: str, port: int, queue: str) -> None:
    """Empties a queue if it exists (between scenarios)."""
    import pika.exceptions

    with channel(host, port) as amqp:
        try:
            amqp.queue_purge(queue)
        except pika.exceptions.ChannelClosedByBroker:
            pass
