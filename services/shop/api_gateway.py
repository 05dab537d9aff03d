"""The shop's front door on node-A: verifies the customer's token, reserves stock, charges the
payment vendor, records the order and emits its event.

What the manual prescribes: retries with backoff and a circuit breaker on the vendor with a 202
PAYMENT_PENDING fallback and exactly-once settlement later; fail-closed auth; an outbox for
events; writes shed cleanly when node-A's disk is critically low; order writes above the shaping
rate shed at once with 429 and Retry-After (traffic shaping); broker settings validated at
start; alerts on failure and on recovery. Each is a protection of shop.protections that can be
turned off on its own (SUT_DISABLE, or at run time), so every guard of the scenarios can be
shown failing without the protection it guards; SUT_MODE=fragile turns them all off.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import structlog
from fastapi import Depends, FastAPI, Header
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Gauge, make_asgi_app
from psycopg import AsyncConnection
from purgatory.domain.model import OpenedState
from pydantic import BaseModel, Field

from shop import alerts, auth_client, broker_monitor, config, events
from shop.db import Database, DatabaseUnavailable, unavailable_response
from shop.health import Recent, report
from shop.health import system as system_health_of
from shop.logs import DB_TIMEOUT, configure
from shop.node_a import DiskMonitor, read_receipt, write_receipt
from shop.node_a_logs import router as node_logs_router
from shop.node_a_logs import stop_all as stop_log_floods
from shop.observability import observe
from shop.outbox import SCHEMA as OUTBOX_SCHEMA
from shop.outbox import Outbox
from shop.payments import BREAKER, PRIMARY, SECONDARY, Payments, Route, VendorError
from shop.protections import describe as describe_protections
from shop.protections import on
from shop.settings import GatewaySettings
from shop.shaping import TokenBucket, retry_after
from shop.switchboard import require_control
from shop.switchboard import router as protections_router

settings = GatewaySettings.from_env()
log = configure("api_gateway")
BROKER_URL = config.broker_url(on("config_validation"), log)  # refuses to start without it

ORDERS = Counter("shop_orders_total", "Orders answered, by resulting status", ["status"])
VENDOR_CALLS = Counter("shop_payment_calls_total", "Calls to the payment vendor, by outcome", ["outcome"])
BREAKER_OPEN = Gauge("shop_payment_breaker_open", "1 while the payment circuit breaker is open")
DISK_USED = Gauge("shop_node_a_disk_used_percent", "Used space of node-A's data volume")
SHED = Counter("shop_orders_shed_total", "Order writes shed by traffic shaping (429)")

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id uuid PRIMARY KEY,
    idempotency_key text UNIQUE NOT NULL,
    sku text NOT NULL,
    quantity integer NOT NULL,
    amount_cents integer NOT NULL,
    customer_email text NOT NULL,
    subject text,
    status text NOT NULL,
    charge_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz NOT NULL DEFAULT now(),
    refusals integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now()
)
"""
# The vendor the order is pinned to (shop.payments.Route): set once a charge of it may have
# reached one, so neither a retry nor the settler ever asks the other. Added to older tables too.
VENDOR_COLUMN = "ALTER TABLE orders ADD COLUMN IF NOT EXISTS vendor text"
# Columns an order needs to be resumed, settled or failed without the request that made it.
ORDER_COLUMNS = "id::text AS id, status, sku, quantity, amount_cents, customer_email, vendor"

# What the client is told for each state an order can be left in after POST /orders.
ANSWER = {"PAID": 201, "PAYMENT_PENDING": 202, "FAILED": 502}
# FAILED and REJECTED both release what the order reserved (inventory: order.failed -> RELEASED).
EVENT_OF = {"PAID": "order.paid", "PAYMENT_PENDING": "order.payment_pending", "FAILED": "order.failed",
            "REJECTED": "order.failed"}
# How a refused reservation is passed on to the customer.
RESERVATION_ANSWER = {401: 401, 404: 422, 409: 409, 503: 503}


class OrderIn(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(default=1, ge=1, le=1000)
    amount_cents: int = Field(ge=0, le=10_000_000)
    customer_email: str = Field(default="customer@example.com", max_length=254)


class State:
    """What the running gateway holds."""

    db: Database
    vendors: dict[str, httpx.AsyncClient]
    peers: httpx.AsyncClient
    payments: Payments
    outbox: Outbox
    disk: DiskMonitor
    breaker_state: str = "closed"
    breaker_opened_at: float = 0.0
    tasks: list[asyncio.Task]
    # The broker monitor's memory; /health shows whether it watches yet (it does once it saw a consumer).
    consumer_watch: broker_monitor.QueueWatch = broker_monitor.QueueWatch()


state = State()
# One bucket for the gateway's order writes (traffic_shaping): what it guards is the shop's capacity.
# Its rate is the settings' until an operator limits traffic for a while (PUT /_control/shaping).
order_writes = TokenBucket(settings.shaping_rate_per_s, settings.shaping_burst)


async def _alert(status: str, what: str, why: str, how: str) -> bool:
    return await alerts.send(state.peers, "api_gateway", status, what, why, how)


def _on_breaker(name: str, event_type: str, event: Any) -> None:
    """Breaker transitions are logged (the harness lines them up with the vendor journal); the
    primary vendor's are alerted and reported in health (the secondary only stands in for it)."""
    if event_type != "state_changed":
        return
    if name != BREAKER[PRIMARY]:
        log.warning("breaker_state_changed", breaker=name, state=event.state)
        return
    previous, state.breaker_state = state.breaker_state, event.state
    if event.state == "opened":
        state.breaker_opened_at = time.monotonic()
    BREAKER_OPEN.set(1 if event.state == "opened" else 0)
    log.warning("breaker_state_changed", breaker=name, state=event.state)
    if event.state == "opened" and previous == "closed" and on("vendor_alert"):
        asyncio.get_running_loop().create_task(_alert(
            "firing", "Payment gateway API returned 503 Service Unavailable.",
            "the payment vendor keeps failing; the circuit breaker opened",
            "orders are accepted as PAYMENT_PENDING and settled when the vendor is back; check the vendor status page"))
    elif event.state == "closed" and previous != "closed" and on("recovery_alerts"):
        asyncio.get_running_loop().create_task(_alert(
            "resolved", "Payment vendor answers again", "the circuit breaker closed",
            "pending orders are being settled"))


async def _setup_schema(conn: AsyncConnection) -> None:
    """Orders and outbox tables; under an advisory lock so replicas starting together agree."""
    await conn.execute("SELECT pg_advisory_lock(4243)")
    try:
        await conn.execute(SCHEMA)
        await conn.execute(VENDOR_COLUMN)
        await conn.execute(OUTBOX_SCHEMA)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(4243)")


async def _finish(order: dict, status: str, charge_id: str | None = None, only_if: str | None = None,
                  vendor: str | None = None) -> bool:
    """Moves an order to its new status, ends its lease and emits its event: in one transaction
    with the outbox row (outbox), or with a direct publish after the commit. A
    conditional update makes a transition such as PAYMENT_PENDING -> PAID happen at most once.
    `vendor`: the vendor the order is now pinned to (None keeps what the row says)."""
    query = ("UPDATE orders SET status = %s, charge_id = COALESCE(%s, charge_id), vendor = COALESCE(%s, vendor), "
             "updated_at = now(), lease_until = now() WHERE id = %s")
    params: list[Any] = [status, charge_id, vendor, order["id"]]
    if only_if:
        query += " AND status = %s"
        params.append(only_if)
    event = events.order_event(EVENT_OF[status], order["id"], order["sku"], order["quantity"],
                               order["amount_cents"], order["customer_email"])

    async def work(conn: AsyncConnection) -> bool:
        changed = (await conn.execute(query, params)).rowcount == 1
        if changed and outbox:
            await state.outbox.add(conn, event)
        return changed

    outbox = on("outbox")  # one decision for the whole transition
    changed = await state.db.run(work, transaction=True)
    if changed and not outbox:
        await state.outbox.publish_now(event)
    return changed


async def _settle_pending() -> None:
    """Charges PAYMENT_PENDING orders whose lease has ended, once the breaker lets calls through.

    Leased orders are still in a request's hands. An order the vendor refuses (a 4xx: it
    answered, and said no to this order) backs off on its own and, after settle_max_refusals,
    ends FAILED with its stock released and an alert: it never holds up the orders behind it.
    A vendor that is down for everyone (5xx, unreachable, breaker open) ends the batch: the
    next tick tries again, and nobody's refusals are counted for it."""
    while True:
        await asyncio.sleep(settings.settle_interval_s)
        if not state.db.ready.is_set() or not on("settlement"):
            continue
        try:
            if on("retryable_refusal"):
                await _fail_stale_new()
            pending = await state.db.rows(
                f"SELECT {ORDER_COLUMNS}, refusals FROM orders WHERE status = 'PAYMENT_PENDING' "
                "AND lease_until < now() AND next_attempt_at <= now() ORDER BY created_at LIMIT 100", [])
            for order in pending:
                await _settle(order)
        except (OpenedState, VendorError):
            continue  # the vendor is down for everyone: try again on the next tick
        except Exception as exc:  # never let the settler die; the next tick retries
            log.error("settler_error", error=repr(exc))


async def _settle(order: dict) -> None:
    """Charges one pending order at its pinned vendor, else at the primary only: failover is for
    new orders (a customer waiting), a pending one was answered already; and the settler's call
    is what finds the primary back (its breaker closes, the recovery alert goes out)."""
    route = _route(order)
    try:
        charge_id = await state.payments.guarded(order["id"], order["amount_cents"], route, may_fail_over=False)
    except VendorError as exc:
        if not exc.refused:  # down for everyone: the batch ends (see _settle_pending)
            raise
        await _refused_again(order, exc)
        return
    if await _finish(order, "PAID", charge_id, only_if="PAYMENT_PENDING", vendor=route.pinned):
        log.info("order_settled", order_id=order["id"], charge_id=charge_id)
        ORDERS.labels("PAID").inc()


def _route(order: dict) -> Route:
    """The order's route, from the vendor its row is pinned to. With two vendors each new pin is
    written to the row before the call goes out, so a gateway that dies with the call out leaves
    the order pinned: the settler and the customer's retry then ask that vendor and no other
    (whichever breaker is open by then). With one vendor there is no other to ask."""

    async def store(vendor: str | None) -> None:
        await state.db.execute("UPDATE orders SET vendor = %s WHERE id = %s", [vendor, order["id"]])

    return Route(order.get("vendor"), store=store if SECONDARY in state.payments.vendors else None)


async def _refused_again(order: dict, exc: VendorError) -> None:
    refusals = order["refusals"] + 1
    if not on("settler_give_up"):  # tried again on the next tick, for ever
        log.warning("settle_refused", order_id=order["id"], refusals=refusals, reason=str(exc))
        return
    if refusals < settings.settle_max_refusals:
        delay = settings.settle_backoff_s * 2 ** (refusals - 1)
        await state.db.execute(
            "UPDATE orders SET refusals = %s, next_attempt_at = now() + make_interval(secs => %s) "
            "WHERE id = %s AND status = 'PAYMENT_PENDING'", [refusals, delay, order["id"]])
        log.warning("settle_refused", order_id=order["id"], refusals=refusals, retry_in_s=delay, reason=str(exc))
        return
    if await _finish(order, "FAILED", only_if="PAYMENT_PENDING"):
        ORDERS.labels("FAILED").inc()
        log.error("settle_given_up", order_id=order["id"], refusals=refusals, reason=str(exc))
        await _alert("firing", f"Payment of order {order['id']} refused {refusals} times",
                     f"the payment vendor keeps refusing this order ({exc})",
                     "the order is FAILED and its stock released; the customer must pay another way")


async def _fail_stale_new() -> None:
    """A NEW order whose request died before reserving or charging, and that no client retry
    resumed: nothing was charged (charging happens only after PAYMENT_PENDING is written), so it
    ends FAILED and the stock it may hold is released through its event."""
    stale = await state.db.rows(
        f"SELECT {ORDER_COLUMNS} FROM orders WHERE status = 'NEW' "
        "AND lease_until < now() - make_interval(secs => %s) ORDER BY created_at LIMIT 100", [settings.stale_new_s])
    for order in stale:
        if await _finish(order, "FAILED", only_if="NEW"):
            ORDERS.labels("FAILED").inc()
            log.warning("stale_order_failed", order_id=order["id"])


DB_ALERT_AFTER_S = 2.0  # silent this long before anyone is paged: one slow answer is not an outage


async def _watch_database() -> None:
    """The monitoring guide: an alert when the database stops answering, and another when it answers again
    (health alone goes red, but nobody watches a dashboard at night)."""
    down_since: float | None = None
    firing = False
    await state.db.ready.wait()  # start-up is not an outage: watch once the schema is in place
    while True:
        await asyncio.sleep(1)
        answers = await _database_answers()
        if answers:
            down_since = None
            if firing:
                firing = False
                if on("recovery_alerts"):
                    await _alert("resolved", "Database answers again", "PostgreSQL is reachable from api_gateway again",
                             "orders are accepted again; nothing was half-written")
            continue
        down_since = down_since if down_since is not None else time.monotonic()
        if not firing and on("db_watch_alert") and time.monotonic() - down_since >= DB_ALERT_AFTER_S:
            firing = True
            await _alert("firing", DB_TIMEOUT,
                         f"api_gateway has had no answer from PostgreSQL for {DB_ALERT_AFTER_S:.0f}s",
                         "orders are refused with 503 and Retry-After; check PostgreSQL and the network to it")


CONSUMERS_TIMEOUT_S = 2.0  # a reconnecting connection can wait for ever to open a channel


async def _queue_consumers() -> int | None:
    """How many consumers the broker says the order queue has; None when it can't say now."""
    connection = state.outbox.connection
    if connection is None or connection.is_closed:
        return None

    async def ask() -> int:
        channel = await connection.channel()
        try:
            queue = await channel.declare_queue(events.QUEUE, passive=True)
            return int(queue.declaration_result.consumer_count or 0)
        finally:
            await channel.close()

    try:
        return await asyncio.wait_for(ask(), CONSUMERS_TIMEOUT_S)
    except Exception:  # the broker away or slow: no answer, which is not "no consumer"
        return None


async def _watch_consumers() -> None:
    """The broker monitor: the order queue's consumers every 5 s, an alert when none has been
    attached for 5 s and another when one is back (shop.broker_monitor decides)."""
    watch = state.consumer_watch
    while True:
        await asyncio.sleep(broker_monitor.CHECK_EVERY_S)
        consumers = await _queue_consumers()
        change = watch.observe(consumers, alerting=on("consumer_alert"))
        if change == broker_monitor.FIRING:
            await _alert("firing", f"No consumer on queue {events.QUEUE}",
                         f"the broker has shown no consumer on {events.QUEUE} for "
                         f"{broker_monitor.NO_CONSUMER_FOR_S:.0f}s or more",
                         "orders are accepted and their events wait in the queue; check inventory_service's "
                         "consumer (its /health consumer_recoveries) and restart it if it does not come back")
        elif change == broker_monitor.RESOLVED and on("recovery_alerts"):
            await _alert("resolved", f"A consumer is back on queue {events.QUEUE}",
                         f"the broker shows {consumers} consumer(s) on {events.QUEUE} again",
                         "the events that waited are being processed")


async def _watch_disk() -> None:
    while True:
        DISK_USED.set(state.disk.percent)
        await asyncio.sleep(1)


@contextlib.asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    state.db = Database(settings.database_url, log, "api_gateway")
    await state.db.open()
    # Bounded per call (call_timeouts), so the switch acts on a running gateway too.
    urls = {PRIMARY: settings.payment_url, SECONDARY: settings.payment_b_url}
    state.vendors = {vendor: httpx.AsyncClient(base_url=url, timeout=None) for vendor, url in urls.items() if url}
    state.peers = httpx.AsyncClient(timeout=None)
    state.payments = Payments(settings, state.vendors, log, lambda outcome: VENDOR_CALLS.labels(outcome).inc())
    state.payments.breakers.add_listener(_on_breaker)
    state.outbox = Outbox(BROKER_URL, state.db, log)
    state.disk = DiskMonitor(log, _alert)
    # Every loop runs in every mode and asks its protection at each turn (a switch acts at once).
    state.tasks = [asyncio.create_task(coro) for coro in
                   (state.db.prepare(_setup_schema), state.outbox.connect(), _settle_pending(),
                    state.outbox.relay(), state.disk.run(), _watch_disk(), _watch_database(), _watch_consumers())]
    log.info("started", settings=settings.model_dump(exclude={"database_url"}))
    yield
    for task in state.tasks:
        task.cancel()
    await asyncio.to_thread(stop_log_floods)
    for client in state.vendors.values():
        await client.aclose()
    await state.peers.aclose()
    await state.db.close()


app = FastAPI(title="api_gateway", lifespan=lifespan)
app.mount("/metrics", make_asgi_app())
app.include_router(protections_router)
app.include_router(node_logs_router)


app.add_exception_handler(DatabaseUnavailable, unavailable_response)


observe(app, log)


# Resilient: a live probe with a 0.5 s deadline; fragile: what start-up found. Reused for at most
# 0.5 s, so a frequent health probe during a database fault doesn't multiply the manual's line.
_database_answers = Recent(lambda: state.db.answers(0.5), max_age_s=0.5)


def _breaker_now() -> str:
    """The breaker as a caller meets it now. The breaker library moves an open breaker on only
    when the next call comes; past its reset time that call goes through (half-open), so it is
    not reported open: with no order to make that call, health would stay yellow for ever."""
    if state.breaker_state == "opened" and time.monotonic() - state.breaker_opened_at >= settings.breaker_reset_s:
        return "half-opened"
    return state.breaker_state


async def _own_health() -> dict:
    database = await _database_answers()
    breaker = _breaker_now()
    return report({
        "database": (database, 40),
        "payment_breaker_closed": (breaker != "opened", 20),
        # health_checks off: what start-up found (a connection was made), as a stale check reports it.
        "broker_connected": (state.outbox.connected if on("health_checks") else state.outbox.connection is not None,
                             20),
        "disk_ok": (not state.disk.critical, 20),
    }, critical=("database",)) | {"service": "api_gateway", "sut_mode": settings.sut_mode,
                                  "protections": describe_protections(), "breaker": breaker,
          "disk_used_percent": round(state.disk.percent, 1),
          "consumer_watch": {"watching": state.consumer_watch.seen_consumer, "firing": state.consumer_watch.firing}}


@app.get("/health")
async def health() -> JSONResponse:
    body = await _own_health()
    return JSONResponse(body, status_code=200 if state.db.ready.is_set() else 503)


@app.get("/health/system")
async def system_health() -> JSONResponse:
    """The system's score: its weakest service's own score (an unreachable one counts 0)."""
    peers = {"auth_service": "AUTH_URL", "inventory_service": "INVENTORY_URL", "payment_gateway": "PAYMENT_URL",
             "payment_gateway_b": "PAYMENT_B_URL"}
    peers = {service: variable for service, variable in peers.items() if variable in os.environ}

    async def one(variable: str) -> dict:
        try:
            response = await state.peers.get(f"{os.environ[variable]}/health", timeout=1.0)
            return response.json()
        except (httpx.HTTPError, ValueError, KeyError):
            return {"score": 0, "level": "red", "reachable": False}

    results = dict(zip(peers, await asyncio.gather(*(one(v) for v in peers.values()))))
    results["api_gateway"] = await _own_health()
    return JSONResponse(system_health_of(results))


# The two ways an order is found again: by the client's key (a replay), by its id (after a race).
ORDER_BY = {"key": f"SELECT {ORDER_COLUMNS} FROM orders WHERE idempotency_key = %s",
            "id": f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = %s"}


async def _existing(by: str, value: str) -> dict | None:
    rows = await state.db.rows(ORDER_BY[by], [value])
    return rows[0] if rows else None


async def _take_over(key: str) -> dict | None:
    """A retry takes over a NEW order whose lease has ended (its request was told to retry, or
    died): the same order id, so a reservation that did commit is found again, not leaked."""
    rows = await state.db.rows(
        f"UPDATE orders SET lease_until = now() + make_interval(secs => %s), updated_at = now() "
        f"WHERE idempotency_key = %s AND status = 'NEW' AND lease_until < now() RETURNING {ORDER_COLUMNS}",
        [settings.order_lease_s, key])
    return rows[0] if rows else None


async def _release_lease(order: dict) -> None:
    await state.db.execute("UPDATE orders SET lease_until = now() WHERE id = %s", [order["id"]])


async def _reserve(order: dict, authorization: str | None) -> JSONResponse | None:
    """Reserves stock through inventory_service; None when reserved, else the answer to give."""
    try:
        response = await state.peers.post(
            f"{os.environ['INVENTORY_URL']}/reservations",
            json={"order_id": order["id"], "sku": order["sku"], "quantity": order["quantity"]},
            headers={"Authorization": authorization or ""},
            timeout=settings.payment_timeout_s if on("call_timeouts") else None)
    except httpx.HTTPError as exc:
        log.error("inventory_unreachable", order_id=order["id"], error=type(exc).__name__)
        return JSONResponse({"error": "inventory unavailable"}, status_code=503, headers={"Retry-After": "1"})
    if response.status_code in (200, 201):
        return None
    status = RESERVATION_ANSWER.get(response.status_code, 502)
    headers = {"Retry-After": response.headers.get("Retry-After", "1")} if status == 503 else {}
    return JSONResponse({"error": "reservation refused", "inventory_status": response.status_code},
                        status_code=status, headers=headers)


@app.post("/orders")
async def create_order(body: OrderIn, idempotency_key: str | None = Header(default=None),
                       authorization: str | None = Header(default=None)) -> JSONResponse:
    # Shed first, before the token is verified: a refusal must cost the overloaded shop nothing.
    wait_s = order_writes.take() if on("traffic_shaping") else None
    if wait_s is not None:
        SHED.inc()
        return JSONResponse({"error": "too many orders: traffic is being shaped, retry later"},
                            status_code=429, headers={"Retry-After": retry_after(wait_s)})
    try:
        claims = await auth_client.verify(state.peers, authorization)
    except (auth_client.AuthDenied, auth_client.AuthUnavailable) as exc:
        return auth_client.denial(exc)
    if not idempotency_key:
        return JSONResponse({"error": "Idempotency-Key header is required"}, status_code=400)
    if on("write_shedding") and state.disk.critical:
        return JSONResponse({"error": "writes shed: node-A disk space is critically low"},
                            status_code=503, headers={"Retry-After": "5"})
    order = {"id": str(uuid.uuid4()), **body.model_dump()}
    if not on("idempotency"):
        idempotency_key = (
            f"{idempotency_key}:{order['id']}"  # every retry is a new order (the duplicate-notification incident)
        )
    inserted = await state.db.execute(
        "INSERT INTO orders (id, idempotency_key, sku, quantity, amount_cents, customer_email, subject, status, "
        "lease_until) VALUES (%s, %s, %s, %s, %s, %s, %s, 'NEW', now() + make_interval(secs => %s)) "
        "ON CONFLICT (idempotency_key) DO NOTHING",
        [order["id"], idempotency_key, body.sku, body.quantity, body.amount_cents, body.customer_email,
         claims.get("sub"), settings.order_lease_s]) == 1
    if not inserted:
        rows = await state.db.rows("SELECT subject FROM orders WHERE idempotency_key = %s", [idempotency_key])
        if rows and not owns(rows[0]["subject"], claims):  # neither replayed to nor resumed by another
            return JSONResponse({"error": "Idempotency-Key is in use by another customer"}, status_code=409)
        resumed = await _take_over(idempotency_key) if on("retryable_refusal") else None
        if resumed is None:
            existing = await _existing("key", idempotency_key)
            return JSONResponse(_public(existing) | {"replayed": True}, status_code=200)
        order = resumed
        log.info("order_resumed", order_id=order["id"])
    structlog.contextvars.bind_contextvars(order_id=order["id"])
    return await _process(order, authorization)


def _public(order: dict | None) -> dict:
    """What a replay shows of an order (no customer data)."""
    return {k: v for k, v in (order or {}).items() if k in ("id", "status", "sku", "quantity", "amount_cents")}


async def _process(order: dict, authorization: str | None) -> JSONResponse:
    """Reserve, charge, finish. Resilient: PAYMENT_PENDING is written before the vendor is
    called, so a charged order can never be left NEW: if the outcome can't be written (database
    fault, gateway restart), the lease ends and the settler charges it again under the same key
    (the vendor replays the charge) and finishes it PAID. A transient refusal (inventory 503)
    leaves the order NEW and its lease released, so the client's retry resumes it."""
    refused = await _reserve(order, authorization)
    if refused is not None:
        if on("retryable_refusal") and refused.status_code == 503:
            await _release_lease(order)
            return refused
        await _finish(order, "REJECTED", only_if="NEW")
        ORDERS.labels("REJECTED").inc()
        return refused
    sweep = on("charged_order_sweep")  # one decision for the whole order
    if sweep:
        await state.db.execute("UPDATE orders SET status = 'PAYMENT_PENDING', updated_at = now() "
                               "WHERE id = %s AND status = 'NEW'", [order["id"]])
    status, charge_id, vendor = await _charge(order)
    if sweep:
        if not await _finish(order, status, charge_id, only_if="PAYMENT_PENDING", vendor=vendor):
            current = await _existing("id", order["id"]) or {}
            return JSONResponse(_public(current), status_code=ANSWER.get(current.get("status"), 200))
    else:
        await _finish(order, status, charge_id, vendor=vendor)
    ORDERS.labels(status).inc()
    try:
        await asyncio.to_thread(write_receipt, order["id"], {"id": order["id"], "status": status})
    except OSError as exc:
        if not on("write_shedding"):
            raise  # a full disk surfaces as a 500 half-way through the order
        log.error("receipt_not_written", error=repr(exc))
    return JSONResponse({"id": order["id"], "status": status}, status_code=ANSWER[status])


async def _charge(order: dict) -> tuple[str, str | None, str | None]:
    """Charges a new order; returns its resulting status, the charge id and the vendor the
    order is pinned to (None: no vendor can have charged it)."""
    route = _route(order)
    try:
        charge_id = await state.payments.charge(order["id"], order["amount_cents"], route)
        log.info("order_charged", order_id=order["id"], vendor=route.pinned)
        return "PAID", charge_id, route.pinned
    except (VendorError, OpenedState) as exc:
        deferred = on("fallback")
        status = "PAYMENT_PENDING" if deferred else "FAILED"
        log.warning("payment_deferred" if deferred else "payment_failed", order_id=order["id"],
                    reason="breaker_open" if isinstance(exc, OpenedState) else str(exc), vendor=route.pinned)
        return status, None, route.pinned


def owns(order_subject: str | None, claims: dict) -> bool:
    """Whether the token's subject may read an order: the subject that placed it. A token that
    went unverified (auth failing open, a protection off) passes, as everything does then."""
    return bool(claims.get("unverified")) or order_subject is None or claims.get("sub") == order_subject


class ShapingIn(BaseModel):
    rate_per_s: float = Field(gt=0, le=100_000)
    burst: int = Field(ge=1, le=100_000)


def _shaping() -> dict:
    return {"rate_per_s": order_writes.rate, "burst": order_writes.burst,
            "settings": {"rate_per_s": settings.shaping_rate_per_s, "burst": settings.shaping_burst}}


@app.get("/_control/shaping", dependencies=[Depends(require_control)])
async def get_shaping() -> dict:
    return _shaping()


@app.put("/_control/shaping", dependencies=[Depends(require_control)])
async def put_shaping(body: ShapingIn) -> dict:
    """The operator's lever for the manual's first response 5 (limit traffic at the gateway for a
    while when it is overloaded): order writes are admitted at this rate and burst from now on,
    a fresh bucket starting full. DELETE goes back to the settings' values."""
    global order_writes
    order_writes = TokenBucket(body.rate_per_s, body.burst)
    log.info("traffic_limited", rate_per_s=body.rate_per_s, burst=body.burst)
    return _shaping()


@app.delete("/_control/shaping", dependencies=[Depends(require_control)])
async def delete_shaping() -> dict:
    global order_writes
    order_writes = TokenBucket(settings.shaping_rate_per_s, settings.shaping_burst)
    log.info("traffic_limit_lifted")
    return _shaping()


@app.get("/orders/{order_id}")
async def get_order(order_id: uuid.UUID, authorization: str | None = Header(default=None)) -> JSONResponse:
    """The order, to the subject that placed it; another subject's is answered as unknown (404,
    not 403: whether an order id exists is itself not theirs to learn)."""
    try:
        claims = await auth_client.verify(state.peers, authorization)
    except (auth_client.AuthDenied, auth_client.AuthUnavailable) as exc:
        return auth_client.denial(exc)
    rows = await state.db.rows(
        "SELECT id::text AS id, idempotency_key, status, sku, quantity, amount_cents, charge_id, subject "
        "FROM orders WHERE id = %s", [str(order_id)])
    if not rows or not owns(rows[0].pop("subject"), claims):
        return JSONResponse({"error": "no such order"}, status_code=404)
    return JSONResponse(rows[0])


@app.get("/orders/{order_id}/receipt")
async def get_receipt(order_id: uuid.UUID, authorization: str | None = Header(default=None)) -> JSONResponse:
    """The order's receipt, read from node-A's data volume: the read that a full disk must not
    stop (writes are shed, reads are served)."""
    try:
        await auth_client.verify(state.peers, authorization)
    except (auth_client.AuthDenied, auth_client.AuthUnavailable) as exc:
        return auth_client.denial(exc)
    receipt = await asyncio.to_thread(read_receipt, str(order_id))
    if receipt is None:
        return JSONResponse({"error": "no receipt for this order"}, status_code=404)
    return JSONResponse(receipt)


@app.get("/outbox")
async def outbox_status() -> dict:
    """How many events wait to be published (what the broker outage scenario watches)."""
    return {"pending": await state.outbox.pending() if state.db.ready.is_set() else None,
            "broker_connected": state.outbox.connected}
