"""Root cause 1, one order at a time: the vendor keeps refusing one order (a declined card)
while it charges every other, and pending orders wait behind it.

Prescribed: retries back off per order and end. The resilient settler counts the vendor's
refusals of that order, backs off, and after a bounded number ends it FAILED, releases its
stock and alerts; the orders behind it are settled meanwhile. A settler that retries the
refused order first on every tick never reaches the others.
"""

import pytest
from conftest import RECOVERY_BUDGET_S, ledger_verdict

from harness.guards import expect
from harness.polling import wait_for
from scenarios.shop.vendors import at_every_vendor

DECLINED_CENTS = 4242
BEHIND = 3


@pytest.mark.chaos(root_cause="payment_gateway_outage",
                   guards={"pending_accepted": "fallback", "others_settled": "exactly_once_settlement",
                           "refused_order_failed": "give_up_after_refusals"},
                   protects={"pending_accepted": "fallback", "others_settled": "settlement",
                             "refused_order_failed": "settler_give_up"})
def test_settler_gives_up(stack, chaos, shop, vendor, sink, history, steady, evidence, scenario_record):
    steady("before")
    # At every vendor: the issuer declines the card whoever asks, and the outage leaves no vendor
    # to fail over to (the second one would take the orders behind at once).
    with at_every_vendor(chaos, stack, "http.decline", amount_cents=DECLINED_CENTS):
        refused = shop.place_order(amount_cents=DECLINED_CENTS)
        with at_every_vendor(chaos, stack, "http.status", status=503):
            behind = [shop.place_order() for _ in range(BEHIND)]
        ids = [op.order_id for op in behind if op.order_id]

        def settled() -> bool:
            return all(shop.status_of(oid) == "PAID" for oid in ids)

        others_paid, settle_s = wait_for(settled, RECOVERY_BUDGET_S, 0.25)
        # Judged at once: a settler that settles nothing would keep the vendor's fault on for
        # another wait, and the stack's guardrail would stop the scenario instead of this guard.
        expect("pending_accepted", refused.status == 202 and all(op.status == 202 for op in behind),
               f"orders were not accepted as PAYMENT_PENDING: {refused.status} {[op.status for op in behind]}")
        expect("others_settled", others_paid,
               f"orders behind the refused one were not settled within {RECOVERY_BUDGET_S:.0f}s")
        gave_up, _ = wait_for(lambda: shop.status_of(refused.order_id) == "FAILED",
                              RECOVERY_BUDGET_S, 0.25) if refused.order_id else (False, 0)
    alerts = [a for a in sink.alerts("firing") if refused.order_id and refused.order_id in a["chaos"]["what"]]
    steady("after")
    scenario_record.update(refused=(refused.status, refused.body.get("status")), settle_s=round(settle_s, 2),
                           behind=[(op.status, op.body.get("status")) for op in behind])

    expect("refused_order_failed", gave_up,
           f"the refused order is {shop.status_of(refused.order_id)}, not FAILED")
    expect("refused_order_failed", bool(alerts), "no alert named the order the vendor kept refusing")
    # The refused order was answered 202 and ended FAILED: the one anomaly this scenario provokes.
    ledger_verdict(evidence, history, expected={("pending_not_settled", refused.key)})
