"""Root cause 1 of the manual: the external payment vendor answers 503 (every vendor of the shop:
with a second one up, the gateway would fail over to it, which test_vendor_failover proves).

What the manual prescribes, and what this proves on the resilient shop: calls are retried with
exponential backoff; a circuit breaker stops calling the vendor while it is down; customers get
202 PAYMENT_PENDING quickly instead of an error; the manual's log line is written; and once the
vendor is back every pending order is charged exactly once and reaches PAID in time; an alert
goes out when the vendor breaks and another when it recovers (the monitoring guide).

Baseline -> inject -> observe -> heal -> verify. The guards read the history afterwards; each
has a tag (its failure message starts with it, and the fragile proof in tests/ checks it), and
the marker says which of the manual's prescriptions each one proves.
"""

from __future__ import annotations

import time

import pytest
from conftest import ledger_verdict

from harness import polling, retries, runbook
from harness.guards import expect
from scenarios.shop import first_response
from scenarios.shop.vendors import at_every_vendor
from scenarios.shop.workload import not_pending_in_time

PAYMENT_503 = runbook.log_line("payment_gateway_outage")
PRIMARY_BREAKER = "payment"  # the gateway's breaker of the primary vendor (its log's `breaker`)
ORDERS_DURING_OUTAGE = 12
ORDER_INTERVAL_S = 0.25
ACCEPT_LATENCY_BUDGET_S = 2.5  # all retries of one order fit well inside this
RECOVERY_BUDGET_S = 15.0  # breaker reset (2 s) + settling every pending order
RETRY_INITIAL_S, RETRY_MAX_S = 0.1, 1.0  # the gateway's backoff (services/shop/settings.py: retry_initial_s, _max_s)
# What the gateway logs once a request's own retries are over (then the settler may call for it).
CHARGE_GIVEN_UP = ("payment_deferred", "payment_failed")


def retries_end(events: list[dict], order_id: str, answered: float) -> float:
    """When the request's own charge attempts for an order were over: the gateway's log of it
    (it is written before the order is stored as pending, hence before the settler can call
    for it), else the client's answer. The answer alone lets a settler call made while a loaded
    machine delivered the answer late pass for the request's last retry."""
    return min((e["ts"] for e in events if e.get("event") in CHARGE_GIVEN_UP and e.get("order_id") == order_id),
               default=answered)


@pytest.mark.chaos(root_cause="payment_gateway_outage",
                   guards={"fallback_202": "fallback", "log_line": None,
                           "alert": "alert_on_recovery", "recovery_alert": "alert_on_recovery",
                           "backoff": "retry_with_backoff", "breaker_opens": "circuit_breaker",
                           "exactly_once": "exactly_once_settlement", "triage": "triage_alerts",
                           "vendor_status": "check_vendor_status"},
                   protects={"fallback_202": "fallback", "breaker_opens": "breaker", "backoff": ("retry", "backoff"),
                             "alert": "vendor_alert", "recovery_alert": "recovery_alerts",
                             "exactly_once": "settlement", "triage": "alert_severity"},
                   preconditions=("log_line", "vendor_status"))
def test_payment_outage(stack, chaos, shop, vendor, vendors, sink, history, scenario_record, steady, evidence):
    steady("before")

    injected = time.time()
    with at_every_vendor(chaos, stack, "http.status", status=503):
        during = shop.place_stream(ORDERS_DURING_OUTAGE, ORDER_INTERVAL_S)
        health_during = shop.health()
        # The manual's first responses, while the vendor is down: triage what is firing, then
        # read the vendor's status page (an incident shown there: wait, or switch).
        alerts_during, status_during = sink.alerts("firing"), vendor.status_page()
        healing = time.time()  # the vendor answers again only after this (the heal begins now)
    healed = time.time()  # the heal proved (a loaded machine may take a while to show it)
    status_after = vendor.status_page()

    accepted = [op.order_id for op in history.accepted()]
    final, recovery_s = polling.wait_for(
        lambda: (lambda states: states if all(s and s.get("status") == "PAID" for s in states.values()) else None)(
            {oid: shop.order(oid) for oid in accepted}),
        RECOVERY_BUDGET_S, 0.2)

    attempts = vendor.journal()
    events = stack.logs("api_gateway", since=injected - 1)
    by_key = retries.attempts_by_key([e for e in attempts if injected <= e["ts"] <= healed])
    windows = retries.breaker_windows([e for e in events if e.get("breaker") == PRIMARY_BREAKER], until=healed)
    scenario_record.update(
        orders_during_outage=len(during), recovery_s=round(recovery_s, 3),
        vendor_calls_during_outage=sum(len(t) for t in by_key.values()),
        breaker_windows=[(round(a - injected, 3), round(b - injected, 3)) for a, b in windows],
        health_during=health_during)

    # The manual's line, verbatim, as a structured event: the shop saw the vendor's 503s.
    expect("log_line", any(e.get("event") == PAYMENT_503 for e in events), "the manual's 503 line was not logged")
    # Fallback: every customer got 202 PAYMENT_PENDING, within the latency budget.
    gap = not_pending_in_time(during, ACCEPT_LATENCY_BUDGET_S)
    expect("fallback_202", gap is None, f"orders during the outage were {gap}")
    # Breaker: it opened, the vendor got no call while it was open, and orders kept coming meanwhile.
    expect("breaker_opens", windows, "the circuit breaker never opened")
    calls_while_open = [e for e in attempts if retries.inside(e["ts"], windows, margin=0.05)]
    expect("breaker_opens", not calls_while_open, f"{len(calls_while_open)} vendor calls while the breaker was open")
    shielded = [op for op in during if retries.inside(op.invoked, windows)]
    expect("breaker_opens", len(shielded) >= 3, f"only {len(shielded)} orders arrived while the breaker was open")
    # Backoff: the first order's retries reach the vendor no sooner than a doubling backoff's waits
    # (load only delays them). Only the calls made before its request gave up are its retries; the
    # settler may call again for it later.
    first = during[0]
    own = retries_end(events, first.order_id, first.completed)
    gaps = retries.intervals([ts for ts in by_key.get(first.order_id, []) if ts <= own])
    scenario_record.update(first_order_retry_intervals=[round(g, 3) for g in gaps])
    expect("backoff", retries.backs_off(gaps, RETRY_INITIAL_S, RETRY_MAX_S),
           f"retry intervals of the first order do not back off: {[round(g, 3) for g in gaps]}, owed at least "
           f"{[round(f, 3) for f in retries.backoff_floors(len(gaps), RETRY_INITIAL_S, RETRY_MAX_S)]}")
    # Recovery: every pending order is PAID within the budget, charged exactly once, judged from
    # the vendors' charge records (each names its order), not from their answers: a repeated key
    # is a replay, so only a second charge under another key, or at the other vendor, shows a
    # double charge.
    per_order = vendors.per_order()
    expect("exactly_once", final and all(per_order[oid] == 1 for oid in accepted),
           f"not every accepted order was PAID {RECOVERY_BUDGET_S}s after the heal, charged exactly once: "
           f"{ {oid: per_order[oid] for oid in accepted if per_order[oid] != 1} }")
    # The monitoring guide: an alert when it broke, and another when it recovered, each with its 5W1H.
    firing, resolved = sink.alerts("firing"), sink.alerts("resolved")
    expect("alert", any(PAYMENT_503 in a["chaos"]["what"] for a in firing), f"no outage alert: {firing}")
    # After the heal began, not after it was proven: the gateway may see the vendor back (and say
    # so) while a loaded machine is still proving the heal.
    expect("recovery_alert", resolved and resolved[-1]["ts"] > healing, "no alert when the vendor recovered")
    ranked = first_response.triaged(alerts_during)
    first_response.performed(scenario_record, "triage_alerts", "ranked the firing alerts by severity",
                             f"{len(ranked)} firing; first: {ranked[0]['chaos']['what'] if ranked else 'none'}")
    first_response.performed(scenario_record, "check_vendor_status", "read the vendor's status page",
                             f"during: {status_during.get('description')}; after: {status_after.get('description')}")
    gap = first_response.triage_gap(alerts_during, PAYMENT_503)
    expect("triage", gap is None, f"triage during the outage does not lead to the vendor: {gap}")
    gap = first_response.status_gap(status_during, status_after)
    expect("vendor_status", gap is None, gap or "")
    steady("after")
    # The ledger: every order of this test, before, during and after, against the outside world.
    ledger_verdict(evidence, history)
