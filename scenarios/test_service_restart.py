"""Root cause 3's first response: restart the affected instance, with care.

inventory_service's consumer wedges (process.consumer_wedge): the next order event is applied
(reservation confirmed, customer mailed) and then its handler hangs before the ack, and every
later event waits behind it. The HTTP API answers on; nothing else is consumed. The operator
restarts the service (harness.faults.process.restart_service, through the `operator` fixture,
which records it as the report's recovery action). The restart is what restores service: the
wedge lives in the process's memory, and the broker redelivers every unacked event to the new
consumer, the one already applied included.

Prescribed care: a restart must be safe. With dedup the redelivered event of the order already
applied changes nothing and mails nobody again; without it that customer gets a second mail.
"""

import pytest
from conftest import EVENT_BUDGET_S, RECOVERY_BUDGET_S, ledger_verdict

from harness.faults.process import wedge_state
from harness.guards import expect
from harness.polling import wait_for
from scenarios.shop import first_response

SERVICE = "inventory_service"
STUCK = 3  # orders placed while the consumer is wedged: one applied and held, the rest waiting
WEDGED = {"armed": True, "held": 1, "waiting": STUCK - 1}  # every stuck order's event reached the wedge


@pytest.mark.chaos(root_cause="inventory_null_pointer",
                   guards={"wedged": None, "restart_safe": "restart_service"},
                   protects={"restart_safe": "dedup"}, preconditions=["wedged"])
def test_service_restart(stack, chaos, shop, sink, operator, history, steady, evidence, scenario_record):
    steady("before")
    with chaos.inject("process.consumer_wedge", target=SERVICE):
        stuck = [shop.place_order() for _ in range(STUCK)]
        ids = [op.order_id for op in stuck if op.order_id]
        bitten, _ = wait_for(lambda: wedge_state(stack, SERVICE) == WEDGED, EVENT_BUDGET_S, 0.1)
        applied = [oid for oid in ids if steady.confirmed(oid)]
        expect("wedged", len(ids) == STUCK and bitten and len(applied) == 1,
               f"the consumer did not wedge on the orders placed ({[op.status for op in stuck]}): "
               f"{wedge_state(stack, SERVICE)}, confirmed {applied} of {ids}")
        outcome = operator.restart(SERVICE)
        flowing, flow_s = wait_for(lambda: all(steady.confirmed(oid) and steady.mailed(oid) for oid in ids),
                                   RECOVERY_BUDGET_S, 0.2)
        scenario_record.update(restart=outcome, flow_after_restart_s=round(flow_s, 2), held=applied)
        first_response.performed(
            scenario_record, "restart_service", f"restarted {SERVICE} (graceful stop, start, readiness): {outcome}",
            f"the {len(ids)} stuck orders confirmed and mailed {flow_s:.1f}s after it" if flowing
            else f"the stuck orders still not confirmed and mailed {RECOVERY_BUDGET_S:.0f}s after it")
        # Judged while the wedge is still armed: the heal releases it, and then the stuck orders
        # would flow without the restart having done anything.
        expect("restart_safe", outcome == "restored", f"the restarted {SERVICE} did not answer: {outcome}")
        expect("restart_safe", flowing, f"orders stuck in the wedged consumer were not confirmed and mailed "
                                        f"within {RECOVERY_BUDGET_S:.0f}s of the restart")
    steady("after")
    mails = {oid: len(sink.mails_of(oid)) for oid in ids}
    scenario_record.update(mails=mails)

    expect("restart_safe", all(n == 1 for n in mails.values()),
           f"the restart's redelivered events mailed customers again (mails per order {mails}; "
           f"{applied} was applied before the restart)")
    ledger_verdict(evidence, history)
