"""Root cause 1 of the manual, its permanent fix: multi-vendor. The primary payment vendor
answers 503; the shop has a second one.

What the manual prescribes, and what this proves on the resilient shop: once the primary's
circuit breaker is open, new orders are charged by the second vendor at once (the customer gets
201 PAID, not a pending order); no order is charged at both vendors (idempotency holds at one
vendor only); and once the primary is back, new orders are charged by it again. Each vendor is
judged from its own charge records, never from the shop's word.

Baseline -> inject (the primary down) -> observe -> heal -> verify (the primary takes over again,
steady state, the ledger across both vendors).
"""

from __future__ import annotations

import time

import pytest
from conftest import ledger_verdict

from harness.guards import expect

ORDERS_DURING_OUTAGE = 8
ORDER_INTERVAL_S = 0.2
# The breaker opens at the primary's 5th refusal (breaker_threshold; services/shop/settings.py)
# and one order makes 4 attempts (retry_attempts): the first order's retries all meet the
# primary, the second's first attempt opens the breaker. From the third order on, none meets it.
FIRST_FAILED_OVER = 2
RETURN_BUDGET_S = 10.0  # the primary's breaker reset (2 s) and the settler's call that closes it
RETURN_INTERVAL_S = 0.5


@pytest.mark.chaos(root_cause="payment_gateway_outage",
                   guards={"failover": "multi_vendor", "one_vendor_per_order": "multi_vendor",
                           "primary_again": "multi_vendor"},
                   protects={"failover": "vendor_failover", "one_vendor_per_order": "vendor_failover",
                             "primary_again": "vendor_failover"})
def test_vendor_failover(stack, chaos, shop, vendor, vendors, history, steady, evidence, scenario_record):
    steady("before")
    secondary = next(name for name in vendors.clients if name != vendor.SERVICE)

    with chaos.inject("http.status", target=vendor.SERVICE, status=503):
        during = shop.place_stream(ORDERS_DURING_OUTAGE, ORDER_INTERVAL_S)
    healed = time.time()

    # The primary is back: a new order is charged by it again (bounded: its breaker must let a
    # call through first). The orders placed meanwhile are judged by the ledger like any other.
    def charged_by_primary() -> bool:
        op = shop.place_order()
        return op.status == 201 and op.order_id in {c["order_id"] for c in vendor.charges().values()}

    deadline, returned = time.monotonic() + RETURN_BUDGET_S, False
    while not returned and time.monotonic() < deadline:
        returned = charged_by_primary()
        time.sleep(0 if returned else RETURN_INTERVAL_S)
    returned_s = time.time() - healed

    charges = vendors.charges()
    at = {name: {c["order_id"] for c in charges if c["vendor"] == name} for name in vendors.clients}
    scenario_record.update(
        answers=[op.status for op in during], returned_s=round(returned_s, 2),
        charged_during_outage={name: sum(op.order_id in ids for op in during) for name, ids in at.items()})

    # Failover: once the breaker stopped calling the primary, every order was paid at once, and
    # the second vendor's own records hold its charge.
    failed_over = during[FIRST_FAILED_OVER:]
    not_paid = [(op.status, op.body.get("status")) for op in failed_over if op.status != 201]
    not_at_secondary = [op.order_id for op in failed_over if op.order_id not in at[secondary]]
    expect("failover", not not_paid and not not_at_secondary,
           f"orders placed while the primary was down were not paid by {secondary}: "
           f"answered {not_paid}, not in its charges {not_at_secondary}")
    # Never both: no order of this test has a charge at more than one vendor.
    placed = {op.order_id for op in history.ops if op.order_id}
    both = sorted(oid for oid in placed if sum(oid in ids for ids in at.values()) > 1)
    expect("one_vendor_per_order", not both, f"orders charged at more than one vendor: {both}")
    expect("primary_again", returned,
           f"no new order was charged by {vendor.SERVICE} within {RETURN_BUDGET_S:.0f}s after it was back")
    steady("after")
    ledger_verdict(evidence, history)
