"""Several faults at once under load: the payment vendor refuses, the inventory edge is slow and
malformed messages hit the queue, while Locust customers keep ordering.

What must hold (Jepsen-style, judged from the load's own history afterwards): customers are
served within the SLO while the faults are active (the calm before them does not count), every
fault was really in effect (the malformed messages parked in the DLQ, the orders slowed by the
inventory edge), and every accepted order ends in exactly one terminal state, none lost, none
charged twice, once everything is healed: the load's orders and the steady-state checks' alike.

A customer told PAYMENT_PENDING sends the same order again under the same key (as one unsure it
went through does), so a shop whose idempotency key does not hold takes a second order and
charges and mails it too: [done_once] catches that, apart from what [ledger] finds lost or stuck.
"""

import time

import pytest
from conftest import ledger_verdict

from harness.datastores import queue_depth
from harness.guards import expect
from harness.load import Load
from harness.polling import wait_for
from scenarios.shop.ledger import DONE_TWICE, Verdict
from scenarios.shop.vendors import at_every_vendor
from scenarios.shop.workload import customers

DURATION_S = 20
CALM_S, STORM_S = 4, 8
SLO_ACCEPTED = 0.95  # share of orders answered with the order
ANSWERED = (200, 201, 202)  # the order: replayed to a customer asking again, paid, or accepted for later
SLO_P99_MS = 3000
INVENTORY_LATENCY_MS = 200
MALFORMED = 2
DLQ = "inventory.order-events.dlq"


def storm_window(journal) -> tuple[float, float]:
    """From the first fault's injection to the last one's heal (the fault journal's times)."""
    windows = journal.windows()
    return min(start for _, start, _ in windows), max(end or time.time() for _, _, end in windows)


def in_effect(journal, fault: str) -> tuple[float, float]:
    """From when a fault had landed to when it was healed."""
    landed = next(e["ts"] for e in journal.entries if e["action"] == "landed" and e["fault"] == fault)
    healed = next((e["ts"] for e in journal.entries if e["action"] == "heal" and e["fault"] == fault), time.time())
    return landed, healed


def first_tries(ops: list) -> list:
    """Each key's first try, in the order sent: a customer's second one is answered from the order
    the shop already has, without the inventory edge."""
    firsts: dict = {}
    for op in ops:
        firsts.setdefault(op.key, op)
    return list(firsts.values())


@pytest.mark.chaos(root_cause="storm",
                   guards={"load": None, "slo": "slo_under_faults",
                           "malformed_dead_lettered": None, "slow_edge": None, "ledger": "zero_lost",
                           "done_once": "zero_duplicated", "asked_again": None},
                   protects={"slo": "fallback", "done_once": "idempotency"},
                   preconditions=("load", "malformed_dead_lettered", "slow_edge", "asked_again"))
def test_storm(stack, chaos, shop, vendor, history, scenario_record, clean_dlq, load_settings, steady, evidence):
    steady("before")
    broker = stack.endpoint("rabbitmq")
    with Load(stack, customers(stack, ask_again=True), duration_s=DURATION_S, **load_settings) as load:
        time.sleep(CALM_S)
        with at_every_vendor(chaos, stack, "http.status", status=503), \
                chaos.inject("network.latency", target="inventory", latency_ms=INVENTORY_LATENCY_MS), \
                chaos.inject("message.malformed_json", target="rabbitmq", count=MALFORMED):
            time.sleep(STORM_S)
    orders, stats = load.history(), load.stats()
    began, ended = storm_window(chaos.journal)
    during = orders.between(began, ended)
    accepted = [op for op in during if op.status in ANSWERED]
    share = len(accepted) / max(1, len(during))
    scenario_record.update(load=stats, orders=len(orders.ops), orders_during_storm=len(during),
                           accepted_during_storm=len(accepted), accepted_share=round(share, 3))

    # The SLOs need only the load's own record, so they are judged before the steady state after.
    expected = load_settings["users"] * load_settings["rate"] * DURATION_S
    expect("load", len(orders.ops) >= expected * 0.5, f"only {len(orders.ops)} orders were sent")
    expect("load", during, f"no order was sent while the faults were active ({began:.2f}..{ended:.2f})")
    expect("slo", share >= SLO_ACCEPTED,
           f"{share:.0%} of the {len(during)} orders sent during the storm accepted (SLO {SLO_ACCEPTED:.0%}): "
           f"{sorted({op.status for op in during if op not in accepted}, key=str)}")
    p99 = stats.get("p99_ms")
    expect("slo", stats.get("requests") and p99 is not None,
           f"Locust's stats are missing, so the p99 SLO can't be judged: {stats or 'no aggregate was written'}")
    expect("slo", p99 <= SLO_P99_MS, f"p99 {p99} ms > {SLO_P99_MS} ms")

    steady("after")
    parked, _ = wait_for(lambda: (queue_depth(broker.host, broker.port, DLQ) or 0) >= MALFORMED and
                         queue_depth(broker.host, broker.port, DLQ), 15, 0.3)
    slowed_from, slowed_to = in_effect(chaos.journal, "network.latency")
    firsts = first_tries(orders.ops)
    slowed = [op for op in firsts if op.status is not None and op.invoked >= slowed_from
              and op.completed is not None and op.completed <= slowed_to]
    too_fast = [round(op.latency_s, 3) for op in slowed if op.latency_s < INVENTORY_LATENCY_MS / 1000]
    scenario_record.update(dlq_depth=parked, slowed_orders=len(slowed), faster_than_the_edge=too_fast[:20])
    expect("malformed_dead_lettered", parked == MALFORMED,
           f"the DLQ holds {parked} messages, {MALFORMED} malformed ones were injected during the storm")
    expect("slow_edge", slowed and not too_fast,
           f"the slow inventory edge was not in effect: of {len(slowed)} orders answered while it was, "
           f"{len(too_fast)} took less than its {INVENTORY_LATENCY_MS} ms: {too_fast[:10]}")
    asked_again = len(orders.ops) - len(firsts)
    scenario_record.update(asked_again=asked_again)
    expect("asked_again", asked_again, "no customer sent an order again under its key, so a second order "
           "for one key could not be seen: were none told PAYMENT_PENDING during the storm?")
    for judged in (orders, history):  # the load's orders, then the steady-state checks' own
        found = ledger_verdict(evidence, judged, strict=False)
        twice = Verdict([a for a in found.anomalies if a.kind in DONE_TWICE])
        expect("done_once", twice.ok, twice.explain())
        expect("ledger", found.ok, found.explain())
