"""Root cause 4: malformed, schema-invalid and poison messages on the order-event queue.

Prescribed: schema validation, a dead-letter queue that receives exactly what can't be
processed (with the reason), a consumer that never crashes, idempotent processing, and valid
traffic unaffected. The manual's first response, inspecting the DLQ and re-driving it once the
cause is fixed, is test_dlq_redrive.
"""

import time

import pytest
from conftest import ledger_verdict

from harness import runbook
from harness.datastores import peek, queue_depth
from harness.guards import expect
from harness.polling import wait_for

MALFORMED = runbook.log_line("malformed_messages")
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
                   guards={"log_line": None, "valid_traffic": None, "dlq_count": "dead_letter_queue",
                           "dlq_reason": "schema_validation", "idempotent": "idempotent_consumer"},
                   protects={"valid_traffic": "consumer_isolation", "dlq_count": "dlq",
                             "dlq_reason": "schema_validation", "idempotent": "dedup"},
                   preconditions=("log_line",))
def test_malformed_messages(
    stack, chaos, shop, vendor, sink, inventory, history, clean_dlq, scenario_record, steady, evidence
):
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

    health = inventory.http.get("/health").json()
    # The bad messages reached the consumer (it logs the manual's line as it parses one).
    expect("log_line", any(e.get("event") == MALFORMED for e in events), "the manual's malformed-JSON line is missing")
    expect("valid_traffic", confirmed and health["checks"]["broker_consumer"],
           f"a valid order behind the bad messages was not processed, or the consumer is down: {health}")
    expect("dlq_count", depth == expected, f"the DLQ holds {depth} messages, {expected} were injected")
    unexplained = {fault: found for fault, found in dead_lettered.items()
                   if len(found) != BAD[fault] or not all(r.startswith(REASON[fault][1]) for r in found)}
    expect("dlq_reason", not unexplained,
           "injected messages not in the DLQ with the reason of their failure, per fault "
           f"(expected count and x-reason prefix: {[(f, BAD[f], REASON[f][1]) for f in unexplained]}): {unexplained}")
    expect("idempotent", len(mails) == 1, f"{len(mails)} e-mails for one valid order delivered 4 times")
    steady("after")
    ledger_verdict(evidence, history)
