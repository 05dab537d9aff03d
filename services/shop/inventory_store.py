"""inventory_service's pure parts: the schema, what a product row may be served as, how an order
event is read, which reservation transitions an event makes, and the customer's mail.

Nothing here touches the network, so every decision the service takes about a row or a message
is a plain function of its input.
"""

from __future__ import annotations

import json
from email.message import EmailMessage
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from shop.logs import MALFORMED_JSON

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    sku text PRIMARY KEY,
    name text,
    price_cents integer,
    stock integer
);
CREATE TABLE IF NOT EXISTS reservations (
    order_id text PRIMARY KEY,
    sku text NOT NULL,
    quantity integer NOT NULL CHECK (quantity > 0),
    status text NOT NULL CHECK (status IN ('RESERVED', 'CONFIRMED', 'RELEASED')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS processed_messages (
    message_id text PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS notifications (
    order_id text PRIMARY KEY,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    sending_until timestamptz,
    sent_at timestamptz
);
CREATE TABLE IF NOT EXISTS quarantine (
    sku text PRIMARY KEY,
    reason text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
)
"""

INITIAL_STOCK = 1_000_000
# (sku, name, price_cents): inserted once; a restart never resets stock that orders have used.
CATALOGUE = tuple((f"sku-{n}", f"Product {n}", 1250 * n) for n in range(1, 6))
SEED = "INSERT INTO products (sku, name, price_cents, stock) VALUES (%s, %s, %s, %s) ON CONFLICT (sku) DO NOTHING"
PRODUCT_FIELDS = ("sku", "name", "price_cents", "stock")

SENDER = "shop@example.com"
# The reservation status each event moves a RESERVED reservation to; other events change nothing.
STOCK_RELEASED = "RELEASED"
TARGET_STATUS = {"order.paid": "CONFIRMED", "order.failed": STOCK_RELEASED}


# ---------------------------------------------------------------- products

def null_fields(row: dict[str, Any]) -> list[str]:
    """The columns of a product row that are NULL (the schema allows it; the catalogue must not)."""
    return [name for name in PRODUCT_FIELDS if row.get(name) is None]


def quarantine_reason(row: dict[str, Any]) -> str | None:
    """Why a row can't be served, or None when it can."""
    missing = null_fields(row)
    return f"null {', '.join(missing)}" if missing else None


def render(row: dict[str, Any]) -> dict[str, Any]:
    """A product as the API shows it. It computes on every column, so a NULL one raises
    (TypeError or AttributeError): the fragile shop calls it on rows nobody checked."""
    return {
        "sku": row["sku"],
        "name": row["name"].strip(),
        "price_cents": row["price_cents"],
        "price": f"{row['price_cents'] / 100:.2f}",
        "stock": row["stock"],
        "in_stock": row["stock"] > 0,
    }


# ---------------------------------------------------------------- order events

class Rejected(Exception):
    """A message that can never be processed: it goes to the dead-letter queue with its reason."""

    kind = "rejected"
    log_event = "message_rejected"

    @property
    def reason(self) -> str:
        return f"{self.kind}: {self}"


class Malformed(Rejected):
    kind = "malformed JSON"
    log_event = MALFORMED_JSON


class SchemaInvalid(Rejected):
    kind = "schema"
    log_event = "message_schema_invalid"


class Poison(Rejected):
    """Well-formed and valid, but contradicts what inventory knows (unknown order, say)."""

    kind = "poison"
    log_event = "poison_message"


def parse_event(body: bytes, validator: Draft202012Validator | None) -> dict[str, Any]:
    """The event in a message body, or Malformed / SchemaInvalid saying why not (without a
    validator, any JSON passes: what schema_validation off leaves to the handler)."""
    try:
        event = json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        raise Malformed(str(exc)) from None
    if validator is None:
        return event
    error = best_match(validator.iter_errors(event))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path)
        raise SchemaInvalid(f"{where}: {error.message}" if where else error.message)
    return event


def transition(current: str | None, kind: str) -> str | None:
    """The status an event moves a reservation to, None when it changes nothing (a repeat, or an
    event without effect), or Poison when the event contradicts the reservation's state."""
    target = TARGET_STATUS.get(kind)
    if target is None:
        return None
    if current is None and target == STOCK_RELEASED:
        return None  # an order that failed before it reserved anything: nothing to release
    if current is None:
        raise Poison("unknown order: no reservation for it")
    if current == target:
        return None
    if current != "RESERVED":
        raise Poison(f"{kind} for a {current} reservation")
    return target


def paid_mail(order_id: str, to: str) -> EmailMessage:
    """The one mail a customer gets when an order is paid."""
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = to
    message["Subject"] = f"Your order {order_id} is paid"
    message["X-Order-Id"] = order_id
    message.set_content(f"Thank you: payment for order {order_id} was received and your items are on their way.\n")
    return message
