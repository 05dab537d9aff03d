"""Root cause 6: requests carrying invalid tokens (forged signature, expired, wrong audience,
garbage).

Prescribed: each is rejected with 401 and the manual's line, with no side effect (no order,
no charge).
"""

import time

import pytest
from conftest import ledger_verdict

from harness import runbook
from harness.guards import expect
from scenarios.shop.clients import ShopClient

INVALID_TOKEN = runbook.log_line("invalid_token")
TOKEN_FAULTS = ("auth.invalid_signature", "auth.expired", "auth.wrong_audience", "auth.garbage")


@pytest.mark.chaos(root_cause="invalid_token",
                   guards={"reject_invalid": "reject_invalid_tokens"},
                   protects={"reject_invalid": ("audience_check", "expiry_check")})
def test_invalid_token(stack, chaos, shop, vendor, history, scenario_record, steady, evidence):
    steady("before")
    injected = time.time()
    calls_before = len(vendor.journal())
    answers = {}
    for name in TOKEN_FAULTS:
        with chaos.inject(name, target="auth_service") as fault:
            intruder = ShopClient(stack.edge_url, history, token=fault.token)
            answers[name] = intruder.place_order().status
            intruder.close()
    calls_during = len(vendor.journal()) - calls_before
    steady("after")
    events = stack.logs("api_gateway", since=injected)
    scenario_record.update(answers=answers)

    accepted = {name: status for name, status in answers.items() if status != 401}
    expect("reject_invalid", not accepted, f"invalid tokens were not answered 401: {accepted}")
    expect("reject_invalid", sum(e.get("event") == INVALID_TOKEN for e in events) >= len(TOKEN_FAULTS),
           "the manual's invalid-token line is missing")
    expect("reject_invalid", calls_during == 0, f"rejected requests made {calls_during} vendor calls")
    ledger_verdict(evidence, history)
