"""The shop's clients: its edge (the customer's view), the payment vendor simulator's control API,
the mail half of its alert sink, and inventory_service seen directly.

Every order placed goes into the scenario's history (harness.history: invoke and completion, with
times), so scenarios judge what happened from the history afterwards (scenarios/shop/ledger.py)
rather than from one probe.

The shop's control endpoints ask for the run's control secret (topology.CONTROL_HEADER); the
clients send the stack's. The vendor's and the sink's lists are bounded and read after a cursor
(harness.feeds), so a kept stack's history is read, never wiped. A system of your own writes its
clients the same way: its edge from `stack.edge_url`, its observers from harness.feeds.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from harness.alerts import AlertReader
from harness.feeds import Feeds, answer
from harness.history import History, Operation, Outcome
from harness.topology import control_headers
from harness.view import StackView


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

    def system_health(self) -> dict[str, Any]:
        """GET /health/system: every service's score, as the on-call engineer reads it."""
        return _json(self.http.get("/health/system"))

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
class VendorClient(Feeds):
    """The payment vendor simulator's control API, journal and charges."""

    FEEDS: ClassVar[dict[str, str]] = {"journal": "/_control/journal", "charges": "/_control/charges"}
    SERVICE: ClassVar[str] = "payment_gateway"

    def set_fault(self, status: int, duration_s: float | None = None, retry_after: int | None = None) -> dict[str, Any]:
        response = self.http.post("/_control/fault", json={"status": status, "duration_s": duration_s,
                                                           "retry_after": retry_after})
        return answer(response)

    def clear_fault(self) -> dict[str, Any]:
        return answer(self.http.delete("/_control/fault"))

    def status_page(self) -> dict[str, Any]:
        """The vendor's public status page (what the manual's first response reads)."""
        return answer(self.http.get("/status"))

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
class SinkClient(AlertReader):
    """What the shop told the outside world: Slack-format alerts (the sink is the shop's receiver
    of the `alerts` capability) and customer e-mails."""

    FEEDS: ClassVar[dict[str, str]] = {**AlertReader.FEEDS, "mails": "/mails"}

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


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"raw": response.text[:200]}
    return body if isinstance(body, dict) else {"value": body}

