"""Root cause 2, the hard case: Postgres is down (its container stopped).

Prescribed: callers get 503 with Retry-After at once instead of hanging, the health score goes
red so the outage is seen, someone is paged and told when it is back, and the shop recovers by
itself when the database is back (the steady state after, with nothing restarted). Writing
nothing half-way is proven where it can fail: a database cut in the middle of an order
(charge_then_db_cut); here the database is gone before any order begins.
"""

import time

import pytest
from conftest import ledger_verdict

from harness import runbook
from harness.guards import expect
from harness.polling import wait_for

ANSWER_BUDGET_S = 3.5
ALERT_BUDGET_S = 10.0
DB_TIMEOUT = runbook.log_line("database_bottleneck")


@pytest.mark.chaos(root_cause="database_bottleneck",
                   guards={"db_503": "pool_timeouts", "health_red": None,
                           "steady_state_after": "recover_without_restart", "db_alert": "alert_on_recovery",
                           "recovery_alert": "alert_on_recovery"},
                   protects={"db_503": "db_timeouts", "health_red": "health_checks", "db_alert": "db_watch_alert",
                             "recovery_alert": "recovery_alerts"})
def test_db_outage(stack, chaos, shop, vendor, sink, history, scenario_record, steady, evidence):
    steady("before")
    with chaos.inject("process.db_outage", target="postgres"):
        answers = [shop.place_order(timeout_s=ANSWER_BUDGET_S) for _ in range(3)]
        health = shop.http.get("/health/system", timeout=ANSWER_BUDGET_S).json()
        paged, _ = wait_for(
            lambda: [a for a in sink.alerts("firing") if a["chaos"]["what"] == DB_TIMEOUT], ALERT_BUDGET_S, 0.2
        )
    healed = time.time()
    recovery_s = steady("after", budget_s=30)
    scenario_record.update(answers=[(op.status or op.outcome, round(op.latency_s, 2)) for op in answers],
                           system_health=health.get("score"), recovery_s=round(recovery_s, 2))

    hung = [round(op.latency_s, 2) for op in answers if op.outcome == "unknown"]
    expect("db_503", not hung, f"requests hung past {ANSWER_BUDGET_S}s while the database was down: {hung}")
    expect("db_503", all(op.status == 503 and op.headers.get("retry-after") for op in answers),
           f"expected 503 with Retry-After: {[(op.status, op.body) for op in answers]}")
    expect("health_red", health.get("level") == "red",
           f"the system looked {health.get('level')} with its database down")
    # The monitoring guide: someone is paged when the database stops answering, and told when it is back.
    expect("db_alert", paged, f"no alert within {ALERT_BUDGET_S}s saying {DB_TIMEOUT!r}: {sink.alerts()}")
    resolved, _ = wait_for(lambda: [a for a in sink.alerts("resolved") if a["ts"] >= healed], ALERT_BUDGET_S, 0.2)
    expect("recovery_alert", resolved, "no alert when the database answered again")
    ledger_verdict(evidence, history)
