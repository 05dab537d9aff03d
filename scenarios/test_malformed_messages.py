"""Root cause 4: malformed, schema-invalid and poison messages on the order-event queue.

Prescribed: schema validation, a dead-letter queue that receives exactly what can't be
processed (with the reason), a consumer that never crashes, idempotent processing, and valid
traffic unaffected. First response of the manual: inspect the DLQ.
"""

import time
import uuid

import pytest
from conftest import ledger_verdict

from harness.clients import peek, queue_depth, redrive
from harness.guards import expect
from harness.timeline import wait_for

MALFORMED = "Failed to process message from queue: malformed JSON."
DLQ = "inventory.order-events.dlq"
BAD = {"message.malformed_json": 3, "message.schema_invalid": 2, "message.poison": 2}
# Each fault's messages carry a message id starting with its prefix (harness/faults/message.py);
# the consumer's x-reason header starts with the kind of failure it found.
REASON = {"message.malformed_json": ("malformed-", "malformed JSON:"),
          "message.schema_invalid": ("invalid-", "schema:"),
          "message.poison": ("poison-", "poison:")}
COPIES = 3  # redeliveries of the valid order's event
SETTLE_S = 10.0  # for the consumer to have taken every copy


def reasons(parked) -> dict[str, list[str]]:
    """Per injected fault, the x-reason of each of its messages parked in the DLQ ("" when a
    message has none)."""
    found: dict[str, list[str]] = {fault: [] for fault in REASON}
    for message in parked:
        for fault, (prefix, _) in REASON.items():
            if (message.message_id or "").startswith(prefix):
                reason = message.headers.get("x-reason") or ""
                found[fault].append(reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason))
    return found


def copies_taken(stack, order_id: str, since: float) -> bool:
    """The consumer has taken every redelivered copy of the order's event: one line per copy,
    whatever it did with it (skipped as a duplicate, or processed again)."""
    lines = [e for e in stack.logs("inventory_service", since=since) if e.get("order_id") == order_id
             and e.get("event") in ("duplicate_message_skipped", "message_processed")]
    return len(lines) >= COPIES


# The consumer survives malformed and schema-invalid events because each one is validated
# before it is handled; without validation the first of them stops it.
@pytest.mark.chaos(root_cause="malformed_messages",
                   guards={"dlq_count": "dead_letter_queue", "dlq_reason": "dead_letter_queue",
                           "log_line": None, "valid_traffic": None,
                           "idempotent": "idempotent_consumer", "consumer_alive": "schema_validation",
                           "redrive": "inspect_dlq"})
def test_malformed_messages(stack, chaos, shop, vendor, sink, inventory, history, clean_dlq, scenario_record, steady, evidence):
    steady("before")
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
    dead_lettered = reasons(peek(broker.host, broker.port, DLQ) if depth else [])
    if confirmed:  # a redelivery of the valid order's event must change nothing (idempotent consumer)
        redelivered = time.time()
        with chaos.inject("message.duplicate", target="rabbitmq", order_id=order.order_id, copies=COPIES):
            pass
        wait_for(lambda: copies_taken(stack, order.order_id, redelivered), SETTLE_S, 0.2)
    mails = [m for m in sink.mails() if m.get("order_id") == order.order_id]
    events = stack.logs("inventory_service", since=injected)
    scenario_record.update(dlq_depth=depth, expected=expected, valid_order_confirmed=bool(confirmed),
                           dlq_reasons={fault: [r[:80] for r in rs] for fault, rs in dead_lettered.items()})

    expect("dlq_count", depth == expected, f"the DLQ holds {depth} messages, {expected} were injected")
    unexplained = {fault: found for fault, found in dead_lettered.items()
                   if len(found) != BAD[fault] or not all(r.startswith(REASON[fault][1]) for r in found)}
    expect("dlq_reason", not unexplained,
           "injected messages not in the DLQ with the reason of their failure, per fault "
           f"(expected count and x-reason prefix: {[(f, BAD[f], REASON[f][1]) for f in unexplained]}): {unexplained}")
    expect("log_line", any(e.get("event") == MALFORMED for e in events), "the manual's malformed-JSON line is missing")
    expect("valid_traffic", confirmed, "a valid order behind the bad messages was not processed")
    expect("idempotent", len(mails) == 1, f"{len(mails)} e-mails for one valid order delivered 4 times")
    health = inventory.http.get("/health").json()
    expect("consumer_alive", health["checks"]["broker_consumer"], f"the consumer is down: {health}")

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
    expect("redrive", parked and fixed.status_code == 201, f"the early event was not parked ({fixed.status_code})")
    expect("redrive", redriven and len(early_mails) == 1,
           f"after the fix and a re-drive the order was not confirmed once ({len(early_mails)} e-mails)")
    expect("redrive", settled, "the still-broken messages did not return to the DLQ after the re-drive")
    steady("after")
    ledger_verdict(evidence, history)
