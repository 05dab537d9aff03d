"""Root cause 2: the database answers slowly (Toxiproxy latency on the postgres edge).

Prescribed: bounded pool and timeouts so that callers get 503 with Retry-After within the
budget instead of a hung worker, the manual's line, and recovery on its own once the database
is fast again (no restart).
"""

import time

import pytest
from conftest import ledger_verdict

from harness import runbook
from harness.guards import expect

DB_TIMEOUT = runbook.log_line("database_bottleneck")
ANSWER_BUDGET_S = 3.5
# Nothing is restarted here: the steady state after the heal is the shop recovering on its own
# (a service that crashed or hung would leave it red).
@pytest.mark.chaos(root_cause="database_bottleneck",
                   guards={"db_503": "pool_timeouts", "steady_state_after": "recover_without_restart"},
                   protects={"db_503": "db_timeouts"})
def test_db_connection_timeout(stack, chaos, shop, vendor, history, scenario_record, steady, evidence):
    steady("before")
    injected = time.time()
    with chaos.inject("network.latency", target="postgres", latency_ms=6000):
        answers = [shop.place_order(timeout_s=ANSWER_BUDGET_S) for _ in range(3)]
    recovery_s = steady("after")
    events = stack.logs("api_gateway", since=injected)
    scenario_record.update(answers=[(op.status or op.outcome, round(op.latency_s, 2)) for op in answers],
                           recovery_s=round(recovery_s, 2))

    hung = [round(op.latency_s, 2) for op in answers if op.outcome == "unknown"]
    expect("db_503", not hung, f"requests hung past {ANSWER_BUDGET_S}s while the database was slow: {hung}")
    expect("db_503", all(op.status == 503 and op.headers.get("retry-after") for op in answers),
           f"expected 503 with Retry-After: {[(op.status, op.body) for op in answers]}")
    expect("db_503", any(e.get("event") == DB_TIMEOUT for e in events), "the manual's database line was not logged")
    ledger_verdict(evidence, history)
