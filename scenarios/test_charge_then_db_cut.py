"""Root cause 2 at the worst moment: the database goes away after the vendor charged an order
and before the gateway wrote that down.

Prescribed: nothing half-written. A charged order always ends PAID: the resilient gateway
writes PAYMENT_PENDING before it calls the vendor, so when the outcome can't be written the
order is not left NEW; once the request's lease ends the settler charges it again under the
same key (the vendor replays the charge it made) and finishes it, whether or not the customer
ever comes back. The customer, told 503 with Retry-After, then retries and finds one paid
order, one charge, one mail.
"""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import RECOVERY_BUDGET_S, ledger_verdict

from harness.guards import expect
from harness.polling import wait_for
from scenarios.shop.workload import retry_until_answered

VENDOR_DELAY_MS = 1500  # under the gateway's payment timeout (2 s): the charge succeeds, late
SETTLE_BUDGET_S = RECOVERY_BUDGET_S  # the order lease (10 s) plus settling


@pytest.mark.chaos(root_cause="database_bottleneck",
                   guards={"cut_timed": None, "charged_order_paid": "no_partial_writes"},
                   protects={"charged_order_paid": "charged_order_sweep"}, preconditions=("cut_timed",))
def test_charge_then_db_cut(stack, chaos, shop, vendor, sink, history, steady, evidence, scenario_record):
    steady("before")
    key = uuid.uuid4().hex
    with chaos.inject("http.slow_body", target="payment_gateway", delay_ms=VENDOR_DELAY_MS):
        with ThreadPoolExecutor(1) as pool:
            began = time.time()
            answer = pool.submit(shop.place_order, key=key, timeout_s=15)

            def charged() -> list[dict]:
                return [e for e in vendor.journal() if e["ts"] >= began and e.get("outcome") == "charged"]

            seen, _ = wait_for(charged, 5, 0.05)
            expect("cut_timed", bool(seen), "the vendor never received the order's charge")
            with chaos.inject("network.down", target="postgres"):
                first = answer.result(timeout=20)
    # The charged order must end PAID without the customer's help (they may never come back);
    # then their retry must find that one paid order.
    order_id = seen[0]["order_id"]
    final, settle_s = wait_for(lambda: shop.status_of(order_id) == "PAID", SETTLE_BUDGET_S, 0.25)
    retries = retry_until_answered(shop, key)
    steady("after")
    scenario_record.update(first_answer=first.status, retries=[op.status for op in retries],
                           settle_s=round(settle_s, 2))

    expect("charged_order_paid", final,
           f"the order the vendor charged is {shop.status_of(order_id)} "
           f"{SETTLE_BUDGET_S:.0f}s after the database came back (first answer {first.status})")
    ledger_verdict(evidence, history)
