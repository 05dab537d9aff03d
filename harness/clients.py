"""Thin clients for what the harness talks to: the shop's edge, the vendor's control API, and the
run's Postgres and RabbitMQ reached straight on their published ports.

Every order placed goes into the ledger's history (invoke and completion, with times), so
scenarios judge what happened from the history afterwards rather than from one probe.

The shop's control endpoints ask for the run's control secret (topology.CONTROL_HEADER); the
clients send the stack's. The vendor's and the sink's lists are bounded and read after a
cursor: a client marks where it starts (`mark()`, at a scenario's start) and reads only what
came after, so a kept stack's history is read, never wiped.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Self

import httpx

from harness import topology
from harness.ledger import History, Operation, Outcome
from harness.readiness import amqp_credentials, sql_keywords
from harness.topology import control_headers
from harness.view import StackView

# The shop's database and broker services (the topology gives their credentials).
DATABASE = "postgres"
BROKER = "rabbitmq"

if TYPE_CHECKING:
    import psycopg


# One read of a bounded list returns at most this many items (the shop's shop.ring.PAGE); a
# full read of a list takes at most MAX_PAGES reads (its capacity, 10,000, and a margin).
PAGE = 1_000
MAX_PAGES = 12


@dataclass
class ShopClient:
    """The customer's view: the shop as reached through the edge proxy."""

    base_url: str
    history: History
    token: str | None = None
    timeout_s: float = 10.0
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.http = httpx.Client(base_url=self.base_url, timeout=self.timeout_s, headers=headers)

    def place_order(self, sku: str = "sku-1", amount_cents: int = 1250, key: str | None = None,
                    timeout_s: float | None = None) -> Operation:
        """POST /orders with an Idempotency-Key; the outcome is recorded whatever it is (a client
        timeout is `unknown`: the shop may still act on the request)."""
        op = self.history.invoke("place_order", key or uuid.uuid4().hex, {"sku": sku, "amount_cents": amount_cents})
        try:
            response = self.http.post("/orders", json={"sku": sku, "amount_cents": amount_cents},
                                      headers={"Idempotency-Key": op.key}, timeout=timeout_s or self.timeout_s)
        except httpx.TimeoutException as exc:
            # The request may or may not have been acted on: unknown, never "failed".
            return self.history.complete(op, "unknown", None, {"error": type(exc).__name__})
        except httpx.TransportError as exc:
            return self.history.complete(op, "unknown", None, {"error": type(exc).__name__})
        body = _json(response)
        outcome: Outcome = "ok" if response.status_code < 300 else "fail"
        op.headers = dict(response.headers)
        return self.history.complete(op, outcome, response.status_code, body)

    def place_stream(self, count: int, interval_s: float) -> list[Operation]:
        """A bounded stream of orders at a steady pace (count and time are both bounded)."""
        ops = []
        for _ in range(count):
            began = time.monotonic()
            ops.append(self.place_order())
            time.sleep(max(0.0, interval_s - (time.monotonic() - began)))
        return ops

    def order(self, order_id: str) -> dict[str, Any] | None:
        """What the shop says of an order now; None when it does not know it (lost)."""
        response = self.http.get(f"/orders/{order_id}")
        return None if response.status_code == 404 else _json(response)

    def status_of(self, order_id: str | None) -> str | None:
        """The status the shop gives an order now (None: no id, or unknown to the shop)."""
        return (self.order(order_id) or {}).get("status") if order_id else None

    def receipt(self, order_id: str) -> httpx.Response:
        """GET /orders/{id}/receipt: the order's receipt as node-A's data volume holds it."""
        return self.http.get(f"/orders/{order_id}/receipt")

    def health(self) -> dict[str, Any]:
        return _json(self.http.get("/health"))

    def close(self) -> None:
        self.http.close()


def mint_token(stack: StackView, subject: str = "chaos-customer", audience: str = "shop",
               ttl_s: int = 3600) -> str:
    """A valid customer token from the stack's auth_service, asked with the run's control
    secret (retried briefly while it loads its keys)."""
    auth_url = stack.endpoint("auth_service").url
    headers = control_headers(stack.control_secret)
    deadline = time.monotonic() + 30
    while True:
        response = httpx.post(f"{auth_url}/tokens", json={"subject": subject, "audience": audience, "ttl_s": ttl_s},
                              headers=headers, timeout=5)
        if response.status_code == 201 or time.monotonic() > deadline:
            response.raise_for_status()
            token: str = response.json()["token"]
            return token
        time.sleep(0.2)


@dataclass
class Feeds:
    """Base of the clients of bounded, sequenced lists (shop.ring): FEEDS names each list's path
    (its items are under the list's name). `marks` holds, per list, the cursor reads start
    after: 0 (everything held) until `mark()`."""

    FEEDS: ClassVar[dict[str, str]] = {}
    SERVICE: ClassVar[str] = ""
    base_url: str
    secret: str
    http: httpx.Client = field(init=False)
    marks: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base_url, timeout=5.0, headers=control_headers(self.secret))
        self.marks = dict.fromkeys(self.FEEDS, 0)

    @classmethod
    def of(cls, stack: StackView) -> Self:
        """The client of a stack's service, with the run's control secret."""
        return cls(stack.endpoint(cls.SERVICE).url, stack.control_secret)

    def _page(self, feed: str, since: int, limit: int) -> dict[str, Any]:
        response = self.http.get(self.FEEDS[feed], params={"since": since, "limit": limit})
        return _answer(response)

    def newest(self, feed: str) -> int:
        """The sequence number of the list's newest item (0: none yet)."""
        return int(self._page(feed, 0, 0)["newest"])

    def mark(self) -> dict[str, int]:
        """From now on, reads give only what arrives after this moment (a scenario's start)."""
        self.marks = {feed: self.newest(feed) for feed in self.FEEDS}
        return dict(self.marks)

    def since_mark(self, feed: str) -> list[dict[str, Any]]:
        """Every item after the mark that the list still holds, oldest first (bounded reads)."""
        items, cursor = [], self.marks[feed]
        for _ in range(MAX_PAGES):
            page = self._page(feed, cursor, PAGE)
            items += page[feed]
            if len(page[feed]) < PAGE:
                break
            cursor = page["cursor"]
        return items

    def recent(self, feed: str, cursor: int | None, keep: int) -> tuple[list[dict[str, Any]], int]:
        """At most `keep` items after `cursor` (None: the newest `keep`), and the cursor to pass
        next time: what a live view redrawn every second reads, two small requests however long
        the list. A cursor from before a restart of the service (beyond its newest) starts over."""
        newest = self.newest(feed)
        if cursor is None or cursor > newest or newest - cursor > keep:
            cursor = max(0, newest - keep)
        page = self._page(feed, cursor, keep)
        return page[feed], int(page["cursor"])

    def close(self) -> None:
        self.http.close()


@dataclass
class VendorClient(Feeds):
    """The payment vendor simulator's control API, journal and charges."""

    FEEDS: ClassVar[dict[str, str]] = {"journal": "/_control/journal", "charges": "/_control/charges"}
    SERVICE: ClassVar[str] = "payment_gateway"

    def set_fault(self, status: int, duration_s: float | None = None, retry_after: int | None = None) -> dict[str, Any]:
        response = self.http.post("/_control/fault", json={"status": status, "duration_s": duration_s,
                                                           "retry_after": retry_after})
        return _answer(response)

    def clear_fault(self) -> dict[str, Any]:
        return _answer(self.http.delete("/_control/fault"))

    def fault(self) -> dict[str, Any] | None:
        fault: dict[str, Any] | None = self.http.get("/_control/fault").json()["fault"]
        return fault

    def probe_charge(self) -> int:
        """A marked request (kept out of the charges) that shows what the vendor answers now."""
        key = "probe-" + uuid.uuid4().hex
        response = self.http.post("/charges", json={"order_id": key, "amount_cents": 0},
                                  headers={"Idempotency-Key": key, "X-Chaos-Probe": "1"})
        return response.status_code

    def journal(self) -> list[dict[str, Any]]:
        """Every request the vendor saw since the mark, probes excluded, in arrival order."""
        return [e for e in self.since_mark("journal") if not e.get("probe")]

    def charges(self) -> dict[str, dict[str, Any]]:
        """The charges made since the mark, by idempotency key."""
        return {c["key"]: c for c in self.since_mark("charges")}

    def reset(self) -> None:
        """Clears the vendor: faults, journal, charges and its idempotency table. Only for a
        stack this run started: a kept stack's vendor is read after a mark instead."""
        self.http.post("/_control/reset").raise_for_status()
        self.mark()


@dataclass
class SinkClient(Feeds):
    """What the shop told the outside world: Slack-format alerts and customer e-mails."""

    FEEDS: ClassVar[dict[str, str]] = {"alerts": "/alerts", "mails": "/mails"}
    SERVICE: ClassVar[str] = "alert_sink"

    def alerts(self, status: str | None = None) -> list[dict[str, Any]]:
        """Alerts received since the mark, optionally only those `firing` or `resolved`."""
        return [a for a in self.since_mark("alerts") if status is None or a.get("chaos", {}).get("status") == status]

    def mails(self) -> list[dict[str, Any]]:
        """Mails received since the mark."""
        return self.since_mark("mails")

    def mails_of(self, order_id: str) -> list[dict[str, Any]]:
        """The mails received for one order."""
        return [m for m in self.mails() if m["order_id"] == order_id]

    def slow_mail(self, delay_ms: int) -> None:
        """The mail server answers each mail delay_ms after recording it (0: at once)."""
        self.http.post("/_control/smtp", json={"delay_ms": delay_ms}).raise_for_status()

    def reset(self) -> None:
        """Clears the sink (only for a stack this run started; see VendorClient.reset)."""
        self.http.post("/_control/reset").raise_for_status()
        self.mark()


@dataclass
class InventoryClient:
    """inventory_service seen directly (its published port), with a customer token."""

    base_url: str
    token: str
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base_url, timeout=5.0,
                                 headers={"Authorization": f"Bearer {self.token}"})

    def products(self) -> httpx.Response:
        return self.http.get("/products")

    def reservation(self, order_id: str) -> dict[str, Any] | None:
        response = self.http.get(f"/reservations/{order_id}")
        return response.json() if response.status_code == 200 else None

    def close(self) -> None:
        self.http.close()


def database_params_at(host: str, port: int, connect_timeout: int = 5) -> dict[str, Any]:
    """psycopg.connect() keywords for the run's database at a host and port, as the harness's user
    (the credentials its topology gives the database's readiness check)."""
    return sql_keywords(topology.active().services[DATABASE].readiness_params, host, port, connect_timeout)


def database_params(stack: StackView, connect_timeout: int = 5) -> dict[str, Any]:
    """psycopg.connect() keywords for a stack's Postgres on its published port (not through a proxy)."""
    endpoint = stack.endpoint(DATABASE)
    return database_params_at(endpoint.host, endpoint.port, connect_timeout)


def connect_database(stack: StackView, *, autocommit: bool = False, connect_timeout: int = 5) -> psycopg.Connection:
    """A connection to a stack's Postgres, as an operator would open one (use it in a `with`)."""
    import psycopg

    return psycopg.connect(**database_params(stack, connect_timeout), autocommit=autocommit)


def broker_credentials() -> Any:
    """The broker's credentials, as its topology gives them to the readiness check."""
    return amqp_credentials(topology.active().services[BROKER].readiness_params)


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


def redrive(host: str, port: int, queue: str, exchange: str = "orders") -> int:
    """Moves what a dead-letter queue holds back to the exchange, each message under its original
    routing key (the manual's first response, once the cause is fixed). Bounded by the depth at
    the start, so messages that fail again and come back are not moved twice."""
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


def _answer(response: httpx.Response) -> dict[str, Any]:
    """A control API's JSON answer; an error status raises (httpx.HTTPStatusError)."""
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"raw": response.text[:200]}
    return body if isinstance(body, dict) else {"value": body}

