"""Root cause 4: malformed, schema-invalid and poison messages on the order-event queue.

Prescribed: schema validation, a dead-letter queue that receives exactly what can't be
processed (with the reason), a consumer that never crashes, idempotent processing, and valid
traffic unaffected. First response of the manual: inspect the DLQ.
"""

import time
import uuid

import pytest
from conftest import ledger_verdict, steady_state

from harness.clients import queue_depth, redrive
from harness.timeline import wait_for

MALFORMED = "Failed to process message from queue: malformed JSON."
DLQ = "inventory.order-events.dlq"
BAD = {"message.malformed_json": 3, "message.schema_invalid": 2, "message.poison": 2}


@pytest.mark.chaos(root_cause="malformed_messages",
                   runbook=["schema_validation", "dead_letter_queue", "idempotent_consumer", "inspect_dlq"])
def test_malformed_messages(stack, chaos, shop, vendor, sink, inventory, history, clean_dlq, scenario_record):
    steady_state(shop, "before")
    broker = stack.endpoint("rabbitmq")
    injected = time.time()
    for fault, count in BAD.items():
        with chaos.inject(fault, target="rabbitmq", count=count):
            pass
    order = shop.place_order()  # valid traffic right behind the bad messages
    expected = sum(BAD.values())
    depth, _ = wait_for(lambda: (queue_depth(broker.host, broker.port, DLQ) or 0) >= expected and
                        queue_depth(broker.host, broker.port, DLQ), 15, 0.3)
    confirmed, _ = wait_for(lambda: (inventory.reservation(order.order_id) or {}).get("status") == "CONFIRMED"
                            if order.order_id else False, 15, 0.3)
    if confirmed:  # a redelivery of the valid order's event must change nothing (idempotent consumer)
        with chaos.inject("message.duplicate", target="rabbitmq", order_id=order.order_id, copies=3):
            pass
        wait_for(lambda: False, 2.0, 0.5)  # give the consumer time to (not) act on the copies
    mails = [m for m in sink.mails() if m.get("order_id") == order.order_id]
    events = stack.logs("inventory_service", since=injected)
    scenario_record.update(dlq_depth=depth, expected=expected, valid_order_confirmed=bool(confirmed))

    assert depth == expected, f"[dlq_count] the DLQ holds {depth} messages, {expected} were injected"
    assert any(e.get("event") == MALFORMED for e in events), "[log_line] the manual's malformed-JSON line is missing"
    assert confirmed, "[valid_traffic] a valid order behind the bad messages was not processed"
    assert len(mails) == 1, f"[idempotent] {len(mails)} e-mails for one valid order delivered 4 times"
    health = inventory.http.get("/health").json()
    assert health["checks"]["broker_consumer"], f"[consumer_alive] the consumer is down: {health}"

    # The manual's first response: inspect the DLQ, fix the cause, re-drive. An order.paid that
    # arrived before its reservation existed is poison until the reservation is made (the fix).
    early = str(uuid.uuid4())
    with chaos.inject("message.duplicate", target="rabbitmq", order_id=early, copies=2):
        pass
    parked, _ = wait_for(lambda: queue_depth(broker.host, broker.port, DLQ) == expected + 2, 15, 0.3)
    fixed = inventory.http.post("/reservations", json={"order_id": early, "sku": "sku-1", "quantity": 1})
    moved = redrive(broker.host, broker.port, DLQ)
    redriven, _ = wait_for(lambda: (inventory.reservation(early) or {}).get("status") == "CONFIRMED", 15, 0.3)
    settled, _ = wait_for(lambda: queue_depth(broker.host, broker.port, DLQ) == expected, 15, 0.3)
    early_mails = [m for m in sink.mails() if m.get("order_id") == early]
    scenario_record.update(redriven=moved)
    assert parked and fixed.status_code == 201, f"[redrive] the early event was not parked ({fixed.status_code})"
    assert redriven and len(early_mails) == 1, \
        f"[redrive] after the fix and a re-drive the order was not confirmed once ({len(early_mails)} e-mails)"
    assert settled, "[redrive] the still-broken messages did not return to the DLQ after the re-drive"
    steady_state(shop, "after")
    ledger_verdict(shop, vendor, history)
