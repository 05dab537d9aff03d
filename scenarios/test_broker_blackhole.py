"""Root cause 4 / the RabbitMQ-configuration incident: the broker's edge swallows what the shop sends.

A Toxiproxy timeout toxic upstream on the rabbitmq edge: the connection looks open, nothing the
shop sends arrives, and the connection is closed a moment later. A publisher that counts an
event as sent once it is written to the socket loses every event sent into the hole.
Prescribed: an event counts as published only once the broker confirmed it, so events sent
into the hole stay in the outbox and are relayed once the edge is back: every order's
reservation confirmed, its customer mailed once.
"""

import time

import pytest
from conftest import RECOVERY_BUDGET_S, ledger_verdict

from harness.guards import expect
from harness.polling import wait_for

ORDERS = 3
HOLE_S = 3.0  # the relay tries every 0.2 s: long enough for each event to be sent into the hole
CLOSE_AFTER_MS = 1500  # the broker side gives up on the silent connection (robust clients reconnect)


@pytest.mark.chaos(root_cause="rabbitmq_config_missing", guards={"swallowed": None, "delivered": "outbox"},
                   protects={"delivered": "publisher_confirms"}, preconditions=("swallowed",))
def test_broker_blackhole(stack, chaos, shop, vendor, sink, inventory, history, steady, evidence, scenario_record):
    steady("before")
    with chaos.inject("network.timeout", target="rabbitmq", stream="upstream", timeout_ms=CLOSE_AFTER_MS):
        during = [shop.place_order() for _ in range(ORDERS)]
        time.sleep(HOLE_S)  # the fault's window: the relay sends into the hole meanwhile
        ids = [op.order_id for op in during if op.status == 201 and op.order_id]
        early = [oid for oid in ids if (inventory.reservation(oid) or {}).get("status") == "CONFIRMED"]

    def delivered() -> bool:
        return all((inventory.reservation(oid) or {}).get("status") == "CONFIRMED" and len(sink.mails_of(oid)) == 1
                   for oid in ids)

    arrived, recovery_s = wait_for(delivered, RECOVERY_BUDGET_S, 0.5)
    scenario_record.update(orders=len(ids), confirmed_during_hole=len(early), recovery_s=round(recovery_s, 2))

    expect("swallowed", len(ids) == ORDERS and not early,
           f"the hole was not in effect: {len(ids)} of {ORDERS} orders accepted, {len(early)} confirmed through it")
    missing = {oid: (inventory.reservation(oid) or {}).get("status") for oid in ids
               if (inventory.reservation(oid) or {}).get("status") != "CONFIRMED"}
    expect("delivered", arrived,
           f"events sent while the broker's edge swallowed them never arrived {RECOVERY_BUDGET_S}s after it was "
           f"back (reservation per order): {missing}")
    steady("after")
    ledger_verdict(evidence, history)
