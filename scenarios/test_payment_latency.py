"""Seed 002: the vendor is slower than the caller's timeout; the client (a load balancer with a
short timeout) gives up and retries the same request.

Prescribed: timeouts aligned and idempotency keys end to end, so each client request becomes
exactly one order, one charge and one customer e-mail, however often it was retried.
"""

import uuid

import pytest
from conftest import RECOVERY_BUDGET_S, ledger_verdict, steady_state

from harness.clients import connect_database
from harness.timeline import wait_for

VENDOR_DELAY_MS = 3000  # longer than the gateway's payment timeout (2 s)
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


@pytest.mark.chaos(root_cause="timeout_mismatch", runbook=["timeouts_aligned", "idempotency_keys"])
def test_payment_latency(stack, chaos, shop, vendor, sink, history, scenario_record):
    steady_state(shop, "before")
    keys = [uuid.uuid4().hex for _ in range(REQUESTS)]
    with chaos.inject("http.slow_body", target="payment_gateway", delay_ms=VENDOR_DELAY_MS):
        tries = {key: 0 for key in keys}
        for key in keys:
            for _ in range(CLIENT_TRIES):  # bounded client retries, as a load balancer does
                tries[key] += 1
                if shop.place_order(key=key, timeout_s=CLIENT_TIMEOUT_S).outcome != "unknown":
                    break
    steady_state(shop, "after")
    created = orders_per_key(stack, keys)
    order_ids = [oid for ids in created.values() for oid in ids]
    charges = vendor.charges()
    mailed, _ = wait_for(lambda: all(any(m["order_id"] == oid for m in sink.mails()) for oid in order_ids),
                         RECOVERY_BUDGET_S, 0.5)
    mails = [m for m in sink.mails() if m["order_id"] in order_ids]
    scenario_record.update(tries=tries, orders_per_request={k: len(v) for k, v in created.items()},
                           mails=len(mails))

    duplicated = {key: ids for key, ids in created.items() if len(ids) != 1}
    assert not duplicated, f"[one_order_per_request] client retries created duplicate orders: {duplicated}"
    charged = [oid for oid in order_ids if oid in charges]
    assert len(charged) == REQUESTS, f"[one_charge_per_request] {len(charged)} charges for {REQUESTS} requests"
    assert mailed and len(mails) == REQUESTS, f"[one_mail_per_order] {len(mails)} e-mails for {REQUESTS} orders"
    ledger_verdict(shop, vendor, history)
