"""Root cause 6, clock drift: tokens from an issuer whose clock runs ahead.

Prescribed: a small skew within the leeway is accepted (a real clock is never exact), a large
one is rejected.
"""

import pytest
from conftest import ledger_verdict, steady_state

from harness.clients import ShopClient

SMALL_SKEW_S, LARGE_SKEW_S = 3, 120


@pytest.mark.chaos(root_cause="invalid_token", runbook=["clock_skew_leeway"])
def test_clock_skew(stack, chaos, shop, vendor, history, scenario_record):
    steady_state(shop, "before")
    answers = {}
    for skew in (SMALL_SKEW_S, LARGE_SKEW_S):
        with chaos.inject("auth.clock_skew", target="auth_service", skew_s=skew) as fault:
            client = ShopClient(stack.edge_url, history, token=fault.token)
            answers[skew] = client.place_order().status
            client.close()
    steady_state(shop, "after")
    scenario_record.update(answers=answers)

    assert answers[SMALL_SKEW_S] == 201, f"[leeway] a {SMALL_SKEW_S}s skew was refused: {answers[SMALL_SKEW_S]}"
    assert answers[LARGE_SKEW_S] == 401, f"[beyond_leeway] a {LARGE_SKEW_S}s skew was accepted: {answers[LARGE_SKEW_S]}"
    ledger_verdict(shop, vendor, history)
