"""The RabbitMQ-configuration incident's dead worker: the order-event consumer inside
inventory_service dies (the service itself keeps running and answering), and every restart
within the fault's hold-down dies too, as a consumer that crashes on start.

Prescribed (worker auto-recovery, the RabbitMQ monitor): the consumer's supervisor restarts it
by itself within seconds once it can start, and counts the recovery (a success rate in
inventory_service's /health); the broker monitor pages when the queue has had no consumer for
5 s and again when one is back; the orders placed meanwhile are accepted, wait in the queue and
are processed after the restart, none lost and none twice (the ledger). In the incident nobody
restarted anything for half an hour.

Judged from the outside: the broker's consumer count, the reservations the events confirm, the
alert sink and the mails.
"""

import time

import httpx
import pytest
from conftest import RECOVERY_BUDGET_S, ledger_verdict

from harness.faults.message import consumers_now
from harness.guards import expect
from harness.polling import wait_for

SERVICE = "inventory_service"
DOWN_S = 11.0  # longer than two of the broker monitor's checks 5 s apart: its page is certain
ORDERS_WHILE_DEAD = 3
RESTART_BUDGET_S = 10.0  # after the hold-down: the supervisor checks every 0.5 s, the consumer attaches in ~1 s
CHECK_EVERY_S = 5.0  # the broker monitor's interval (services/shop/broker_monitor.py)
ALERT_BUDGET_S = 12.0  # the monitor checks every 5 s; two checks, and the alert's way to the sink


def recoveries(stack) -> dict:
    """inventory_service's own count of its consumer's restarts (/health consumer_recoveries)."""
    body = httpx.get(f"{stack.endpoint(SERVICE).url}/health", timeout=5).json()
    return body.get("consumer_recoveries") or {}


def consumer_alerts(sink, status: str, since: float) -> list[dict]:
    return [a for a in sink.alerts(status) if a["ts"] >= since and "consumer" in a["chaos"]["what"].lower()]


@pytest.mark.chaos(root_cause="rabbitmq_config_missing",
                   guards={"monitor_watching": None, "orders_accepted": None, "orders_waited": None,
                           "restarted": "worker_auto_recovery",
                           "consumer_alert": "consumer_alert", "recovery_alert": "consumer_alert"},
                   protects={"restarted": "consumer_supervisor", "consumer_alert": "consumer_alert",
                             "recovery_alert": "recovery_alerts"},
                   preconditions=("monitor_watching", "orders_accepted", "orders_waited"))
def test_worker_auto_recovery(stack, chaos, shop, sink, inventory, history, scenario_record, steady, evidence):
    steady("before")
    # The premise of the alert: the monitor watches the queue once it has seen a consumer there
    # (start-up is no outage), which a stack just started may not have yet: at most two checks.
    watching, _ = wait_for(lambda: shop.health().get("consumer_watch", {}).get("watching") is True,
                           2 * CHECK_EVERY_S + 1, 0.25)
    expect("monitor_watching", watching, "the gateway's broker monitor never saw a consumer on the queue")
    before = recoveries(stack)
    killed_at = time.time()
    with chaos.inject("message.consumer_kill", target=SERVICE, down_s=DOWN_S):
        during = [shop.place_order() for _ in range(ORDERS_WHILE_DEAD)]
        ids = [op.order_id for op in during if op.order_id]
        still_dead = consumers_now(stack) == 0
        waited = [oid for oid in ids if (inventory.reservation(oid) or {}).get("status") != "CONFIRMED"]
        expect("orders_accepted", len(ids) == ORDERS_WHILE_DEAD and all(op.status == 201 for op in during),
               f"orders while the consumer was dead: {[(op.status, op.body) for op in during]}")
        # The premise: every order was accepted while no consumer could take its event (on a
        # machine slow enough to take the whole hold-down for them, the proof below proves nothing).
        expect("orders_waited", still_dead and len(waited) == len(ids),
               f"the orders were not all placed while the consumer was dead ({len(waited)} of {len(ids)} "
               f"unprocessed, consumer gone: {still_dead}): the hold-down of {DOWN_S:.0f}s ended first")

        # Judged inside the fault window: the heal restarts the consumer by hand, so only a
        # restart seen before it is the supervisor's.
        back, back_s = wait_for(lambda: (consumers_now(stack) or 0) >= 1, DOWN_S + RESTART_BUDGET_S, 0.25)
        expect("restarted", back, f"no consumer on the queue {DOWN_S + RESTART_BUDGET_S:.0f}s after it was "
               f"killed (held down for {DOWN_S:.0f}s): nothing restarted it")

        def delivered() -> bool:
            return all((inventory.reservation(oid) or {}).get("status") == "CONFIRMED" for oid in ids)

        confirmed, _ = wait_for(delivered, RECOVERY_BUDGET_S, 0.25)
        lost = [oid for oid in ids if (inventory.reservation(oid) or {}).get("status") != "CONFIRMED"]
        expect("restarted", confirmed, f"orders placed while the consumer was dead never processed: {lost}")
        # The restart is counted once the new consumer is seen attached: a moment after the
        # broker shows it, so read with a bound rather than once.
        counted, _ = wait_for(lambda: recoveries(stack).get("succeeded", 0) > before.get("succeeded", 0),
                              RESTART_BUDGET_S, 0.25)
        after = recoveries(stack)
        scenario_record.update(back_s=round(back_s, 2), waited=len(waited), recoveries_before=before,
                               recoveries_after=after)
        expect("restarted", counted and after.get("success_rate") is not None,
               f"{SERVICE}'s /health does not count the recovery: before {before}, after {after}")

        paged, _ = wait_for(lambda: consumer_alerts(sink, "firing", killed_at), ALERT_BUDGET_S, 0.2)
        expect("consumer_alert", paged, f"no alert about the queue's missing consumer: {sink.alerts()}")
        resolved, _ = wait_for(lambda: consumer_alerts(sink, "resolved", killed_at), ALERT_BUDGET_S, 0.2)
        expect("recovery_alert", resolved, f"no alert when the consumer was back: {sink.alerts()}")
    mails = {oid: len(sink.mails_of(oid)) for oid in ids}
    scenario_record.update(mails=mails)
    steady("after")
    ledger_verdict(evidence, history)
