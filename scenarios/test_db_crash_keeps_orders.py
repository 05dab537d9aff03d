"""The database crashes right after it acknowledged orders: exploration's finding made a scenario.

A search with settlement off found two orders answered 201 that the database no longer had,
after `process.db_outage` killed Postgres (stop_timeout_s=0) half a second into its schedule: the
commits were acknowledged before they were in the write-ahead log. Its smallest schedule, one
step, is this scenario: orders acknowledged one after the other, the database killed at once.

Prescribed: what the shop acknowledged is never undone, whatever happens to the database after
(durable_commit: a commit is acknowledged once it is in the log, so Postgres's crash recovery
replays it). Acknowledged are an order answered 201 (to the customer) and its reservation
confirmed (to the broker: the consumer acks the event once its transaction committed). With
asynchronous commits the crash takes back what the log did not have yet: an order gone (`lost`),
an order back to PAYMENT_PENDING the customer was told is paid, a confirmation whose event was
acked and is never delivered again (`stock_drift`), a paid mail's claim gone, so the event's
redelivery mails the customer again (`double_mail`). The database's own rows say so once it is
back, judged by the ledger against what the customer and the broker were told.
"""

import pytest
from conftest import ledger_verdict

from harness.guards import expect

ORDERS = 5  # each acknowledged before the next; the WAL writer's delay (10 s) covers them all
CRASHES = 3
# The ledger's classes for an acknowledged state the crash took back (whatever else it finds is
# the [ledger]'s).
UNDONE = ("lost", "stuck", "charged_not_paid", "pending_not_settled", "stock_drift", "double_mail")


@pytest.mark.chaos(root_cause="database_crash",
                   guards={"acked": None, "acked_kept": "durable_commit"},
                   protects={"acked_kept": "durable_commit"}, preconditions=("acked",))
def test_db_crash_keeps_orders(stack, chaos, shop, history, scenario_record, steady, evidence):
    steady("before")
    undone, answers = [], []
    # Each crash takes back what the log did not have yet, but a page the background writer wrote
    # meanwhile flushes the log: a bounded number of crashes, until one takes something back.
    for _ in range(CRASHES):
        placed = [shop.place_order() for _ in range(ORDERS)]
        answers += placed
        expect("acked", all(op.status in (201, 202) for op in placed),
               f"the orders were not all acknowledged before the crash: {[(op.status, op.body) for op in placed]}")
        with chaos.inject("process.db_outage", target="postgres", stop_timeout_s=0):
            pass  # landed: the database is gone; the heal starts it, and it recovers from its log
        # Judged from the database once the orders settled (bounded), before the steady state
        # after: a shop whose consumer also died with the database fails on what the crash took back.
        undone = [a for a in ledger_verdict(evidence, history, strict=False).anomalies if a.kind in UNDONE]
        if undone:
            break
    scenario_record.update(answers=[op.status for op in answers], undone=len(undone))
    expect("acked_kept", not undone, f"the database's crash took back what the shop had acknowledged: "
           f"{'; '.join(f'{a.kind}: {a.detail}' for a in undone)}")
    recovery_s = steady("after", budget_s=60)
    scenario_record.update(recovery_s=round(recovery_s, 2))
    ledger_verdict(evidence, history)  # the whole history, the steady state's own orders with it
