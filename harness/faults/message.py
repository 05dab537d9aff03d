"""Message faults: bad or repeated order events published straight to RabbitMQ.

The manual's root cause 4 and the duplicate-notification incident. The harness publishes with publisher confirms and
``mandatory``: the broker confirms each message only once it routed it to a queue, and one it
could route nowhere fails the inject (nothing would ever see it). Then the proof observes the
broker: every message is seen waiting in the shop's work queue or its dead-letter queue, or the
work queue has a consumer that took them (its depth back where it was) or lost it (its consumer
count changed). What the consumer then does with them is what the scenarios judge (DLQ count,
e-mails per order). Published messages can't be taken back: heal has nothing to undo.

The consumer's own fault (message.consumer_kill) goes through the consuming service's control
endpoint instead (capability `consumer`): its consumer ends and stays down for a while, the
service itself keeps running. Its proof is the same broker's word: no consumer on the work queue;
healed, one again.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
import pika
import pika.exceptions
from pydantic import Field

from harness import topology
from harness.datastores import broker_credentials
from harness.errors import HarnessError
from harness.faults.base import Fault, Params, run_container
from harness.view import StackView

EXCHANGE = "orders"
WORK_QUEUE = "inventory.order-events"  # the shop's consumer reads it (services/shop/events.py)
DEAD_LETTERS = f"{WORK_QUEUE}.dlq"  # only the resilient shop has one


class CountParams(Params):
    count: int = Field(default=3, ge=1, le=1000)
    routing_key: str = Field(default="order.paid", min_length=1)


class EventParams(Params):
    order_id: str = Field(min_length=1, description="an order the shop knows (reserved)")
    sku: str = "sku-1"
    quantity: int = Field(default=1, ge=1)
    customer_email: str = "customer@example.com"
    copies: int = Field(default=2, ge=2, le=20)


def valid_event(kind: str, order_id: str, sku: str, quantity: int, customer_email: str) -> dict[str, Any]:
    return {"message_id": f"{order_id}:{kind}", "type": kind, "order_id": order_id, "sku": sku,
            "quantity": quantity, "amount_cents": 100, "customer_email": customer_email,
            "occurred_at": time.time()}


@dataclass(frozen=True)
class QueueState:
    """What the broker says of the shop's queues at one moment (passive declares)."""

    depth: int
    consumers: int
    dead: int  # messages in the dead-letter queue (0 where there is none)


def _passive(amqp: Any, queue: str) -> Any | None:
    """A queue's declare-ok, or None when it does not exist (the broker then closes the channel)."""
    try:
        return amqp.queue_declare(queue, passive=True).method
    except pika.exceptions.ChannelClosedByBroker:
        return None


def queue_state(connection: Any) -> QueueState | None:
    """The work queue's depth and consumers and the dead letters; None without a work queue."""
    work = _passive(connection.channel(), WORK_QUEUE)
    if work is None:
        return None
    dead = _passive(connection.channel(), DEAD_LETTERS)
    return QueueState(work.message_count, work.consumer_count, dead.message_count if dead else 0)


def seen_by_broker(before: QueueState, now: QueueState, count: int) -> str | None:
    """How the broker shows the messages arrived, or None while it does not (yet)."""
    held = (now.depth - before.depth) + (now.dead - before.dead)
    if held >= count:
        return "held"  # every message waits in the work queue or was dead-lettered
    if now.consumers != before.consumers:
        return "consumers changed"  # a consumer went away (or came) with them
    if now.consumers >= 1 and now.depth <= before.depth:
        return "taken by a consumer"  # routed (mandatory), and the queue's consumer drained it
    return None


class Publish(Fault):
    """Base: builds the bodies, publishes them confirmed and mandatory; nothing to heal afterwards."""

    family = "message"
    capability = "order_events"  # the broker of the shop's orders exchange and its work queue
    proves = ("the broker confirms each message routed to a queue (mandatory: unroutable fails), then the work "
              "queue or DLQ is seen holding them, or its consumer taking them")
    Params: ClassVar[type[Params]] = CountParams
    params: CountParams | EventParams  # each subclass names its own

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.published = 0
        self.expected = -1
        self.before: QueueState | None = None

    def bodies(self) -> list[tuple[str, bytes, str]]:
        """(routing key, body, message id) of each message to publish."""
        raise NotImplementedError

    def _connect(self) -> Any:
        endpoint = self.stack.endpoint(self.target)
        return pika.BlockingConnection(pika.ConnectionParameters(
            host=endpoint.host, port=endpoint.port, connection_attempts=3, retry_delay=0.5,
            credentials=broker_credentials(self.stack.topology, self.target)))

    def _apply(self) -> None:
        connection = self._connect()
        try:
            self.before = queue_state(connection)
            if self.before is None:
                raise HarnessError(f"{self.name}: the broker has no queue {WORK_QUEUE}, so nothing would receive "
                                   "the messages: is inventory_service up?")
            channel = connection.channel()
            channel.confirm_delivery()
            messages = self.bodies()
            self.expected = len(messages)
            for routing_key, body, message_id in messages:
                self._publish(channel, routing_key, body, message_id)
        finally:
            if connection.is_open:
                connection.close()

    def _publish(self, channel: Any, routing_key: str, body: bytes, message_id: str) -> None:
        """One message, confirmed; unroutable (no queue bound for its key) or refused is an error."""
        try:
            channel.basic_publish(EXCHANGE, routing_key, body, pika.BasicProperties(
                message_id=message_id, content_type="application/json", delivery_mode=2), mandatory=True)
        except pika.exceptions.UnroutableError:
            raise HarnessError(f"{self.name}: the broker routed no queue for {EXCHANGE}/{routing_key} "
                               f"(published {self.published} of {self.expected}): nothing would receive it") from None
        except pika.exceptions.NackError:
            raise HarnessError(f"{self.name}: the broker refused a message (nack) after {self.published} "
                               f"of {self.expected}") from None
        self.published += 1

    def _landed(self) -> bool:
        if self.published != self.expected or self.before is None:
            return False
        connection = self._connect()
        try:
            now = queue_state(connection)
        finally:
            connection.close()
        how = seen_by_broker(self.before, now, self.expected) if now is not None else None
        if how:
            self.evidence = {"how": how, "before": vars(self.before), "after": vars(now)}
        return how is not None

    def undo_state(self) -> dict[str, Any]:
        return {}

    @classmethod
    def undo_from(cls, state: dict[str, Any], stack: StackView) -> None:
        return None  # a published message can't be taken back


class MalformedJson(Publish):
    name = "message.malformed_json"
    description = "publish messages whose body is not JSON"
    params: CountParams

    def bodies(self) -> list[tuple[str, bytes, str]]:
        return [(self.params.routing_key, b'{"order_id": "broken', f"malformed-{uuid.uuid4().hex}")
                for _ in range(self.params.count)]


class SchemaInvalid(Publish):
    name = "message.schema_invalid"
    description = "publish JSON messages that break the order-event schema (quantity: -1, no sku)"
    params: CountParams

    def bodies(self) -> list[tuple[str, bytes, str]]:
        out = []
        for _ in range(self.params.count):
            message_id = f"invalid-{uuid.uuid4().hex}"
            body = {"message_id": message_id, "type": self.params.routing_key, "order_id": uuid.uuid4().hex,
                    "quantity": -1, "occurred_at": time.time()}
            out.append((self.params.routing_key, json.dumps(body).encode(), message_id))
        return out


class Poison(Publish):
    name = "message.poison"
    description = "publish valid-looking events for orders nobody knows (processing fails every time)"
    params: CountParams

    def bodies(self) -> list[tuple[str, bytes, str]]:
        out = []
        for _ in range(self.params.count):
            event = valid_event(self.params.routing_key, f"poison-{uuid.uuid4().hex}", "sku-1", 1, "x@example.com")
            out.append((self.params.routing_key, json.dumps(event).encode(), event["message_id"]))
        return out


class Duplicate(Publish):
    name = "message.duplicate"
    description = (
        "publish the same order.paid event several times (a redelivery, as in the duplicate-notification incident)"
    )
    Params = EventParams
    params: EventParams

    def bodies(self) -> list[tuple[str, bytes, str]]:
        p = self.params
        event = valid_event("order.paid", p.order_id, p.sku, p.quantity, p.customer_email)
        return [("order.paid", json.dumps(event).encode(), event["message_id"])] * p.copies


class OutOfOrder(Publish):
    name = "message.out_of_order"
    description = "publish order.paid and then an older order.payment_pending for the same order"
    Params = EventParams
    params: EventParams

    def bodies(self) -> list[tuple[str, bytes, str]]:
        p = self.params
        paid = valid_event("order.paid", p.order_id, p.sku, p.quantity, p.customer_email)
        pending = valid_event("order.payment_pending", p.order_id, p.sku, p.quantity, p.customer_email)
        pending["occurred_at"] = paid["occurred_at"] - 5
        return [(e["type"], json.dumps(e).encode(), e["message_id"]) for e in (paid, pending)]


CONSUMER_CONTROL = "/_control/consumer"  # POST .../kill {"down_s"}, POST .../heal
EVENTS_CAPABILITY = "order_events"
STOPPED = ("created", "exited", "dead", "removing")  # a service in these states holds no fault in memory


class ConsumerKillParams(Params):
    down_s: float = Field(default=10.0, ge=0.0, le=120.0,
                          description="how long every consumer started after the kill dies at once")


def consumers_now(stack: StackView) -> int | None:
    """The work queue's consumers as the broker of the order events counts them; None when the
    topology has no such broker or the queue does not exist."""
    brokers = stack.topology.with_capability(EVENTS_CAPABILITY)
    if not brokers:
        return None
    endpoint = stack.endpoint(brokers[0])
    connection = pika.BlockingConnection(pika.ConnectionParameters(
        host=endpoint.host, port=endpoint.port, connection_attempts=3, retry_delay=0.5,
        credentials=broker_credentials(stack.topology, brokers[0])))
    try:
        found = queue_state(connection)
    finally:
        if connection.is_open:
            connection.close()
    return None if found is None else found.consumers


def _consumer_control(stack: StackView, service: str, action: str, body: dict[str, Any] | None = None) -> None:
    url = f"{stack.endpoint(service).url}{CONSUMER_CONTROL}/{action}"
    try:
        httpx.post(url, json=body or {}, headers=topology.control_headers(stack.control_secret),
                   timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        raise HarnessError(f"{service}'s consumer control refused {action}: {exc}") from None


class ConsumerKill(Fault):
    """The RabbitMQ-configuration incident's dead worker: the consumer inside the service ends (the
    service stays up and answers), and for down_s every consumer started dies at once, as one
    that crashes on start. What brings it back is the service's supervisor, or the heal: the
    restart by hand an operator would do."""

    name = "message.consumer_kill"
    family = "message"
    capability = "consumer"
    description = "kill the order-event consumer inside its service (not the service); restarts die for down_s"
    proves = "the broker shows no consumer on the work queue; healed, one again"
    Params = ConsumerKillParams
    params: ConsumerKillParams
    healing_timeout_s = 20.0
    poll_s = 0.2

    def _prepare(self) -> None:
        if not consumers_now(self.stack):
            raise HarnessError(f"{self.name}: the broker shows no consumer on {WORK_QUEUE} to kill: "
                               f"is {self.target}'s consumer up?")

    def _apply(self) -> None:
        _consumer_control(self.stack, self.target, "kill", {"down_s": self.params.down_s})

    def _landed(self) -> bool:
        return consumers_now(self.stack) == 0

    def _healed(self) -> bool:
        return (consumers_now(self.stack) or 0) >= 1

    def undo_state(self) -> dict[str, Any]:
        return {"service": self.target}

    @classmethod
    def undo_from(cls, state: dict[str, Any], stack: StackView) -> None:
        """Ends the hold-down and starts the consumer if none runs; a stopped service's fault died with it."""
        if run_container(stack, state["service"]).status in STOPPED:
            return
        _consumer_control(stack, state["service"], "heal")


FAULTS = (MalformedJson, SchemaInvalid, Poison, Duplicate, OutOfOrder, ConsumerKill)
