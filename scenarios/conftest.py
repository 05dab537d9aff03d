"""What every scenario shares: the steady-state check, the shop's observers, the ledger verdict.

Scenarios read: steady state before -> inject -> observe -> heal -> steady state after ->
ledger. Each check is a guard (harness.guards.expect) whose tag names what it protects; its
failure message starts with the tag, and the fragile proof (tests/integration/test_fragile_proof.py)
checks that each scenario fails on its guard. The guards of these shared helpers are declared
once, in harness.guards.COMMON, rather than in every scenario's marker.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator
from typing import Any

import pytest

from harness.datastores import connect_database, purge, queue_depth
from harness.guards import expect
from harness.history import History
from harness.plugin import is_external
from harness.polling import wait_for
from harness.probes import health_of
from scenarios.shop.clients import InventoryClient, SinkClient, mint_token
from scenarios.shop.evidence import Evidence
from scenarios.shop.ledger import Verdict

RECOVERY_BUDGET_S = 20.0
EVENT_BUDGET_S = 5.0  # a paid order's event consumed and its mail received, on a healthy shop


class SteadyState:
    """The steady-state hypothesis, Chaos Toolkit's way: it must hold before anything is
    injected and again after the heal. The system's health is green, and an order is paid at
    once, its event consumed (its reservation CONFIRMED, read from the database) and its
    customer mailed (the sink), so an event that is never consumed or mailed is noticed."""

    def __init__(self, stack: Any, shop: Any, sink: SinkClient) -> None:
        self.stack, self.shop, self.sink = stack, shop, sink

    def green(self) -> bool:
        with health_of(self.stack, timeout_s=2.0) as health:
            return health.sample()["level"] == "green"

    def confirmed(self, order_id: str) -> bool:
        with connect_database(self.stack) as conn:
            row = conn.execute("SELECT status FROM reservations WHERE order_id = %s", [order_id]).fetchone()
        return row is not None and row[0] == "CONFIRMED"

    def mailed(self, order_id: str) -> bool:
        return bool(self.sink.mails_of(order_id))

    def holds(self) -> str | None:
        """None when the hypothesis holds, else what is wrong."""
        if not self.green():
            return "the system's health is not green"
        op = self.shop.place_order()
        if op.status != 201 or op.body.get("status") != "PAID":
            return f"an order was not paid at once: {op.status or op.outcome} {op.body}"
        done, _ = wait_for(lambda: self.confirmed(op.order_id) and self.mailed(op.order_id), EVENT_BUDGET_S, 0.1)
        return None if done else f"order {op.order_id} was paid but its event was not consumed and mailed"

    def __call__(self, label: str, budget_s: float = RECOVERY_BUDGET_S) -> float:
        """Waits (bounded) for the hypothesis; returns how long it took: the recovery time when
        called right after a heal."""
        last: list[str | None] = [None]

        def check() -> bool:
            last[0] = self.holds()
            return last[0] is None

        ok, took = wait_for(check, budget_s, 0.5)
        expect(f"steady_state_{label}", ok, f"steady state did not hold within {budget_s:.0f}s: {last[0]}")
        return took


@pytest.fixture
def steady(stack: Any, shop: Any, sink: SinkClient) -> SteadyState:
    return SteadyState(stack, shop, sink)


@pytest.fixture
def evidence(stack: Any, vendors: Any, sink: SinkClient) -> Evidence:
    """The outside world's records for this scenario, its stock baseline taken now."""
    return Evidence(stack, vendors, sink).start()


def ledger_verdict(evidence: Evidence, history: History, *, strict: bool = True,
                   budget_s: float = RECOVERY_BUDGET_S, expected: Collection[tuple[str, str]] = ()) -> Verdict:
    """Judges the scenario's whole history (before, during and after the fault) against the
    database, the vendor's charges, the mails and the stock once everything settled (bounded):
    each anomaly class by name. `expected` names (class, client key) pairs the scenario provokes
    on purpose (a pending order the shop was right to give up on): each must be reported, and
    is then not held against the shop. strict: the [ledger] guard runs here; else the caller runs it."""
    verdict, _ = evidence.verdict(history, budget_s)
    wanted = set(expected)
    missing = wanted - {(a.kind, a.key) for a in verdict.anomalies}
    rest = Verdict([a for a in verdict.anomalies if (a.kind, a.key) not in wanted])
    if strict:
        expect("ledger", rest.ok and not missing,
               rest.explain() + (f"; expected but not reported: {sorted(missing)}" if missing else ""))
    return rest


@pytest.fixture
def inventory(stack: Any) -> Iterator[InventoryClient]:
    client = InventoryClient(stack.endpoint("inventory_service").url, mint_token(stack))
    yield client
    client.close()


WORK_QUEUE, DLQ = "inventory.order-events", "inventory.order-events.dlq"
DRAIN_S = 15.0


def _settled_queues(host: str, port: int) -> bool:
    """Nothing waits in the work queue, and the DLQ has stopped growing: what an earlier
    scenario left (a consumer that resumed after a matrix cell works off its backlog) has
    landed where it will land."""
    if queue_depth(host, port, WORK_QUEUE):
        return False
    before = queue_depth(host, port, DLQ)
    time.sleep(0.3)  # a sample interval, not a wait for a condition: the condition is the loop's
    return queue_depth(host, port, DLQ) == before and not queue_depth(host, port, WORK_QUEUE)


@pytest.fixture
def clean_dlq(stack: Any, pytestconfig: pytest.Config) -> Iterator[None]:
    """An empty dead-letter queue before and after (reset between scenarios), once the queues
    have settled, so that nothing an earlier scenario left arrives in this one's DLQ. A kept
    stack's DLQ is never purged (what it parks is the operator's evidence, and a re-drive would
    move it): the scenario runs there only when the DLQ is empty, and is skipped otherwise."""
    endpoint = stack.endpoint("rabbitmq")
    wait_for(lambda: _settled_queues(endpoint.host, endpoint.port), DRAIN_S, 0.2)
    if is_external(pytestconfig):
        held = queue_depth(endpoint.host, endpoint.port, DLQ)
        if held:
            pytest.skip(f"the kept stack's DLQ holds {held} message(s): this scenario needs an empty one, "
                        "and a kept stack's DLQ is never purged")
        yield
        return
    purge(endpoint.host, endpoint.port, DLQ)
    yield
    purge(endpoint.host, endpoint.port, DLQ)
