"""Root cause 4, the manual's first response: inspect the dead-letter queue, fix the cause, re-drive.

An order.paid that arrives before its reservation exists is poison until the reservation is
made (the fix). Prescribed: it is parked in the DLQ rather than lost; once the cause is fixed a
re-drive processes it exactly once (one e-mail), and what is still broken returns to the DLQ.
"""

import uuid

import pytest
from conftest import ledger_verdict

from harness.datastores import queue_depth, redrive
from harness.guards import expect
from harness.polling import wait_for

DLQ = "inventory.order-events.dlq"
COPIES = 2
SETTLE_S = 15.0


@pytest.mark.chaos(root_cause="malformed_messages", guards={"redrive": "inspect_dlq"},
                   protects={"redrive": "dlq"})
def test_dlq_redrive(stack, chaos, shop, vendor, sink, inventory, history, clean_dlq, scenario_record, steady,
                     evidence):
    steady("before")
    broker = stack.endpoint("rabbitmq")
    early = str(uuid.uuid4())
    with chaos.inject("message.duplicate", target="rabbitmq", order_id=early, copies=COPIES):
        pass
    parked, _ = wait_for(lambda: queue_depth(broker.host, broker.port, DLQ) == COPIES, SETTLE_S, 0.3)
    expect("redrive", parked, f"the early event was not parked in the DLQ (it holds "
                              f"{queue_depth(broker.host, broker.port, DLQ)}, {COPIES} copies were sent)")
    fixed = inventory.http.post("/reservations", json={"order_id": early, "sku": "sku-1", "quantity": 1})
    moved = redrive(broker.host, broker.port, DLQ, exchange="orders")
    # Confirmed and mailed: the mail goes out after the commit that confirms the reservation.
    redriven, _ = wait_for(lambda: (inventory.reservation(early) or {}).get("status") == "CONFIRMED"
                           and bool(sink.mails_of(early)), SETTLE_S, 0.3)
    settled, _ = wait_for(lambda: queue_depth(broker.host, broker.port, DLQ) == 0, SETTLE_S, 0.3)
    mails = [m for m in sink.mails() if m.get("order_id") == early]
    steady("after")
    scenario_record.update(parked=bool(parked), redriven=moved, mails=len(mails))

    expect("redrive", fixed.status_code == 201, f"the fix (making the reservation) answered {fixed.status_code}")
    expect("redrive", redriven and len(mails) == 1,
           f"after the fix and a re-drive the order was not confirmed once ({len(mails)} e-mails)")
    expect("redrive", settled, "messages left in the DLQ after the re-drive")
    ledger_verdict(evidence, history)
