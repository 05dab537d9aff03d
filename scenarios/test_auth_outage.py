"""Root cause 6, its other face: auth_service unreachable.

Prescribed: fail closed: callers answer 503 within their timeout and let nothing through
unverified; service resumes by itself when auth is back.
"""

import pytest
from conftest import ledger_verdict

from harness.guards import expect
from scenarios.shop import first_response
from scenarios.shop.clients import ShopClient

ANSWER_BUDGET_S = 3.0


@pytest.mark.chaos(root_cause="invalid_token", guards={"fail_closed": "fail_closed",
                                                       "auth_checked": "check_auth_service"},
                   protects={"fail_closed": "auth_fail_closed"}, preconditions=("auth_checked",))
def test_auth_outage(stack, chaos, shop, vendor, history, scenario_record, steady, evidence):
    steady("before")
    with chaos.inject("auth.auth_down", target="auth"):
        genuine = shop.place_order(timeout_s=ANSWER_BUDGET_S + 2)
        forged = ShopClient(stack.edge_url, history, token="forged").place_order(timeout_s=ANSWER_BUDGET_S + 2)
        # The manual's first response: check auth_service's health (here as the system reports it).
        system = shop.system_health()
    recovery_s = steady("after")
    scenario_record.update(genuine=genuine.status, forged=forged.status, recovery_s=round(recovery_s, 2))

    expect("fail_closed", forged.status in (401, 503),
           f"a forged token got through while auth was down: {forged.status}")
    expect("fail_closed", genuine.status == 503 and genuine.latency_s < ANSWER_BUDGET_S,
           f"expected 503 within {ANSWER_BUDGET_S}s, got {genuine.status} in {genuine.latency_s:.1f}s")
    first_response.performed(scenario_record, "check_auth_service", "read GET /health/system",
                             f"weakest: {', '.join(first_response.weakest(system)) or 'none'} "
                             f"(score {system.get('score')})")
    gap = first_response.health_gap(system, "auth_service")
    expect("auth_checked", gap is None, f"the system's health does not point at auth while it is down: {gap}")
    ledger_verdict(evidence, history)
