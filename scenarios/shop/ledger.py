"""The shop's checker: judges a history of client operations (harness.history) afterwards.

Once the history is over, the checker reads it against what the outside world says, not what the shop
says of itself: the shop's orders table, every vendor's charge records, the mails received and
the stock table. Money is judged across vendors: an order's charges are summed over all of them,
since a vendor's idempotency key protects only against a second charge at that same vendor.
Each broken promise is reported under the name of its class (ANOMALIES), one small check per
class (CHECKS), so a verdict says what went wrong rather than only that something did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from harness.history import History, Operation

TERMINAL = frozenset({"PAID", "FAILED", "REJECTED"})  # the statuses an order ends in


# What the outside world says once the history is over. The checker trusts these rows over
# anything the shop answered: the vendor's charge records, not the shop's charge_id, say
# whether money moved; the mailbox, not the shop's outbox, says what the customer received.


@dataclass(frozen=True)
class OrderRow:
    """One row of the shop's orders table."""
    id: str
    key: str                    # the client key (Idempotency-Key) it was created for
    status: str                 # NEW, PAYMENT_PENDING, PAID, FAILED, REJECTED, ...
    charge_id: str | None = None


@dataclass(frozen=True)
class ChargeRow:
    """One charge a vendor made, from its own records (not the shop's word)."""
    charge_id: str
    order_id: str               # the order the vendor was asked to charge
    key: str                    # the vendor idempotency key it was made under
    vendor: str = ""            # the vendor (service) that made it; charge ids are unique per vendor

    @property
    def label(self) -> str:
        """The charge as the evidence names it: its id, and where it was made."""
        return f"{self.charge_id} at {self.vendor}" if self.vendor else self.charge_id


@dataclass(frozen=True)
class ReservationRow:
    """One stock reservation the inventory holds for an order."""
    order_id: str
    sku: str
    quantity: int
    status: str                 # RESERVED, CONFIRMED, RELEASED


@dataclass(frozen=True)
class StockRow:
    """One SKU of the stock table: the whole table, not only this history's orders, because
    stock is shared and a leak by another test's order is still a leak."""
    sku: str
    initial: int                # stock the catalogue started with
    stock: int                  # stock now
    held: int                   # quantities of ALL reservations of the sku in RESERVED or CONFIRMED


@dataclass
class World:
    """The final state the history is judged against."""
    orders: list[OrderRow]
    charges: list[ChargeRow]
    mails: dict[str, int]                     # order id -> paid mails received
    reservations: dict[str, ReservationRow]   # by order id
    stock: list[StockRow] = field(default_factory=list)


@dataclass(frozen=True)
class Anomaly:
    """One broken promise, named by its class so a report can count and group them."""
    kind: str                   # one of ANOMALIES
    key: str | None
    order_id: str | None
    detail: str                 # one short sentence with the evidence


@dataclass
class Verdict:
    """Every anomaly the checks found; clean when there is none."""
    anomalies: list[Anomaly]

    @property
    def ok(self) -> bool:
        return not self.anomalies

    def of(self, kind: str) -> list[Anomaly]:
        return [a for a in self.anomalies if a.kind == kind]

    def counts(self) -> dict[str, int]:
        """Anomalies per class present, classes in ANOMALIES order (others after, as found)."""
        counts: dict[str, int] = {}
        for anomaly in self.anomalies:
            counts[anomaly.kind] = counts.get(anomaly.kind, 0) + 1
        rank = {kind: index for index, kind in enumerate(ANOMALIES)}
        return dict(sorted(counts.items(), key=lambda item: rank.get(item[0], len(rank))))

    def explain(self, limit: int = 3) -> str:
        """One line for an assertion message: each class with its count and a few examples."""
        if self.ok:
            return "no anomaly"
        parts = []
        for kind, count in self.counts().items():
            examples = [_one_line(a.detail) for a in self.of(kind)[:limit]]
            if count > limit:
                examples.append(f"and {count - limit} more")
            parts.append(f"{kind} x{count}: " + "; ".join(examples))
        return "; ".join(parts)


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass
class Context:
    """The history and the world, indexed once so that each check stays a few lines.

    Only place_order operations are kept, grouped by client key: retries of one request reuse
    the key, so the key is the unit the client reasons about. An operation still pending when
    the history ended got no answer, so it counts as unknown.
    """
    world: World
    ops_by_key: dict[str, list[Operation]]
    orders_by_key: dict[str, list[OrderRow]]      # only the history's keys
    orders_by_id: dict[str, OrderRow]             # the whole table
    charges_by_order: dict[str, list[ChargeRow]]
    only_unknown: frozenset[str]                  # keys with no ok and no fail answer
    only_fail: frozenset[str]                     # keys refused every time

    @classmethod
    def of(cls, history: History, world: World) -> Context:
        ops_by_key: dict[str, list[Operation]] = {}
        for op in history.ops:
            if op.kind == "place_order":
                ops_by_key.setdefault(op.key, []).append(op)
        orders_by_key: dict[str, list[OrderRow]] = {}
        orders_by_id: dict[str, OrderRow] = {}
        for row in world.orders:
            orders_by_id.setdefault(row.id, row)
            if row.key in ops_by_key:
                orders_by_key.setdefault(row.key, []).append(row)
        charges_by_order: dict[str, list[ChargeRow]] = {}
        for charge in world.charges:
            charges_by_order.setdefault(charge.order_id, []).append(charge)
        answers = {key: {_answer(op) for op in ops} for key, ops in ops_by_key.items()}
        return cls(
            world=world,
            ops_by_key=ops_by_key,
            orders_by_key=orders_by_key,
            orders_by_id=orders_by_id,
            charges_by_order=charges_by_order,
            only_unknown=frozenset(k for k, seen in answers.items() if seen == {"unknown"}),
            only_fail=frozenset(k for k, seen in answers.items() if seen == {"fail"}),
        )

    @property
    def judged(self) -> list[OrderRow]:
        """The orders this history is responsible for (the table also holds other tests')."""
        return [row for rows in self.orders_by_key.values() for row in rows]

    def charge_ids(self, order_id: str) -> list[str]:
        """Distinct charges of an order over every vendor (each labelled with its vendor), in the
        order the vendors' records give them."""
        return _unique(c.label for c in self.charges_by_order.get(order_id, []))

    def answers(self, key: str) -> str:
        """What the client heard for a key, for the evidence: "201, 200" or "timeout, 409"."""
        return ", ".join(str(op.status) if op.status is not None else _answer(op)
                         for op in self.ops_by_key.get(key, []))


Check = Callable[[Context], list[Anomaly]]


def _answer(op: Operation) -> str:
    return "unknown" if op.outcome == "pending" else op.outcome


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _lost(ctx: Context) -> list[Anomaly]:
    """The shop acknowledged an order and then forgot it: an answer given before the write was
    durable, a rollback after the answer, or a replay that names an order that never existed."""
    found = []
    for key, ops in ctx.ops_by_key.items():
        oks = [op for op in ops if op.outcome == "ok"]
        if not oks:
            continue
        named = _unique(op.order_id for op in oks if op.order_id)
        if not ctx.orders_by_key.get(key):
            found.append(Anomaly("lost", key, named[0] if named else None,
                                 f"key {key} was answered ok ({ctx.answers(key)}) but the shop has no order for it"))
            continue
        for order_id in named:
            if order_id not in ctx.orders_by_id:
                found.append(Anomaly("lost", key, order_id,
                                     f"key {key} was answered ok with order {order_id}, which the shop does not have"))
    return found


def _duplicate_order(ctx: Context) -> list[Anomaly]:
    """The idempotency key did not hold: a retry (or a race of two tries) created a second order."""
    found = []
    for key, rows in ctx.orders_by_key.items():
        ids = _unique(row.id for row in rows)
        if len(ids) > 1:
            found.append(Anomaly("duplicate_order", key, ids[1],
                                 f"key {key} has {len(ids)} orders ({', '.join(ids)})"))
    return found


def _double_charge(ctx: Context) -> list[Anomaly]:
    """The customer paid twice: the shop retried the vendor under a fresh vendor key, sent an
    order whose first charge may have gone through to the other vendor as well, or charged a
    duplicate order too. Across orders it is reported once per client key."""
    found = []
    for row in ctx.judged:
        ids = ctx.charge_ids(row.id)
        if len(ids) > 1:
            found.append(Anomaly("double_charge", row.key, row.id,
                                 f"order {row.id} charged {len(ids)} times ({', '.join(ids)})"))
    for key, rows in ctx.orders_by_key.items():
        charged = [row.id for row in rows if ctx.charge_ids(row.id)]
        ids = _unique(charge for order_id in charged for charge in ctx.charge_ids(order_id))
        if len(charged) > 1 and len(ids) > 1:
            found.append(Anomaly("double_charge", key, charged[0],
                                 f"key {key} charged {len(ids)} times across orders {', '.join(charged)} "
                                 f"({', '.join(ids)})"))
    return found


def _charged_not_paid(ctx: Context) -> list[Anomaly]:
    """Money moved but the order does not say so: the vendor's answer was lost (a timeout taken
    for a failure) and the shop failed or abandoned an order the vendor had charged."""
    found = []
    for row in ctx.judged:
        ids = ctx.charge_ids(row.id)
        if ids and row.status != "PAID":
            found.append(Anomaly("charged_not_paid", row.key, row.id,
                                 f"order {row.id} is {row.status} but the vendor charged it ({', '.join(ids)})"))
    return found


def _paid_not_charged(ctx: Context) -> list[Anomaly]:
    """The shop marked an order PAID on its own say-so: it took a vendor error or timeout for a
    charge, or set the status before the charge and never checked."""
    return [Anomaly("paid_not_charged", row.key, row.id, f"order {row.id} is PAID but the vendor has no charge for it")
            for row in ctx.judged if row.status == "PAID" and not ctx.charge_ids(row.id)]


def _stuck(ctx: Context) -> list[Anomaly]:
    """The shop answered the client and then left the order half-way: no worker, retry or sweep
    brought it to PAID, FAILED or REJECTED."""
    return [Anomaly("stuck", row.key, row.id,
                    f"order {row.id} is still {row.status} although key {row.key} was answered "
                    f"({ctx.answers(row.key)})")
            for row in ctx.judged if row.status not in TERMINAL and row.key not in ctx.only_unknown]


def _unknown_unresolved(ctx: Context) -> list[Anomaly]:
    """The client never learned anything (every try timed out) and the shop left the order it
    did create half-way: nothing finishes or cancels work whose caller went away."""
    return [Anomaly("unknown_unresolved", row.key, row.id,
                    f"order {row.id} is still {row.status} and key {row.key} never got an answer "
                    f"({ctx.answers(row.key)})")
            for row in ctx.judged if row.status not in TERMINAL and row.key in ctx.only_unknown]


def _pending_not_settled(ctx: Context) -> list[Anomaly]:
    """The shop promised to pay later (202 PAYMENT_PENDING) and did not: the pending queue lost
    the order, or it was failed instead of retried. A missing order is left to `lost`."""
    found = []
    for key, ops in ctx.ops_by_key.items():
        pending = [op for op in ops if op.status == 202 and op.body.get("status") == "PAYMENT_PENDING"]
        if not pending:
            continue
        named = _unique(op.order_id for op in pending if op.order_id)
        if named:
            rows = [ctx.orders_by_id[order_id] for order_id in named if order_id in ctx.orders_by_id]
        else:
            rows = ctx.orders_by_key.get(key, [])
            rows = [] if any(row.status == "PAID" for row in rows) else rows
        found += [Anomaly("pending_not_settled", key, row.id,
                          f"key {key} was answered 202 PAYMENT_PENDING but order {row.id} ended {row.status}")
                  for row in rows if row.status != "PAID"]
    return found


def _phantom(ctx: Context) -> list[Anomaly]:
    """The shop said no and did it anyway: a refusal sent after the order was committed or the
    vendor was called, so a customer who was told "failed" was charged or sold to."""
    found = []
    for row in ctx.judged:
        if row.key not in ctx.only_fail:
            continue
        ids = ctx.charge_ids(row.id)
        if row.status == "PAID" or ids:
            charged = f", charged ({', '.join(ids)})" if ids else ""
            found.append(Anomaly("phantom", row.key, row.id,
                                 f"key {row.key} was refused every time ({ctx.answers(row.key)}) "
                                 f"but order {row.id} is {row.status}{charged}"))
    return found


def _double_mail(ctx: Context) -> list[Anomaly]:
    """The paid event was delivered more than once and the mailer is not idempotent (a consumer
    that acks after sending, redelivered after a crash)."""
    return [Anomaly("double_mail", row.key, row.id, f"order {row.id} got {ctx.world.mails[row.id]} paid mails")
            for row in ctx.judged if ctx.world.mails.get(row.id, 0) > 1]


def _stock_drift(ctx: Context) -> list[Anomaly]:
    """Stock does not follow the money: a paid order's reservation never confirmed, a failed
    order's never released (held for nothing, or sold unpaid), or the stock counter moved without
    a reservation (released twice, taken without one). Non-terminal orders are left to `stuck`."""
    found = []
    for row in ctx.judged:
        reservation = ctx.world.reservations.get(row.id)
        if row.status == "PAID" and (reservation is None or reservation.status != "CONFIRMED"):
            state = "has no reservation" if reservation is None else f"has its reservation {reservation.status}"
            found.append(Anomaly("stock_drift", row.key, row.id, f"order {row.id} is PAID but {state}"))
        elif row.status in ("FAILED", "REJECTED") and reservation is not None and reservation.status != "RELEASED":
            found.append(Anomaly("stock_drift", row.key, row.id,
                                 f"order {row.id} is {row.status} but its reservation of {reservation.quantity} "
                                 f"x {reservation.sku} is still {reservation.status}"))
    for stock in ctx.world.stock:
        taken = stock.initial - stock.stock
        if taken != stock.held:
            found.append(Anomaly("stock_drift", None, None,
                                 f"sku {stock.sku}: {stock.initial} initial - {stock.stock} in stock = {taken} taken, "
                                 f"but reservations hold {stock.held}"))
    return found


CHECKS: dict[str, Check] = {
    "lost": _lost,
    "duplicate_order": _duplicate_order,
    "double_charge": _double_charge,
    "charged_not_paid": _charged_not_paid,
    "paid_not_charged": _paid_not_charged,
    "stuck": _stuck,
    "unknown_unresolved": _unknown_unresolved,
    "pending_not_settled": _pending_not_settled,
    "phantom": _phantom,
    "double_mail": _double_mail,
    "stock_drift": _stock_drift,
}
ANOMALIES: tuple[str, ...] = tuple(CHECKS)  # the classes, in the order they are checked and reported
DONE_TWICE = ("duplicate_order", "double_charge", "double_mail")  # the classes of one order done twice


def check(history: History, world: World, checks: Mapping[str, Check] = CHECKS) -> Verdict:
    """Judges the history against the world, every check in turn.

    Only the orders created for this history's client keys are judged (the tables hold other
    tests' orders too); the per-SKU stock conservation is global, because stock is shared.
    ``checks`` narrows or replaces the table, e.g. to prove a check is what catches a case.
    """
    context = Context.of(history, world)
    return Verdict([anomaly for run in checks.values() for anomaly in run(context)])
