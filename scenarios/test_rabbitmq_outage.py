"""Seed 003 / root cause 4: the broker goes away while orders keep coming.

Prescribed: the outbox keeps every event while the broker is down, the consumer reconnects by
itself, and when the broker is back every order's event is delivered: zero lost, each order's
reservation confirmed and its customer mailed exactly once.
"""

import pytest
from conftest import RECOVERY_BUDGET_S, ledger_verdict, steady_state

from harness.timeline import wait_for

ORDERS_DURING_OUTAGE = 4


@pytest.mark.chaos(root_cause="rabbitmq_config_missing", runbook=["outbox", "worker_auto_recovery"])
def test_rabbitmq_outage(stack, chaos, shop, vendor, sink, inventory, history, scenario_record):
    steady_state(shop, "before")
    with chaos.inject("process.broker_outage", target="rabbitmq"):
        during = [shop.place_order() for _ in range(ORDERS_DURING_OUTAGE)]
        pending = shop.http.get("/outbox").json().get("pending")
    ids = [op.order_id for op in during if op.order_id]

    def delivered() -> bool:
        return all((inventory.reservation(oid) or {}).get("status") == "CONFIRMED" for oid in ids)

    confirmed, recovery_s = wait_for(delivered, RECOVERY_BUDGET_S, 0.5)
    mails = [m for m in sink.mails() if m["order_id"] in ids]
    steady_state(shop, "after")
    scenario_record.update(outbox_pending_during=pending, recovery_s=round(recovery_s, 2), mails=len(mails))

    assert len(ids) == ORDERS_DURING_OUTAGE and all(op.status == 201 for op in during), \
        f"[orders_accepted] orders during the outage: {[op.status for op in during]}"
    assert pending and pending >= ORDERS_DURING_OUTAGE, f"[outbox] events were not kept while the broker was down: {pending}"
    lost = [oid for oid in ids if (inventory.reservation(oid) or {}).get("status") != "CONFIRMED"]
    assert confirmed, f"[zero_lost] events never reached inventory after the broker came back: {lost}"
    assert len(mails) == len(ids), f"[one_mail_per_order] {len(mails)} e-mails for {len(ids)} orders"
    ledger_verdict(shop, vendor, history)
