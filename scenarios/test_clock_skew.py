"""Root cause 6, clock drift: tokens from an issuer whose clock runs ahead.

Prescribed: a small skew within the leeway is accepted (a real clock is never exact), a large
one is rejected.
"""

import pytest
from conftest import ledger_verdict

from harness.clients import ShopClient
from harness.guards import expect

SMALL_SKEW_S, LARGE_SKEW_S = 3, 120


@pytest.mark.chaos(root_cause="invalid_token",
                   guards={"leeway": "clock_skew_leeway", "beyond_leeway": "clock_skew_leeway"},
                   protects={"leeway": "leeway", "beyond_leeway": "expiry_check"})
def test_clock_skew(stack, chaos, shop, vendor, history, scenario_record, steady, evidence):
    steady("before")
    answers = {}
    for skew in (SMALL_SKEW_S, LARGE_SKEW_S):
        with chaos.inject("auth.clock_skew", target="auth_service", skew_s=skew) as fault:
            client = ShopClient(stack.edge_url, history, token=fault.token)
            answers[skew] = client.place_order().status
            client.close()
    steady("after")
    scenario_record.update(answers=answers)

    expect("leeway", answers[SMALL_SKEW_S] == 201, f"a {SMALL_SKEW_S}s skew was refused: {answers[SMALL_SKEW_S]}")
    expect("beyond_leeway", answers[LARGE_SKEW_S] == 401,
           f"a {LARGE_SKEW_S}s skew was accepted: {answers[LARGE_SKEW_S]}")
    ledger_verdict(evidence, history)
