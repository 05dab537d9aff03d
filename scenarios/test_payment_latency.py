"""The duplicate-notification incident: the vendor is slower than the caller's timeout; the client
(a load balancer with a short timeout) gives up and retries the same request.

Prescribed: timeouts aligned and idempotency keys end to end, so each client request becomes
exactly one order, one charge and one customer e-mail, however often it was retried. Aligned
timeouts, seen from the vendor: the gateway gives up on a slow call at its own payment timeout
and retries under the same key, so the vendor sees that key again sooner than its own delay.
"""

import uuid

import pytest
from conftest import RECOVERY_BUDGET_S, ledger_verdict

from harness.datastores import connect_database
from harness.guards import expect
from harness.polling import wait_for
from harness.retries import intervals

VENDOR_DELAY_MS = 3000  # longer than the gateway's payment timeout (2 s)
PAYMENT_TIMEOUT_S = 2.0  # the gateway's (services/shop/settings.py: payment_timeout_s)
TIMEOUT_SLACK_S = 0.1  # a retry never arrives sooner than the timeout, less this much clock noise
CLIENT_TIMEOUT_S = 1.5  # the load balancer's: shorter than the work behind it
CLIENT_TRIES = 4
REQUESTS = 3


def orders_per_key(stack, keys: list[str]) -> dict[str, list[str]]:
    """Orders the shop created for each client key (read with the harness's own connection)."""
    with connect_database(stack) as conn:
        rows = conn.execute("SELECT idempotency_key, id::text FROM orders WHERE split_part(idempotency_key, ':', 1)"
                            " = ANY(%s)", [keys]).fetchall()
    found: dict[str, list[str]] = {key: [] for key in keys}
    for key, order_id in rows:
        found[key.split(":")[0]].append(order_id)
    return found


def slow_retry_gaps(attempts: list[dict]) -> dict[str, list[float]]:
    """Per vendor key, the gaps between consecutive attempts that were both answered late (the
    vendor's slow_body fault): how long the gateway waited on a slow call before its retry
    arrived. Attempts after the fault are left out: the settler's later take-over of a pending
    order waits on the breaker, not on the vendor."""
    slow: dict[str, list[float]] = {}
    for entry in attempts:
        if entry.get("fault") == "slow_body":
            slow.setdefault(entry["key"], []).append(entry["ts"])
    return {key: [round(gap, 3) for gap in intervals(sorted(times))] for key, times in slow.items() if len(times) > 1}


@pytest.mark.chaos(root_cause="timeout_mismatch",
                   guards={"one_order_per_request": "idempotency_keys", "one_charge_per_request": "idempotency_keys",
                           "timeouts_aligned": "timeouts_aligned"},
                   protects={"one_order_per_request": "idempotency", "one_charge_per_request": "vendor_idempotency",
                             "timeouts_aligned": "call_timeouts"})
def test_payment_latency(stack, chaos, shop, vendor, vendors, sink, history, scenario_record, steady, evidence):
    steady("before")
    keys = [uuid.uuid4().hex for _ in range(REQUESTS)]
    with chaos.inject("http.slow_body", target="payment_gateway", delay_ms=VENDOR_DELAY_MS):
        tries = {key: 0 for key in keys}
        for key in keys:
            for _ in range(CLIENT_TRIES):  # bounded client retries, as a load balancer does
                tries[key] += 1
                if shop.place_order(key=key, timeout_s=CLIENT_TIMEOUT_S).outcome != "unknown":
                    break
    steady("after")
    created = orders_per_key(stack, keys)
    order_ids = [oid for ids in created.values() for oid in ids]
    mailed, _ = wait_for(lambda: all(any(m["order_id"] == oid for m in sink.mails()) for oid in order_ids),
                         RECOVERY_BUDGET_S, 0.5)
    mails = [m for m in sink.mails() if m["order_id"] in order_ids]
    gaps = slow_retry_gaps(vendor.journal())
    scenario_record.update(tries=tries, orders_per_request={k: len(v) for k, v in created.items()},
                           mails=len(mails), slow_retry_gaps_s=gaps)

    duplicated = {key: ids for key, ids in created.items() if len(ids) != 1}
    expect("one_order_per_request", not duplicated, f"client retries created duplicate orders: {duplicated}")
    expect("one_order_per_request", mailed and len(mails) == REQUESTS, f"{len(mails)} e-mails for {REQUESTS} orders")
    # Judged from the vendors' charge records (each names its order), not from their answers: an
    # order the breaker sent to the second vendor is charged there.
    per_order = vendors.per_order()
    twice = {oid: per_order[oid] for oid in order_ids if per_order[oid] != 1}
    expect("one_charge_per_request", not twice, f"orders not charged exactly once by the vendor: {twice}")
    delay_s = VENDOR_DELAY_MS / 1000
    misaligned = {key: g for key, g in gaps.items()
                  if not all(PAYMENT_TIMEOUT_S - TIMEOUT_SLACK_S <= gap < delay_s for gap in g)}
    expect("timeouts_aligned", gaps and not misaligned,
           f"the gateway did not give up on the slow vendor at its {PAYMENT_TIMEOUT_S:.0f}s timeout and retry "
           f"sooner than the vendor's {delay_s:.0f}s: "
           + (f"gaps between slow attempts of one key (s): {misaligned}" if gaps
              else "no order's vendor key was tried twice while the vendor was slow (it waited for the answer)"))
    ledger_verdict(evidence, history)
