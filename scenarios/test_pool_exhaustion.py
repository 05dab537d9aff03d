"""Root cause 2, the bottleneck: slow queries hold every connection of the gateway's pool.

A maintenance transaction locks the orders table (data.table_lock): every order's INSERT waits
on the lock, holding its pooled connection, and a burst of orders more than the pool's size
finds none free. Prescribed: the requests that find no connection get 503 + Retry-After within
the pool timeout instead of queueing for ever (with the manual's line), and afterwards the pool
gives back what the burst opened. Judged from outside: the client's statuses, Retry-After and
what the 503 says, and pg_stat_activity of the gateway's connections (by their application_name).
"""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import ledger_verdict

from harness import runbook
from harness.datastores import connect_database
from harness.guards import expect
from harness.polling import wait_for
from scenarios.shop import first_response

DB_TIMEOUT = runbook.log_line("database_bottleneck")
GATEWAY = "api_gateway"  # the application_name of the gateway's connections
POOL_SIZE = 10  # the gateway's pool at most, services/shop/db.py (max_size)
BURST = 3 * POOL_SIZE  # bounded: three requests for every connection there can be
# Every request answered, with room: on a loaded machine the burst's way in (auth, the pool
# opening connections one at a time) takes as long as the pool timeout itself, so the client's
# times can't tell a pool timeout from a deadline; the shop's answer says which it was.
ANSWER_BUDGET_S = 8.0
NO_CONNECTION = "PoolTimeout"  # a 503's reason when the pool had no connection to give in time
BASELINE_BUDGET_S = 30.0  # the burst's connections closed again, one per idle second


def gateway_connections(stack) -> tuple[int, int]:
    """The gateway's connections the database sees now: all of them, and those waiting on a lock."""
    with connect_database(stack, autocommit=True) as conn:
        row = conn.execute("SELECT count(*), count(*) FILTER (WHERE wait_event_type = 'Lock') "
                           "FROM pg_stat_activity WHERE application_name = %s", [GATEWAY]).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def exhausted(stack) -> bool:
    """Every connection of the gateway waits on the lock: its pool has none to give."""
    total, waiting = gateway_connections(stack)
    return 0 < waiting == total


@pytest.mark.chaos(root_cause="database_bottleneck",
                   guards={"pool_held": "check_db_metrics", "pool_503": "pool_timeouts",
                           "pool_baseline": "tune_pool"},
                   protects={"pool_503": "pool_timeout", "pool_baseline": "pool_shrink"},
                   preconditions=("pool_held",))
def test_pool_exhaustion(stack, chaos, shop, vendor, history, scenario_record, steady, evidence):
    steady("before")
    baseline, _ = gateway_connections(stack)
    injected = time.time()
    with chaos.inject("data.table_lock", target="postgres", table="orders"):
        with ThreadPoolExecutor(BURST) as clients:
            burst = [clients.submit(shop.place_order, timeout_s=ANSWER_BUDGET_S) for _ in range(BURST)]
            held, _ = wait_for(lambda: exhausted(stack), ANSWER_BUDGET_S, 0.05)
            answers = [future.result() for future in burst]
    _, settled_s = wait_for(lambda: gateway_connections(stack)[0] <= baseline, BASELINE_BUDGET_S, 0.5)
    after, _ = gateway_connections(stack)
    recovery_s = steady("after")
    events = stack.logs(GATEWAY, since=injected)
    scenario_record.update(answers=sorted(((op.status or op.outcome, round(op.latency_s, 2)) for op in answers),
                                          key=lambda answer: answer[1]),
                           no_connection=sorted(round(op.latency_s, 2) for op in answers
                                                if NO_CONNECTION in str(op.body.get("reason"))),
                           connections_before=baseline, connections_after=after,
                           baseline_s=round(settled_s, 2), recovery_s=round(recovery_s, 2))

    # The manual's first responses: the database's own view of the connections (waiting on a lock:
    # the slow query), then the pool's limits judged by what they did (its timeout, its idle close).
    first_response.performed(scenario_record, "check_db_metrics", "read pg_stat_activity by application_name",
                             f"every gateway connection waiting on a lock: {held}")
    first_response.performed(scenario_record, "tune_pool", "read the pool's size before and after the burst",
                             f"{baseline} before, {after} {settled_s:.1f}s after")
    expect("pool_held", held, "the lock never held every connection of the gateway at once")
    hung = sorted(round(op.latency_s, 2) for op in answers if op.outcome == "unknown")
    expect("pool_503", not hung, f"{len(hung)} of {BURST} requests hung past {ANSWER_BUDGET_S}s (on the lock, or "
                                 f"queued for a connection of the exhausted pool): {hung}")
    told = [op for op in answers if NO_CONNECTION in str(op.body.get("reason"))]
    expect("pool_503", told, f"no request was told the pool had no connection ({NO_CONNECTION}): "
                             f"{[str(op.body)[:80] for op in answers]}")
    expect("pool_503", all(op.status == 503 and op.headers.get("retry-after") for op in answers),
           f"expected 503 with Retry-After: {[(op.status, str(op.body)[:80]) for op in answers]}")
    expect("pool_503", any(e.get("event") == DB_TIMEOUT for e in events), "the manual's database line was not logged")
    expect("pool_baseline", after <= baseline,
           f"the gateway kept {after} connections {BASELINE_BUDGET_S:.0f}s after the burst, {baseline} before")
    ledger_verdict(evidence, history)
