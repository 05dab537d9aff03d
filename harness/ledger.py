"""A Jepsen-style history of client operations and the checker that judges it afterwards.

Each operation is recorded when it is invoked and when it completes, with the outcome the
client could know: ok, fail, or unknown (a timeout: the shop may have acted on it). The
checker then reads the whole history against the shop's and the vendor's final state:
every accepted order reaches exactly one terminal state, none is lost, none charged twice.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["pending", "ok", "fail", "unknown"]
TERMINAL = {"PAID", "FAILED", "REJECTED"}


@dataclass
class Operation:
    index: int
    kind: str
    key: str
    request: dict[str, Any]
    invoked: float
    completed: float | None = None
    outcome: Outcome = "pending"
    status: int | None = None
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def latency_s(self) -> float:
        return (self.completed or time.time()) - self.invoked

    @property
    def order_id(self) -> str | None:
        return self.body.get("id")


class History:
    """An append-only, thread-safe list of operations."""

    def __init__(self) -> None:
        self.ops: list[Operation] = []
        self._lock = threading.Lock()

    def invoke(self, kind: str, key: str, request: dict[str, Any]) -> Operation:
        with self._lock:
            op = Operation(len(self.ops), kind, key, request, time.time())
            self.ops.append(op)
            return op

    def complete(self, op: Operation, outcome: Outcome, status: int | None, body: dict[str, Any]) -> Operation:
        op.completed, op.outcome, op.status, op.body = time.time(), outcome, status, body
        return op

    def between(self, start: float, end: float) -> list[Operation]:
        return [op for op in self.ops if start <= op.invoked <= end]

    def accepted(self) -> list[Operation]:
        """Orders the shop took responsibility for (any 2xx with an order id)."""
        return [op for op in self.ops if op.outcome == "ok" and op.order_id]


@dataclass
class Verdict:
    lost: list[str]
    not_terminal: dict[str, str]
    charged_twice: dict[str, int]
    never_charged: list[str]

    @property
    def ok(self) -> bool:
        return not (self.lost or self.not_terminal or self.charged_twice or self.never_charged)

    def explain(self) -> str:
        return (f"lost={self.lost} not_terminal={self.not_terminal} "
                f"charged_twice={self.charged_twice} paid_but_never_charged={self.never_charged}")


def check(history: History, orders: dict[str, dict | None], charges: dict[str, dict],
          successful_charges: dict[str, int]) -> Verdict:
    """Judges the history against final state.

    ``orders`` maps each accepted order id to what the shop now says of it (None: unknown to
    the shop, i.e. lost); ``charges`` is the vendor's charge table by idempotency key (the order
    id); ``successful_charges`` counts the vendor's non-replayed charge answers per key.
    """
    lost, not_terminal, never_charged = [], {}, []
    for op in history.accepted():
        order = orders.get(op.order_id)
        if order is None:
            lost.append(op.order_id)
            continue
        if order.get("status") not in TERMINAL:
            not_terminal[op.order_id] = order.get("status")
        if order.get("status") == "PAID" and op.order_id not in charges:
            never_charged.append(op.order_id)
    charged_twice = {key: count for key, count in successful_charges.items() if count > 1}
    return Verdict(lost, not_terminal, charged_twice, never_charged)
