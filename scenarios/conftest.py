"""What every scenario shares: the steady-state check, the shop's observers, the ledger verdict.

Scenarios read: steady state before -> inject -> observe -> heal -> steady state after ->
ledger. Each assertion message starts with a [guard] tag naming what it protects; the fragile
proof (tests/integration/test_fragile_proof.py) checks that each scenario fails on its guard.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from harness.clients import InventoryClient, mint_token, purge
from harness.ledger import check
from harness.timeline import wait_for

STEADY_ORDERS = 2
RECOVERY_BUDGET_S = 20.0


def steady_state(shop: Any, label: str, budget_s: float = RECOVERY_BUDGET_S) -> float:
    """The shop takes and pays orders at once; waits (bounded) for that to be true again.
    Returns how long it took: the recovery time when called right after a heal."""
    def healthy() -> bool:
        ops = [shop.place_order() for _ in range(STEADY_ORDERS)]
        return all(op.status == 201 and op.body.get("status") == "PAID" for op in ops)

    ok, took = wait_for(healthy, budget_s, 0.5)
    assert ok, f"[steady_state_{label}] the shop did not take and pay orders within {budget_s:.0f}s"
    return took


def ledger_verdict(shop: Any, vendor: Any, history: Any) -> None:
    """Every order accepted during the scenario reached one terminal state and was charged once."""
    def settled() -> dict:
        orders = {op.order_id: shop.order(op.order_id) for op in history.accepted()}
        return orders if all(o and o.get("status") in ("PAID", "FAILED", "REJECTED") for o in orders.values()) else {}

    orders, _ = wait_for(settled, RECOVERY_BUDGET_S, 0.5)
    orders = orders or {op.order_id: shop.order(op.order_id) for op in history.accepted()}
    journal = vendor.journal()
    successful = Counter(e["key"] for e in journal if e.get("outcome") == "charged")
    verdict = check(history, orders, vendor.charges(), successful)
    assert verdict.ok, f"[ledger] {verdict.explain()}"


@pytest.fixture
def inventory(stack: Any) -> Iterator[InventoryClient]:
    client = InventoryClient(stack.endpoint("inventory_service").url, mint_token(stack.endpoint("auth_service").url))
    yield client
    client.close()


@pytest.fixture
def clean_dlq(stack: Any) -> Iterator[None]:
    """An empty dead-letter queue before and after (reset between scenarios)."""
    endpoint = stack.endpoint("rabbitmq")
    purge(endpoint.host, endpoint.port, "inventory.order-events.dlq")
    yield
    purge(endpoint.host, endpoint.port, "inventory.order-events.dlq")
