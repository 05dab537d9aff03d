"""Root cause 2: the database answers slowly (Toxiproxy latency on the postgres edge).

Prescribed: bounded pool and timeouts so that callers get 503 with Retry-After within the
budget instead of a hung worker, the manual's line, and recovery on its own once the database
is fast again (no restart).
"""

import time

import pytest
from conftest import ledger_verdict, steady_state

DB_TIMEOUT = "Database connection timed out."
ANSWER_BUDGET_S = 3.5


@pytest.mark.chaos(root_cause="database_bottleneck", runbook=["pool_timeouts", "recover_without_restart"])
def test_db_connection_timeout(stack, chaos, shop, vendor, history, scenario_record):
    steady_state(shop, "before")
    injected = time.time()
    with chaos.inject("network.latency", target="postgres", latency_ms=6000):
        answers = [shop.place_order(timeout_s=ANSWER_BUDGET_S) for _ in range(3)]
    recovery_s = steady_state(shop, "after")
    events = stack.logs("api_gateway", since=injected)
    scenario_record.update(answers=[(op.status or op.outcome, round(op.latency_s, 2)) for op in answers],
                           recovery_s=round(recovery_s, 2))

    hung = [round(op.latency_s, 2) for op in answers if op.outcome == "unknown"]
    assert not hung, f"[db_503] requests hung past {ANSWER_BUDGET_S}s while the database was slow: {hung}"
    assert all(op.status == 503 and op.headers.get("retry-after") for op in answers), \
        f"[db_503] expected 503 with Retry-After: {[(op.status, op.body) for op in answers]}"
    assert any(e.get("event") == DB_TIMEOUT for e in events), "[log_line] the manual's database line was not logged"
    ledger_verdict(shop, vendor, history)
