"""Order events on RabbitMQ: names, the JSON Schema every consumer validates against, the topology.

Exchange `orders` (topic) carries `order.paid`, `order.payment_pending` and `order.failed`.
Resilient: the queue dead-letters to `orders.dlx` -> `inventory.order-events.dlq` with the reason
in the headers. Fragile: a plain queue, no dead-lettering.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

EXCHANGE = "orders"
DLX = "orders.dlx"
QUEUE = "inventory.order-events"
DLQ = "inventory.order-events.dlq"
ROUTING = "order.*"
TYPES = ("order.paid", "order.payment_pending", "order.failed")

ORDER_EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["message_id", "type", "order_id", "sku", "quantity", "occurred_at"],
    "properties": {
        "message_id": {"type": "string", "minLength": 1},
        "type": {"enum": list(TYPES)},
        "order_id": {"type": "string", "minLength": 1},
        "sku": {"type": "string", "minLength": 1},
        "quantity": {"type": "integer", "minimum": 1},
        "amount_cents": {"type": "integer", "minimum": 0},
        "customer_email": {"type": "string"},
        "occurred_at": {"type": "number"},
    },
}


def order_event(kind: str, order_id: str, sku: str, quantity: int, amount_cents: int,
                customer_email: str, message_id: str | None = None) -> dict[str, Any]:
    """An event body; the message id is stable per order and kind so a re-publish is a duplicate."""
    return {"message_id": message_id or f"{order_id}:{kind}", "type": kind, "order_id": order_id,
            "sku": sku, "quantity": quantity, "amount_cents": amount_cents,
            "customer_email": customer_email, "occurred_at": time.time()}


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def new_message_id() -> str:
    return uuid.uuid4().hex
