"""Message faults: bad or repeated order events published straight to RabbitMQ.

The manual's root cause 4 and seed 002. The harness publishes with publisher confirms, so
"landed" means the broker took every message; what the consumer then does with them is what
the scenarios judge (DLQ count, e-mails per order). Published messages can't be taken back:
heal has nothing to undo, and the DLQ is the evidence.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, ClassVar

import pika
from pydantic import Field

from harness import topology
from harness.faults.base import Fault, Params

EXCHANGE = "orders"


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


class Publish(Fault):
    """Base: builds the bodies, publishes them confirmed; nothing to heal afterwards."""

    family = "message"
    targets = ("rabbitmq",)
    Params: ClassVar = CountParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.published = 0
        self.expected = -1

    def bodies(self) -> list[tuple[str, bytes, str]]:
        """(routing key, body, message id) of each message to publish."""
        raise NotImplementedError

    def _apply(self) -> None:
        endpoint = self.stack.endpoint("rabbitmq")
        params = pika.ConnectionParameters(
            host=endpoint.host, port=endpoint.port, connection_attempts=3, retry_delay=0.5,
            credentials=pika.PlainCredentials(topology.BROKER_USER, topology.BROKER_PASSWORD))
        connection = pika.BlockingConnection(params)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            messages = self.bodies()
            self.expected = len(messages)
            for routing_key, body, message_id in messages:
                channel.basic_publish(EXCHANGE, routing_key, body, pika.BasicProperties(
                    message_id=message_id, content_type="application/json", delivery_mode=2), mandatory=False)
                self.published += 1
        finally:
            connection.close()

    def _landed(self) -> bool:
        return self.published == self.expected  # every publish was confirmed by the broker

    def undo_state(self) -> dict[str, Any]:
        return {}

    @classmethod
    def undo_from(cls, state: dict[str, Any]) -> None:
        return None  # a published message can't be taken back


class MalformedJson(Publish):
    name = "message.malformed_json"
    description = "publish messages whose body is not JSON"

    def bodies(self) -> list[tuple[str, bytes, str]]:
        return [(self.params.routing_key, b'{"order_id": "broken', f"malformed-{uuid.uuid4().hex}")
                for _ in range(self.params.count)]


class SchemaInvalid(Publish):
    name = "message.schema_invalid"
    description = "publish JSON messages that break the order-event schema (quantity: -1, no sku)"

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

    def bodies(self) -> list[tuple[str, bytes, str]]:
        out = []
        for _ in range(self.params.count):
            event = valid_event(self.params.routing_key, f"poison-{uuid.uuid4().hex}", "sku-1", 1, "x@example.com")
            out.append((self.params.routing_key, json.dumps(event).encode(), event["message_id"]))
        return out


class Duplicate(Publish):
    name = "message.duplicate"
    description = "publish the same order.paid event several times (a redelivery, as in the duplicate-notification incident)"
    Params = EventParams

    def bodies(self) -> list[tuple[str, bytes, str]]:
        p = self.params
        event = valid_event("order.paid", p.order_id, p.sku, p.quantity, p.customer_email)
        return [("order.paid", json.dumps(event).encode(), event["message_id"])] * p.copies


class OutOfOrder(Publish):
    name = "message.out_of_order"
    description = "publish order.paid and then an older order.payment_pending for the same order"
    Params = EventParams

    def bodies(self) -> list[tuple[str, bytes, str]]:
        p = self.params
        paid = valid_event("order.paid", p.order_id, p.sku, p.quantity, p.customer_email)
        pending = valid_event("order.payment_pending", p.order_id, p.sku, p.quantity, p.customer_email)
        pending["occurred_at"] = paid["occurred_at"] - 5
        return [(e["type"], json.dumps(e).encode(), e["message_id"]) for e in (paid, pending)]


FAULTS = (MalformedJson, SchemaInvalid, Poison, Duplicate, OutOfOrder)
