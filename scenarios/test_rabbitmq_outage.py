"""The RabbitMQ-configuration incident / root cause 4: the broker goes away while orders keep coming.

Prescribed: the outbox keeps every event while the broker is down, the health score shows the
broker connection lost, the consumer reconnects by itself, and when the broker is back every
order's event is delivered: zero lost, each order's reservation confirmed and its customer
mailed exactly once. The outbox is judged from its table, read straight from the database: a
row per order, unpublished while the broker is away, every one published once it is back.
"""

import pytest
from conftest import RECOVERY_BUDGET_S, ledger_verdict

from harness.datastores import connect_database
from harness.guards import expect
from harness.polling import wait_for

ORDERS_DURING_OUTAGE = 4
BROKER_SHOWN_S = 5.0
BROKER_CHECKS = {"api_gateway": "broker_connected", "inventory_service": "broker_consumer"}


def _broker_checks(shop) -> dict[str, bool | None]:
    """Each broker user's broker check in the system's health, as an operator reads it (None:
    the service did not answer its health)."""
    services = shop.http.get("/health/system", timeout=3).json().get("services", {})
    return {service: (services.get(service) or {}).get("checks", {}).get(check)
            for service, check in BROKER_CHECKS.items()}


def outbox_rows(stack, order_ids: list[str]) -> dict[str, list[bool]]:
    """Per order, its outbox rows as published (True) or not yet (False)."""
    rows: dict[str, list[bool]] = {oid: [] for oid in order_ids}
    with connect_database(stack) as conn:
        for order_id, published in conn.execute(
                "SELECT body->>'order_id', published_at IS NOT NULL FROM outbox WHERE body->>'order_id' = ANY(%s)",
                [order_ids]).fetchall():
            rows[order_id].append(published)
    return rows


def unpublished(rows: dict[str, list[bool]]) -> dict[str, list[bool]]:
    """The orders with no outbox row, or with a row not yet published."""
    return {oid: published for oid, published in rows.items() if not published or not all(published)}


# Every order's event reaching inventory after the broker is back needs the consumer to have
# reconnected by itself.
@pytest.mark.chaos(root_cause="rabbitmq_config_missing",
                   guards={"orders_accepted": None, "outbox": "outbox", "zero_lost": "worker_auto_recovery",
                           "broker_in_health": "broker_monitoring"},
                   protects={"outbox": "outbox", "zero_lost": "broker_reconnect", "broker_in_health": "health_checks"},
                   preconditions=("orders_accepted",))
def test_rabbitmq_outage(stack, chaos, shop, vendor, sink, inventory, history, scenario_record, steady, evidence):
    steady("before")
    with chaos.inject("process.broker_outage", target="rabbitmq"):
        during = [shop.place_order() for _ in range(ORDERS_DURING_OUTAGE)]
        ids = [op.order_id for op in during if op.order_id]
        kept = outbox_rows(stack, ids)  # while the broker is still down
        # The health score shows the broker connection: every service that uses the broker says
        # it lost it (seen within a bound: a service learns of a closed connection from the socket).
        shown, _ = wait_for(lambda: not any(_broker_checks(shop).values()), BROKER_SHOWN_S, 0.2)
        broker_checks = _broker_checks(shop)
    scenario_record.update(outbox_during={oid: len(rows) for oid, rows in kept.items()},
                           broker_checks_during=broker_checks)

    # What the outage left is judged at once; a shop that lost the events fails here, on its
    # guard, rather than later on a consumer that never came back.
    expect("orders_accepted", len(ids) == ORDERS_DURING_OUTAGE and all(op.status == 201 for op in during),
           f"orders during the outage: {[op.status for op in during]}")
    unkept = {oid: rows for oid, rows in kept.items() if not rows or any(rows)}
    expect("outbox", ids and not unkept,
           f"events not kept unpublished in the outbox while the broker was down (order: published flags): {unkept}")
    relayed, _ = wait_for(lambda: not unpublished(outbox_rows(stack, ids)), RECOVERY_BUDGET_S, 0.5)

    def delivered() -> bool:
        return all((inventory.reservation(oid) or {}).get("status") == "CONFIRMED" for oid in ids)

    confirmed, recovery_s = wait_for(delivered, RECOVERY_BUDGET_S, 0.5)
    mails = [m for m in sink.mails() if m["order_id"] in ids]
    scenario_record.update(recovery_s=round(recovery_s, 2), mails=len(mails))

    expect("zero_lost", relayed,
           f"outbox rows still unpublished after the broker came back: {unpublished(outbox_rows(stack, ids))}")
    lost = [oid for oid in ids if (inventory.reservation(oid) or {}).get("status") != "CONFIRMED"]
    expect("zero_lost", confirmed, f"events never reached inventory after the broker came back: {lost}")
    expect("zero_lost", len(mails) == len(ids), f"{len(mails)} e-mails for {len(ids)} orders")
    # Judged after the outbox, so a shop that loses events fails on that, its first guard.
    expect("broker_in_health", shown, f"the health score did not show the broker gone within {BROKER_SHOWN_S:g}s "
                                      f"(each service's broker check, True: connected): {broker_checks}")
    steady("after")
    ledger_verdict(evidence, history)
