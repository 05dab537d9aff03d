"""The shop's customers: for harness.load, the Locust ones (locustfile.py next to this file), each
with a valid customer token minted from the stack's auth_service; for scenarios and exploration,
one customer's retries of an order until it has a final answer."""

from __future__ import annotations

import time
from pathlib import Path

from harness.history import Operation
from harness.load import Workload
from harness.view import StackView
from scenarios.shop.clients import ShopClient, mint_token
from scenarios.shop.ledger import TERMINAL

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
RETRY_BUDGET_S = 20.0  # one order's retries, from its first attempt (the scenarios' recovery budget)
RETRY_PAUSE_S = 0.25  # between attempts when the shop names no Retry-After
RETRY_AFTER_CAP_S = 1.0  # a client honours Retry-After, but a scenario's retries stay quick


def customers(stack: StackView, ask_again: bool = False) -> Workload:
    """Customers placing orders through the edge. ask_again: a customer told PAYMENT_PENDING sends
    the same order again under the same key (the storm's customers, so a broken idempotency key
    shows as a second order)."""
    return Workload(LOCUSTFILE, {"CHAOS_TOKEN": mint_token(stack), "CHAOS_ASK_AGAIN": "1" if ask_again else "0"})


def retry_until_answered(shop: ShopClient, key: str, budget_s: float = RETRY_BUDGET_S, tries: int = 40,
                         timeout_s: float | None = None) -> list[Operation]:
    """A client told 503 + Retry-After retries the same request (same key) until it gets a final
    answer: a terminal order, or a 4xx. Bounded in tries and time; `timeout_s` is the client's
    patience per attempt (default: the client's own)."""
    ops: list[Operation] = []
    deadline = time.monotonic() + budget_s
    while len(ops) < tries and time.monotonic() < deadline:
        op = shop.place_order(key=key, timeout_s=timeout_s)
        ops.append(op)
        if op.status is not None and (
            400 <= op.status < 500 or (op.status < 300 and op.body.get("status") in TERMINAL)
        ):
            break
        try:
            pause = float(op.headers.get("retry-after", RETRY_PAUSE_S))
        except ValueError:
            pause = RETRY_PAUSE_S
        time.sleep(min(RETRY_AFTER_CAP_S, max(RETRY_PAUSE_S, pause)))
    return ops


def not_pending_in_time(ops: list[Operation], budget_s: float) -> str | None:
    """What breaks the fallback's promise for orders placed while the vendor can't charge: each
    answered 202 PAYMENT_PENDING within budget_s. None when every one was; else what was not."""
    bad = [(op.status, op.body.get("status", op.body)) for op in ops
           if op.status != 202 or op.body.get("status") != "PAYMENT_PENDING"]
    slow = [round(op.latency_s, 2) for op in ops if op.latency_s > budget_s]
    if not bad and not slow:
        return None
    return f"not all accepted as PAYMENT_PENDING within {budget_s}s: not accepted {bad}, slower {slow}"
