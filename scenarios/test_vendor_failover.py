"""Root cause 1 of the manual, its permanent fix: multi-vendor. The primary payment vendor
answers 503; the shop has a second one.

What the manual prescribes, and what this proves on the resilient shop: once the primary's
circuit breaker is open, new orders are charged by the second vendor at once (the customer gets
201 PAID, not a pending order); no order is charged at both vendors (idempotency holds at one
vendor only); and once the primary is back, new orders are charged by it again. Each vendor is
judged from its own charge records, never from the shop's word.

Baseline -> inject (the primary down) -> observe -> heal -> verify (the primary takes over again,
steady state, the ledger across both vendors). Then the primary turns slow instead: it charges
but answers after the gateway's timeout, so the gateway cannot know whether the order was
charged; once the breaker opens, that order must wait for the primary (it may be charged there
already) and never be sent to the second vendor, while new orders still are.
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
SLOW_MS = 3000  # longer than the gateway's payment timeout (2 s): the charge is made, its answer lost
# The primary slow, and refusing its first 4 charges (one order's attempts) at once, before the
# charge: the breaker is one failure from opening when the next order's call reaches the slow
# primary and times out (the 5th failure); its retry finds the breaker open, the order after it
# fails over.
REFUSED_FIRST = 4
SLOW_ORDERS = 2


@pytest.mark.chaos(root_cause="payment_gateway_outage",
                   guards={"failover": "multi_vendor"}, protects={"failover": "vendor_failover"})
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

    # A short act: the slow vendor's health is red, and a long red trips the guardrail.
    with chaos.inject("http.slow_body", target=vendor.SERVICE, delay_ms=SLOW_MS), \
            chaos.inject("http.first_n", target=vendor.SERVICE, count=REFUSED_FIRST, status=503):
        slow = [shop.place_order() for _ in range(1 + SLOW_ORDERS)]

    charges = vendors.charges()
    at = {name: {c["order_id"] for c in charges if c["vendor"] == name} for name in vendors.clients}
    scenario_record.update(
        answers=[op.status for op in during], returned_s=round(returned_s, 2),
        answers_while_slow=[op.status for op in slow],
        charged_during_outage={name: sum(op.order_id in ids for op in during) for name, ids in at.items()})

    # Failover: once the breaker stopped calling the primary, every order was paid at once, and
    # the second vendor's own records hold its charge.
    failed_over = during[FIRST_FAILED_OVER:]
    not_paid = [(op.status, op.body.get("status")) for op in failed_over if op.status != 201]
    not_at_secondary = [op.order_id for op in failed_over if op.order_id not in at[secondary]]
    expect("failover", not not_paid and not not_at_secondary,
           f"orders placed while the primary was down were not paid by {secondary}: "
           f"answered {not_paid}, not in its charges {not_at_secondary}")
    expect("failover", returned,
           f"no new order was charged by {vendor.SERVICE} within {RETURN_BUDGET_S:.0f}s after it was back")
    steady("after")  # the slow primary's charges have arrived, and the settler had its turn
    # Never both: no order of this test has a charge at more than one vendor, read again now that
    # the slow primary's charges are in and its pending orders settled.
    charges = vendors.charges()
    placed = {op.order_id for op in history.ops if op.order_id}
    vendors_of = {oid: sorted({c["vendor"] for c in charges if c["order_id"] == oid}) for oid in placed}
    both = {oid: names for oid, names in vendors_of.items() if len(names) > 1}
    expect("failover", not both, f"orders charged at more than one vendor: {both}")
    ledger_verdict(evidence, history)
