"""Root cause 6, clock drift: a token verified by a clock that disagrees with the one that issued it.

auth_service issues the shop's tokens and verifies them for every caller. Each token here is
issued at the true time; then auth_service's own clock is shifted for real (`auth.clock_skew`,
libfaketime, proven by the clock its /health reads) and the token is presented at the edge:

- verifier behind: the token's iat/nbf are in the verifier's future;
- verifier ahead: the short-lived token's exp is in the verifier's past.

Prescribed: a skew within the leeway is accepted (a real clock is never exact), one beyond it is
rejected, in either direction. The within-leeway skews are chosen so that only the leeway lets
the token through (the fragile shop, with none, refuses them); they hold while the token is
verified less than about 3 s after it was issued, which `issued_to_verified_s` records.
"""

import time

import pytest
from conftest import ledger_verdict

from harness.guards import expect
from scenarios.shop.clients import ShopClient, mint_token

TTL_S = 60  # the ahead cases' tokens: short-lived, so a clock a minute ahead sees them expire
# case -> the verifier's skew in seconds (negative: behind the issuer); the guard of a case is
# "leeway" or "beyond_leeway", the words its name starts with
CASES = {
    "leeway_behind": -4,  # iat/nbf up to 4 s in its future: within the 5 s leeway
    "leeway_ahead": TTL_S + 1,  # expired 1-3 s ago for it: within the leeway
    "beyond_leeway_behind": -120,
    "beyond_leeway_ahead": TTL_S + 120,
}


def _side(skew: int) -> str:
    return f"{abs(skew)} s {'behind' if skew < 0 else 'ahead'}"


@pytest.mark.chaos(root_cause="invalid_token",
                   guards={"leeway": "clock_skew_leeway", "beyond_leeway": "clock_skew_leeway"},
                   protects={"leeway": "leeway", "beyond_leeway": "expiry_check"})
def test_clock_skew(stack, chaos, shop, vendor, history, scenario_record, steady, evidence):
    steady("before")
    answers, took = {}, {}
    for tag, skew in CASES.items():
        token = mint_token(stack, ttl_s=TTL_S)  # issued by auth_service at the true time
        issued = time.monotonic()
        with chaos.inject("auth.clock_skew", target="auth_service", skew_s=skew):
            client = ShopClient(stack.edge_url, history, token=token)
            answers[tag] = client.place_order().status
            took[tag] = round(time.monotonic() - issued, 2)
            client.close()
    steady("after")
    scenario_record.update(answers=answers, skews_s=CASES,
                           issued_to_verified_s=took)

    def within(case: str) -> str:
        return (f"a verifier {_side(CASES[case])}, within the leeway, refused a genuine token: "
                f"{answers[case]} (verified {took[case]} s after it was issued)")

    def beyond(case: str) -> str:
        return f"a verifier {_side(CASES[case])}, beyond the leeway, did not reject the token: {answers[case]}"

    refused = [within(case) for case in CASES if case.startswith("leeway") and answers[case] != 201]
    expect("leeway", not refused, "; ".join(refused))
    let_through = [beyond(case) for case in CASES if case.startswith("beyond") and answers[case] != 401]
    expect("beyond_leeway", not let_through, "; ".join(let_through))
    ledger_verdict(evidence, history)
