"""The shop as exploration sees it (harness.explore.runner.System): customers placing orders
steadily, each retrying its order with its key until it has a final answer, judged afterwards
by the ledger against the vendor's charges, the database, the mails and the stock.

Several customers at once, so a fault window of half a second finds orders in flight whatever
one customer is doing then (waiting out a retry, say): with one, whether a short step caught an
order hung on where that customer was, and a schedule failed in one run and held in the next.

A user's own system provides the same three things: its anomaly classes in order, a workload
that runs while a schedule does, and a judge that reads the outcome from the outside.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from harness.history import History
from harness.view import StackView
from scenarios.shop.clients import ShopClient, SinkClient, mint_token
from scenarios.shop.evidence import Evidence
from scenarios.shop.ledger import ANOMALIES, Verdict
from scenarios.shop.vendors import Vendors
from scenarios.shop.workload import RETRY_PAUSE_S, retry_until_answered

CUSTOMERS = 3
PAUSE_S = 0.2  # between one order's final answer and the next order
# One order's retries, from its first attempt (bounded like every loop). Shorter than SETTLE_S:
# a customer asking again about a PAYMENT_PENDING order settles nothing, the judge's wait does.
ORDER_BUDGET_S = 10.0
MAX_ATTEMPTS = int(ORDER_BUDGET_S / RETRY_PAUSE_S)  # its time bounds it: attempts at least RETRY_PAUSE_S apart
MAX_ORDERS = 400  # far above what a schedule of seconds places
SETTLE_S = 20.0  # after the workload, how long the world may take to settle before it is read
CLIENT_TIMEOUT_S = 3.0  # a customer's patience per attempt: past it the attempt is unknown, and retried


@dataclass
class Work:
    history: History
    evidence: Evidence
    keys: list[str] = field(default_factory=list)


def _customer(shop: ShopClient, prefix: str, stop: threading.Event, keys: list[str]) -> None:
    for n in range(MAX_ORDERS):
        if stop.is_set():
            return
        key = f"{prefix}-{n}"
        keys.append(key)
        retry_until_answered(shop, key, ORDER_BUDGET_S, MAX_ATTEMPTS, timeout_s=CLIENT_TIMEOUT_S)
        stop.wait(PAUSE_S)


class ShopSystem:
    """The shop's workload and judge for exploration."""

    import_path = "scenarios.shop.explore:SHOP"
    witnesses = ("payment_gateway", "payment_gateway_b", "alert_sink")  # the vendors' charges, the mails received
    anomaly_order = ANOMALIES

    @contextlib.contextmanager
    def workload(self, stack: StackView, seed: int) -> Iterator[Work]:
        history = History()
        vendors, sink = Vendors.of(stack), SinkClient.of(stack)
        vendors.mark()
        sink.mark()
        work = Work(history, Evidence(stack, vendors, sink).start())
        shop = ShopClient(stack.edge_url, history, token=mint_token(stack))
        stop = threading.Event()
        # Keys from the seed, made unique per schedule: the vendor remembers every key it charged.
        prefix = f"explore-{seed}-{uuid.uuid4().hex[:8]}"
        threads = [threading.Thread(target=_customer, args=(shop, f"{prefix}-c{n}", stop, work.keys), daemon=True)
                   for n in range(CUSTOMERS)]
        for thread in threads:
            thread.start()
        try:
            yield work
        finally:
            stop.set()
            for thread in threads:
                thread.join(ORDER_BUDGET_S + CLIENT_TIMEOUT_S + 5)
            shop.close()

    def judge(self, stack: StackView, work: Work) -> Mapping[str, str]:
        verdict, _ = work.evidence.verdict(work.history, SETTLE_S)
        work.evidence.vendors.close()
        work.evidence.sink.close()
        return {kind: Verdict(verdict.of(kind)).explain() for kind in verdict.counts()}


SHOP = ShopSystem()
