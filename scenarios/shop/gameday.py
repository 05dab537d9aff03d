"""The shop as a game day's load sees it (harness.gameday_load.LoadSystem, named by the topology's
`load:`): the Locust customers the storm scenario puts on the shop, judged afterwards by the
ledger against the database, the vendor's charges, the mails and the stock, as scenarios are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.history import History
from harness.load import Workload
from harness.view import StackView
from scenarios.shop.clients import SinkClient
from scenarios.shop.evidence import Evidence, stock_totals
from scenarios.shop.ledger import ANOMALIES, Verdict
from scenarios.shop.vendors import Vendors
from scenarios.shop.workload import customers

SETTLE_S = 20.0  # after the load, how long the shop may take to settle its orders before they are read


class ShopLoad:
    """The shop's game-day workload and checker."""

    anomaly_order = ANOMALIES

    def workload(self, stack: StackView) -> Workload:
        return customers(stack)

    def baseline(self, stack: StackView) -> dict[str, Any]:
        """Stock plus what reservations hold, per SKU, before the load: what every legitimate
        operation conserves (scenarios/shop/evidence.py)."""
        return {"stock_totals": stock_totals(stack)}

    def judge(self, stack: StackView, history: History, baseline: Mapping[str, Any]) -> Mapping[str, str]:
        vendors, sink = Vendors.of(stack), SinkClient.of(stack)  # every vendor's charges, together
        try:
            evidence = Evidence(stack, vendors, sink, baseline=dict(baseline.get("stock_totals", {})))
            verdict, _ = evidence.verdict(history, SETTLE_S)
        finally:
            vendors.close()
            sink.close()
        return {kind: Verdict(verdict.of(kind)).explain() for kind in verdict.counts()}


SHOP = ShopLoad()
