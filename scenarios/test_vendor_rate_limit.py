"""Root cause 1 of the manual, its rate limit: "our requests may be hitting the vendor's rate limit".

The vendor answers every charge 429 with Retry-After. Prescribed, and proven on the resilient
shop: no call reaches the vendor before its Retry-After has passed (neither a request's retries
nor the settler's), customers get 202 PAYMENT_PENDING meanwhile, and once the vendor takes
charges again every pending order is charged exactly once and reaches PAID.

Judged from the vendor's own journal: each request's arrival time and the Retry-After it was
answered with. A caller that honours the wait reads the answer before it starts waiting, so its
next call can only arrive later than that; retries at their own backoff (0.1 s, 0.2 s, ...) or
the settler's next tick (0.25 s) arrive inside it.
"""

from __future__ import annotations

import pytest
from conftest import RECOVERY_BUDGET_S, ledger_verdict

from harness import polling, retries
from harness.guards import expect
from scenarios.shop.vendors import at_every_vendor
from scenarios.shop.workload import not_pending_in_time

# Longer than the gateway's longest backoff (services/shop/settings.py: retry_max_s, 1 s), so a
# retry at its own backoff always lands inside it; short, so the scenario stays quick.
RETRY_AFTER_S = 2
ORDERS_DURING_LIMIT = 10
ORDER_INTERVAL_S = 0.4  # the limit lasts about two Retry-Afters: the gateway tries again in it
ACCEPT_LATENCY_BUDGET_S = 2.5  # a request that would wait out Retry-After gives up sooner


@pytest.mark.chaos(root_cause="payment_gateway_outage",
                   guards={"retry_after_honoured": "honour_retry_after", "pending_accepted": "fallback",
                           "exactly_once": "exactly_once_settlement"},
                   protects={"retry_after_honoured": "retry_after", "pending_accepted": "fallback",
                             "exactly_once": "settlement"})
def test_vendor_rate_limit(stack, chaos, shop, vendors, history, scenario_record, steady, evidence):
    steady("before")

    # At every vendor: with one not limiting, the gateway could fail over to it (multi-vendor).
    with at_every_vendor(chaos, stack, "http.status", status=429, retry_after=RETRY_AFTER_S):
        during = shop.place_stream(ORDERS_DURING_LIMIT, ORDER_INTERVAL_S)

    accepted = [op.order_id for op in history.accepted()]
    final, recovery_s = polling.wait_for(
        lambda: all(shop.status_of(oid) == "PAID" for oid in accepted), RECOVERY_BUDGET_S, 0.25)

    # Each vendor's Retry-After binds the calls to it: judged vendor by vendor, from its own journal.
    journals = {name: client.journal() for name, client in vendors.clients.items()}
    attempts = [e for journal in journals.values() for e in journal]
    limited = [e for e in attempts if e.get("status") == 429 and e.get("retry_after_s") is not None]
    early = [e for journal in journals.values() for e in retries.early_calls(journal)]
    first = min((e["ts"] for e in limited), default=0.0)
    scenario_record.update(
        orders_during_limit=len(during), recovery_s=round(recovery_s, 3), rate_limited_answers=len(limited),
        vendor_calls=len(attempts), early_calls=len(early),
        calls_s_after_first_429=[round(e["ts"] - first, 3) for e in attempts if limited and e["ts"] >= first])

    # Retry-After: the vendor did limit the shop, and no call of any caller came before its wait was over.
    expect("retry_after_honoured", limited and not early,
           f"{len(early)} of {len(attempts)} vendor calls came before the vendor's Retry-After "
           f"({RETRY_AFTER_S}s) had passed, at (s after the first 429) "
           f"{[round(e['ts'] - first, 3) for e in early][:10]}" if limited
           else "the vendor answered no charge 429 with Retry-After: the fault did not reach the shop")
    # Fallback: every customer was answered 202 PAYMENT_PENDING, in time, while the vendor limited.
    gap = not_pending_in_time(during, ACCEPT_LATENCY_BUDGET_S)
    expect("pending_accepted", gap is None, f"orders during the rate limit were {gap}")
    # Settled afterwards: every accepted order PAID, charged exactly once (the vendor's charge records).
    per_order = vendors.per_order()
    wrong = {oid: (shop.status_of(oid), per_order[oid]) for oid in accepted
             if per_order[oid] != 1 or shop.status_of(oid) != "PAID"}
    expect("exactly_once", final and not wrong,
           f"not every accepted order was PAID {RECOVERY_BUDGET_S:.0f}s after the limit, charged exactly once "
           f"(order: status, charges): {wrong}")
    steady("after")
    ledger_verdict(evidence, history)
