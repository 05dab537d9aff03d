"""A Jepsen-style history of client operations: what a system's clients asked and what they heard.

Each operation is recorded when it is invoked and when it completes, with the outcome the client
could know: ok, fail, or unknown (a timeout: the system may have acted on it). The history holds
no judgement: a system's checker (the shop's is scenarios/shop/ledger.py) reads it afterwards
against what the outside world says, and the reports show it as the scenario's operations.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["pending", "ok", "fail", "unknown"]


@dataclass
class Operation:
    """One request of a client: `key` is the unit the client reasons about (retries reuse it),
    `body` the answer; `order_id` is the id the answer named (its `id`), if any."""

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
        """What the system took responsibility for (any 2xx naming an id)."""
        return [op for op in self.ops if op.outcome == "ok" and op.order_id]


def op_record(op: Operation) -> dict[str, Any]:
    """An operation as the reports keep it (plain JSON, no headers or bodies)."""
    return {"index": op.index, "kind": op.kind, "invoked": op.invoked, "completed": op.completed,
            "latency_s": None if op.completed is None else round(op.completed - op.invoked, 4),
            "outcome": op.outcome, "status": op.status, "order_id": op.order_id,
            "order_status": op.body.get("status") if isinstance(op.body.get("status"), str) else None}
