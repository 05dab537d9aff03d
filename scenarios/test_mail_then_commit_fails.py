"""The duplicate notification of the duplicate-notification incident, from the consumer's side:
the paid mail has gone out, then the commit of the event's transaction fails (the database is cut), the event is
requeued, and a consumer that mails inside its transaction mails the customer again.

Prescribed: one mail per order. The resilient consumer claims the mail in the event's
transaction, commits, then sends, then records it sent (retrying that while the database is
away instead of requeueing the event).
"""

import time

import pytest
from conftest import RECOVERY_BUDGET_S, ledger_verdict

from harness.guards import expect
from harness.polling import wait_for
from scenarios.shop import first_response

MAIL_SERVER_DELAY_MS = 2500  # the consumer waits this long for the mail server's 250
CUT_S = 4.0  # longer than the rest of that wait: the commit (or the "sent" mark) meets the cut


@pytest.mark.chaos(root_cause="timeout_mismatch",
                   guards={"mail_sent": None, "one_mail_per_order": "check_duplicates"},
                   protects={"one_mail_per_order": "mail_after_commit"}, preconditions=("mail_sent",))
def test_mail_then_commit_fails(stack, chaos, shop, vendor, sink, history, steady, evidence, scenario_record):
    steady("before")
    sink.slow_mail(MAIL_SERVER_DELAY_MS)
    try:
        op = shop.place_order()
        mailed, _ = wait_for(lambda: sink.mails_of(op.order_id), 10, 0.05)
        expect(
            "mail_sent", op.status == 201 and bool(mailed), f"the order was not paid and mailed: {op.status} {op.body}"
        )
        with chaos.inject("network.down", target="postgres"):
            time.sleep(CUT_S)  # the fault's window: how long the cut lasts, not a wait for a condition
    finally:
        sink.slow_mail(0)
    steady("after", budget_s=RECOVERY_BUDGET_S)
    verdict = ledger_verdict(evidence, history, strict=False)
    # The incident's first response: count the notifications per order, at the mail sink.
    counts = first_response.mails_per_order(sink.mails(), [op.order_id])
    scenario_record.update(mails=counts[op.order_id])
    first_response.performed(scenario_record, "check_duplicates", "counted the paid mails per order at the sink",
                             f"{counts[op.order_id]} for order {op.order_id}")
    gap = first_response.duplicates_gap(counts)
    expect("one_mail_per_order", gap is None, gap or "")
    expect("ledger", verdict.ok, verdict.explain())
