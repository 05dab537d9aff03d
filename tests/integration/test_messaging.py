"""inventory_service's consumer of order events against the real broker, each protection shown
working on the resilient shop and absent on the fragile one: bad messages dead-lettered with
their reason while the consumer keeps going (vs. a consumer stopped by the first one), one mail
per order however often its event arrives (vs. one per delivery), and consumption resumed after
a broker restart (vs. a consumer that stays gone).

The fragile tests run on a stack of this module's own: they stop its consumer and restart its
broker on purpose, which later users of a shared stack should not inherit.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pika
import pika.exceptions
import pytest
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer

from harness import datastores, topology
from harness.polling import wait_for
from harness.readiness import ready
from harness.stack import Stack
from tests.integration.test_inventory import SERVICE, Inventory, published

pytestmark = pytest.mark.integration

MALFORMED_JSON = "Failed to process message from queue: malformed JSON."  # the manual's line, verbatim
EXCHANGE, QUEUE, DLQ = "orders", "inventory.order-events", "inventory.order-events.dlq"
SKU = "sku-2"


# ---------------------------------------------------------------- helpers

def order_event(kind: str, order_id: str, message_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    """An order event as the gateway publishes it (the schema of shop.events)."""
    return {"message_id": message_id or f"{order_id}:{kind}", "type": kind, "order_id": order_id, "sku": SKU,
            "quantity": 1, "amount_cents": 1250, "customer_email": f"{order_id}@example.com",
            "occurred_at": time.time(), **overrides}


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


@dataclass
class Broker:
    """The stack's RabbitMQ as the harness reaches it (user chaos/chaos), always at its current port."""

    stack: Stack

    def channel(self) -> contextlib.AbstractContextManager[Any]:
        mq = published(self.stack, "rabbitmq")
        return datastores.channel(mq.host, mq.port, retry_delay=1, socket_timeout=5, blocked_connection_timeout=5)

    def publish(self, *bodies: bytes, routing_key: str = "order.paid") -> None:
        """Publishes with confirms and `mandatory`, so a message no queue takes fails here."""
        with self.channel() as channel:
            channel.confirm_delivery()
            for body in bodies:
                channel.basic_publish(EXCHANGE, routing_key, body, mandatory=True, properties=pika.BasicProperties(
                    content_type="application/json", delivery_mode=pika.DeliveryMode.Persistent))

    def depth(self, queue: str) -> int | None:
        """Ready messages in a queue; None when the queue does not exist."""
        with self.channel() as channel:
            try:
                return channel.queue_declare(queue, passive=True).method.message_count
            except pika.exceptions.ChannelClosedByBroker:
                return None

    def drain(self, queue: str) -> list[tuple[bytes, dict[str, Any]]]:
        """Takes every ready message off a queue: (body, headers)."""
        taken = []
        with self.channel() as channel:
            while True:
                method, properties, body = channel.basic_get(queue, auto_ack=True)
                if method is None:
                    return taken
                taken.append((body, properties.headers or {}))

    def purge(self, queue: str) -> None:
        if self.depth(queue) is not None:
            with self.channel() as channel:
                channel.queue_purge(queue)


def mails(stack: Stack, order_id: str) -> list[dict[str, Any]]:
    """The customer mails the sink received for one order."""
    every = httpx.get(published(stack, "alert_sink").url + "/mails", timeout=5).json()["mails"]
    return [mail for mail in every if mail["order_id"] == order_id]


def status(inventory: Inventory, order_id: str) -> str | None:
    response = inventory.get(f"/reservations/{order_id}")
    return response.json()["status"] if response.status_code == 200 else None


def consumer_connected(inventory: Inventory) -> bool:
    try:
        return bool(inventory.health()["checks"]["broker_consumer"])
    except (httpx.HTTPError, ValueError, KeyError):  # restarting: not yet
        return False


@contextlib.contextmanager
def orders(inventory: Inventory) -> Iterator[Any]:
    """Makes reserved orders for a test; on the way out removes every row they left and gives the
    stock back, so the catalogue is as the test found it."""
    made: list[str] = []
    stock = inventory.stock(SKU)

    def reserve() -> str:
        order_id = f"msg-test-{uuid.uuid4().hex}"
        made.append(order_id)
        response = inventory.reserve(order_id, SKU, 1)
        assert response.status_code == 201, response.text
        return order_id

    try:
        yield reserve
    finally:
        inventory.sql("DELETE FROM reservations WHERE order_id = ANY(%s)", [made])
        inventory.sql("DELETE FROM notifications WHERE order_id = ANY(%s)", [made])
        inventory.sql("DELETE FROM processed_messages WHERE split_part(message_id, ':', 1) = ANY(%s)", [made])
        inventory.sql("UPDATE products SET stock = %s WHERE sku = %s", [stock, SKU])


def restart_broker(stack: Stack) -> None:
    """Stops and starts the RabbitMQ container, and waits until it speaks AMQP again. A restarted
    container is published on a new host port: the stack's remembered endpoint is dropped (it has
    no public way to refresh one) so everyone after this test reaches the broker where it is now."""
    stack.docker_container("rabbitmq").restart(timeout=10)
    stack._endpoints.pop(("rabbitmq", topology.SERVICES["rabbitmq"].port), None)

    def speaks_amqp() -> bool:
        mq = published(stack, "rabbitmq")
        try:
            return ready(topology.SERVICES["rabbitmq"], mq.host, mq.port)
        except Exception:  # still booting
            return False

    back, waited = wait_for(speaks_amqp, 60, 0.3)
    assert back, f"RabbitMQ did not come back within {waited:.0f}s"


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def inventory(stack: Stack) -> Inventory:
    return Inventory(stack)


@pytest.fixture(scope="module")
def broker(stack: Stack) -> Broker:
    return Broker(stack)


@pytest.fixture(scope="module")
def own_fragile_stack() -> Iterator[Stack]:
    """A fragile stack for this module alone. Toxiproxy's client keeps one global API address
    that every stack start re-points; it is put back as found when this stack goes."""
    saved = (APIConsumer.host, APIConsumer.port)
    try:
        with Stack(sut_mode="fragile") as own:
            yield own
    finally:
        Toxiproxy().update_api_consumer(*saved)


@pytest.fixture(scope="module")
def fragile_broker(own_fragile_stack: Stack) -> Broker:
    return Broker(own_fragile_stack)


@pytest.fixture
def fragile_inventory(own_fragile_stack: Stack, fragile_broker: Broker) -> Iterator[Inventory]:
    """The fragile service with a live consumer. The fragile consumer stays stopped once something
    stopped it (that is what is being shown), so a test after such a one gets a restarted service,
    and the queue is emptied of what stopped it first."""
    inventory = Inventory(own_fragile_stack)
    if not consumer_connected(inventory):
        fragile_broker.purge(QUEUE)
        own_fragile_stack.docker_container(SERVICE).restart(timeout=5)
    connected, waited = wait_for(lambda: consumer_connected(inventory), 60, 0.3)
    assert connected, f"the fragile consumer did not connect within {waited:.0f}s"
    yield inventory
    fragile_broker.purge(QUEUE)


# ---------------------------------------------------------------- dead-lettering

MALFORMED = (b"{not json", b"", b"\xff\xfe not even utf-8")
SCHEMA_INVALID = (
    encode({k: v for k, v in order_event("order.paid", "no-such-order").items() if k != "order_id"}),
    encode(order_event("order.paid", "no-such-order", quantity=0)),
)


def test_bad_messages_are_dead_lettered_with_their_reason_and_the_consumer_goes_on(inventory, broker):
    broker.purge(DLQ)
    since = time.time()
    with orders(inventory) as reserve:
        order_id = reserve()
        poison = encode(order_event("order.paid", f"msg-test-unknown-{uuid.uuid4().hex}"))
        broker.publish(*MALFORMED, *SCHEMA_INVALID, poison)
        broker.publish(encode(order_event("order.paid", order_id)))
        expected = len(MALFORMED) + len(SCHEMA_INVALID) + 1
        confirmed, _ = wait_for(lambda: status(inventory, order_id) == "CONFIRMED", 15, 0.2)
        counted, _ = wait_for(lambda: broker.depth(DLQ) == expected, 15, 0.2)
        dead = broker.drain(DLQ) if counted else []
        left = broker.depth(QUEUE)
        mailed = mails(inventory.stack, order_id)
    assert confirmed, "a valid event published after the bad ones was not processed"
    assert counted and len(dead) == expected, f"{len(dead)} messages in the DLQ, expected {expected}"
    reasons = sorted(str(headers.get("x-reason", "")) for _, headers in dead)
    kinds = [reason.split(":", 1)[0] for reason in reasons]
    assert kinds.count("malformed JSON") == len(MALFORMED), reasons
    assert kinds.count("schema") == len(SCHEMA_INVALID), reasons
    assert kinds.count("poison") == 1 and any("unknown order" in reason for reason in reasons), reasons
    assert {body for body, _ in dead} >= set(MALFORMED), "the DLQ keeps the original bodies"
    assert left == 0, "nothing may be left requeued in the work queue"
    assert len(mailed) == 1
    assert len(inventory.logged(MALFORMED_JSON, since)) == len(MALFORMED), "the manual's line, once per message"
    assert consumer_connected(inventory)


def test_a_malformed_message_stops_the_fragile_consumer_and_nothing_parks_it(fragile_inventory, fragile_broker):
    since = time.time()
    with orders(fragile_inventory) as reserve:
        order_id = reserve()
        fragile_broker.publish(MALFORMED[0])
        logged, _ = wait_for(lambda: fragile_inventory.logged(MALFORMED_JSON, since), 10, 0.2)
        fragile_broker.publish(encode(order_event("order.paid", order_id)))
        confirmed, _ = wait_for(lambda: status(fragile_inventory, order_id) == "CONFIRMED", 5, 0.3)
        dlq = fragile_broker.depth(DLQ)
        connected = consumer_connected(fragile_inventory)
    assert logged, "the manual's line was not logged"
    assert not confirmed, "the fragile consumer went on after a malformed message"
    assert not dlq, "the fragile consumer parked the message in the dead-letter queue"
    assert not connected, "health should show the consumer gone"


# ---------------------------------------------------------------- exactly one mail per order

def test_a_redelivered_or_republished_event_mails_the_customer_once_when_resilient(inventory, broker):
    since = time.time()
    with orders(inventory) as reserve:
        order_id = reserve()
        event = order_event("order.paid", order_id)
        broker.publish(encode(event), encode(event))
        skipped, _ = wait_for(lambda: inventory.logged("duplicate_message_skipped", since,
                                                       message_id=event["message_id"]), 10, 0.2)
        republished = order_event("order.paid", order_id, message_id=f"{order_id}:republished")
        broker.publish(encode(republished))
        handled, _ = wait_for(lambda: inventory.logged("message_processed", since,
                                                       message_id=republished["message_id"]), 10, 0.2)
        mailed = mails(inventory.stack, order_id)
        final = status(inventory, order_id)
    assert skipped, "the second delivery of the same message was not recognised"
    assert handled, "the re-published event was not handled"
    assert len(mailed) == 1, f"{len(mailed)} mails for one order"
    mail = mailed[0]
    assert mail["from"] == "shop@example.com" and mail["to"] == [event["customer_email"]]
    assert mail["subject"] == f"Your order {order_id} is paid"
    assert final == "CONFIRMED"


def test_a_redelivered_event_mails_the_customer_twice_when_fragile(fragile_inventory, fragile_broker):
    with orders(fragile_inventory) as reserve:
        order_id = reserve()
        event = encode(order_event("order.paid", order_id))
        fragile_broker.publish(event, event)
        twice, _ = wait_for(lambda: len(mails(fragile_inventory.stack, order_id)) >= 2, 10, 0.2)
    assert twice, "without dedup each delivery sends its own mail"


# ---------------------------------------------------------------- a broker restart

def test_the_consumer_resumes_after_a_broker_restart_when_resilient(inventory, broker):
    assert consumer_connected(inventory)
    since = time.time()
    restart_broker(inventory.stack)
    with orders(inventory) as reserve:
        order_id = reserve()
        resumed, waited = wait_for(lambda: consumer_connected(inventory), 30, 0.3)
        assert resumed, f"the consumer did not reconnect within {waited:.0f}s"
        broker.publish(encode(order_event("order.paid", order_id)))
        confirmed, _ = wait_for(lambda: status(inventory, order_id) == "CONFIRMED", 15, 0.2)
        mailed = mails(inventory.stack, order_id)
    assert inventory.logged("consumer_disconnected", since), "the outage went unnoticed by the consumer"
    assert confirmed and len(mailed) == 1, "an event published after the restart was not processed"


def test_the_fragile_consumer_stays_gone_after_a_broker_restart(fragile_inventory, fragile_broker):
    restart_broker(fragile_inventory.stack)
    with orders(fragile_inventory) as reserve:
        order_id = reserve()
        fragile_broker.publish(encode(order_event("order.paid", order_id)))
        confirmed, _ = wait_for(lambda: status(fragile_inventory, order_id) == "CONFIRMED", 5, 0.3)
        waiting = fragile_broker.depth(QUEUE)
        connected = consumer_connected(fragile_inventory)
    assert not confirmed, "the fragile consumer should not come back on its own"
    assert waiting and waiting >= 1, "the event should sit unconsumed in the queue"
    assert not connected
