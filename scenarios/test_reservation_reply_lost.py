"""The duplicate-notification incident's shape on the inventory edge: inventory reserves the stock, but its answer never
reaches the gateway (the connection is cut on the way back), so the customer is told 503 and
retries.

Prescribed: idempotency keys end to end. The resilient gateway leaves the order NEW and its
key retryable; the retry resumes the same order id, so inventory finds the reservation it made
(no second reservation, none left held) and the order is charged and paid once. A gateway that
marks the order REJECTED answers the retry 200 REJECTED for ever and leaves the stock held.
"""

import uuid

import pytest
from conftest import ledger_verdict

from harness.guards import expect
from scenarios.shop.workload import retry_until_answered


@pytest.mark.chaos(root_cause="timeout_mismatch",
                   guards={"reply_lost": None, "retry_completes": "idempotency_keys"},
                   protects={"retry_completes": "retryable_refusal"}, preconditions=("reply_lost",))
def test_reservation_reply_lost(stack, chaos, shop, vendor, inventory, history, steady, evidence, scenario_record):
    steady("before")
    key = uuid.uuid4().hex
    with chaos.inject("network.limit_data", target="inventory", stream="downstream", bytes=1):
        first = shop.place_order(key=key)
    retries = retry_until_answered(shop, key)
    last = retries[-1] if retries else first
    steady("after")
    scenario_record.update(first_answer=first.status, retries=[(op.status, op.body.get("status")) for op in retries])

    expect("reply_lost", first.status == 503,
           f"the cut reply did not reach the customer as 503: {first.status} {first.body}")
    expect("retry_completes", last.status in (200, 201) and last.body.get("status") == "PAID",
           f"the customer's retry did not end in a paid order: {[(op.status, op.body) for op in retries]}")
    ledger_verdict(evidence, history)
