"""What the outside world says once a history is over: the shop's database, every vendor's charge
records, the mails received, the stock table. The ledger (scenarios/shop/ledger.py) judges a history
against this, never against the shop's own counters or answers.

The shop's database is read straight on its published port, as an operator would; the vendor
and the sink are the harness's own observers. Stock is judged by conservation: per SKU, stock
plus what reservations hold is constant under every legitimate operation (a reservation takes
what it holds; a release gives it back), so the baseline is taken when the history starts and
any drift from it is an anomaly, whatever earlier tests left behind.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from harness.datastores import connect_database
from harness.history import History
from harness.polling import wait_for
from harness.view import StackView
from scenarios.shop.clients import SinkClient
from scenarios.shop.ledger import TERMINAL, ChargeRow, OrderRow, ReservationRow, StockRow, Verdict, World, check
from scenarios.shop.vendors import Vendors

# Per SKU: stock now, and what RESERVED or CONFIRMED reservations hold (RELEASED gave it back).
STOCK = ("SELECT p.sku, p.stock, COALESCE(SUM(r.quantity) FILTER (WHERE r.status IN ('RESERVED', 'CONFIRMED')), 0) "
         "FROM products p LEFT JOIN reservations r ON r.sku = p.sku GROUP BY p.sku, p.stock")
# Orders of the given client keys; the fragile shop stores "<client key>:<order id>".
ORDERS = ("SELECT id::text, split_part(idempotency_key, ':', 1), status, charge_id FROM orders "
          "WHERE split_part(idempotency_key, ':', 1) = ANY(%s)")
RESERVATIONS = "SELECT order_id, sku, quantity, status FROM reservations WHERE order_id = ANY(%s)"
QUIET_S = 1.0  # mails are counted after this long without a new one, not at the first arrival


def _stock_rows(conn: Any) -> list[tuple[str, int, int]]:
    """(sku, stock now, held by reservations) per SKU; a NULL stock (a corrupted row) counts 0."""
    return [(sku, stock or 0, int(held)) for sku, stock, held in conn.execute(STOCK).fetchall()]


def stock_totals(stack: StackView) -> dict[str, int]:
    """Per SKU, stock plus what reservations hold: what every legitimate operation conserves."""
    with connect_database(stack) as conn:
        return {sku: now + held for sku, now, held in _stock_rows(conn)}


@dataclass
class Evidence:
    """Reads the world for one history; `baseline` is taken when the history starts."""

    stack: StackView
    vendors: Vendors
    sink: SinkClient
    baseline: dict[str, int] = field(default_factory=dict)

    def start(self) -> Evidence:
        self.baseline = stock_totals(self.stack)
        return self

    def world(self, history: History) -> World:
        keys = sorted({op.key for op in history.ops if op.kind == "place_order"})
        with connect_database(self.stack) as conn:
            orders = [OrderRow(*row) for row in conn.execute(ORDERS, [keys]).fetchall()]
            reservations = {row[0]: ReservationRow(*row)
                            for row in conn.execute(RESERVATIONS, [[o.id for o in orders]]).fetchall()}
            stock = _stock_rows(conn)
        charges = [ChargeRow(c["charge_id"], c["order_id"], c["key"], c["vendor"]) for c in self.vendors.charges()]
        mails = Counter(m["order_id"] for m in self.sink.mails())
        return World(orders=orders, charges=charges, mails={o.id: mails[o.id] for o in orders},
                     reservations=reservations,
                     stock=[StockRow(sku, self.baseline.get(sku, now + held), now, held) for sku, now, held in stock])

    def settled(self, history: History, budget_s: float) -> World:
        """The world once every order of the history is terminal and each paid one confirmed and
        mailed (bounded by budget_s: what is still open then is judged as it is), and then quiet."""
        def done() -> World | None:
            world = self.world(history)
            paid = [o for o in world.orders if o.status == "PAID"]
            finished = all(o.status in TERMINAL for o in world.orders) and all(
                getattr(world.reservations.get(o.id), "status", None) == "CONFIRMED" and world.mails.get(o.id)
                for o in paid)
            return world if finished else None

        wait_for(done, budget_s, 0.25)
        return self.quiet(history)

    def quiet(self, history: History) -> World:
        """Waits until no mail has arrived for QUIET_S (at most 4 x QUIET_S), so that a second
        mail sent late, by a redelivery, is counted too."""
        deadline = time.monotonic() + 4 * QUIET_S
        count, since = len(self.sink.mails()), time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - since < QUIET_S:
            time.sleep(0.2)
            now = len(self.sink.mails())
            if now != count:
                count, since = now, time.monotonic()
        return self.world(history)

    def verdict(self, history: History, budget_s: float) -> tuple[Verdict, World]:
        world = self.settled(history, budget_s)
        return check(history, world), world

