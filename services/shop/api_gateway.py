"""The shop's front door: takes orders, charges them through the payment vendor.

Resilient mode is what the manual prescribes for an outage of the payment vendor: retries
with exponential backoff and jitter, a circuit breaker that stops calling a vendor that is
down, a 202 PAYMENT_PENDING fallback instead of an error, and a settler that charges pending
orders exactly once when the vendor is back. Fragile mode is the same code with all of that
switched off, so a scenario can prove its assertions fail without the protections.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import structlog
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Gauge, make_asgi_app
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from shop.health import report
from shop.logs import PAYMENT_503, configure
from shop.settings import GatewaySettings

settings = GatewaySettings.from_env()
RESILIENT = settings.sut_mode == "resilient"
log = configure("api_gateway")

ORDERS = Counter("shop_orders_total", "Orders answered, by resulting status", ["status"])
VENDOR_CALLS = Counter("shop_payment_calls_total", "Calls to the payment vendor, by outcome", ["outcome"])
BREAKER_OPEN = Gauge("shop_payment_breaker_open", "1 while the payment circuit breaker is open")

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id uuid PRIMARY KEY,
    idempotency_key text UNIQUE NOT NULL,
    sku text NOT NULL,
    quantity integer NOT NULL,
    amount_cents integer NOT NULL,
    status text NOT NULL,
    charge_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""

# What the client is told for each state an order can be left in after POST /orders.
ANSWER = {"PAID": 201, "PAYMENT_PENDING": 202, "FAILED": 502}


class OrderIn(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(default=1, ge=1, le=1000)
    amount_cents: int = Field(ge=0, le=10_000_000)


class VendorError(Exception):
    """The vendor answered with an error status or could not be reached."""

    def __init__(self, status: int | None, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class State:
    """What the running gateway holds: pool, HTTP client, breaker, readiness."""

    pool: AsyncConnectionPool
    http: httpx.AsyncClient
    breakers: AsyncCircuitBreakerFactory
    breaker_state: str = "closed"
    db_ready: bool = False
    tasks: list[asyncio.Task]


state = State()


def _on_breaker(name: str, event_type: str, event: Any) -> None:
    """Breaker transitions are logged so the harness can line them up with the vendor journal."""
    if event_type == "state_changed":
        state.breaker_state = event.state
        BREAKER_OPEN.set(1 if event.state == "opened" else 0)
        log.warning("breaker_state_changed", breaker=name, state=event.state)


async def _prepare_database() -> None:
    """Creates the schema once the database answers; the gateway is not ready before."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            async with state.pool.connection(timeout=settings.db_connect_timeout_s) as conn:
                await conn.execute(SCHEMA)
            state.db_ready = True
            log.info("database_ready")
            return
        except Exception as exc:  # any failure here means "not yet"; retried until the deadline
            log.info("database_waiting", error=type(exc).__name__)
            await asyncio.sleep(0.2)
    log.error("database_never_ready")


async def _call_vendor(order_id: str, amount_cents: int) -> str:
    """One charge request. The order id is the idempotency key, so a repeat never charges twice."""
    try:
        response = await state.http.post(
            "/charges",
            json={"order_id": order_id, "amount_cents": amount_cents},
            headers={"Idempotency-Key": order_id},
        )
    except httpx.HTTPError as exc:
        VENDOR_CALLS.labels("unreachable").inc()
        raise VendorError(None, f"vendor unreachable: {type(exc).__name__}") from exc
    if response.status_code == 503:
        log.error(PAYMENT_503, kind="payment_vendor_unavailable", order_id=order_id,
                  retry_after=response.headers.get("Retry-After"))
    if response.status_code >= 400:
        VENDOR_CALLS.labels(str(response.status_code)).inc()
        raise VendorError(response.status_code, f"vendor answered {response.status_code}")
    VENDOR_CALLS.labels("ok").inc()
    return response.json()["charge_id"]


async def _guarded_call(order_id: str, amount_cents: int) -> str:
    """One vendor call through the circuit breaker (raises OpenedState while it is open)."""
    breaker = await state.breakers.get_breaker("payment")
    async with breaker:
        return await _call_vendor(order_id, amount_cents)


async def _charge_resilient(order_id: str, amount_cents: int) -> str:
    """Retries vendor errors with exponential backoff and jitter; an open breaker ends it at once."""
    retrying = AsyncRetrying(
        stop=stop_after_attempt(settings.retry_attempts),
        wait=wait_exponential_jitter(initial=settings.retry_initial_s, max=settings.retry_max_s,
                                     jitter=settings.retry_jitter_s),
        retry=retry_if_exception_type(VendorError),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await _guarded_call(order_id, amount_cents)
    raise AssertionError("unreachable: tenacity reraises")


async def _set_status(order_id: str, status: str, charge_id: str | None = None,
                      only_if: str | None = None) -> bool:
    """A conditional update, so a state transition (PENDING -> PAID) happens at most once."""
    query = "UPDATE orders SET status = %s, charge_id = COALESCE(%s, charge_id), updated_at = now() WHERE id = %s"
    params: list[Any] = [status, charge_id, order_id]
    if only_if:
        query += " AND status = %s"
        params.append(only_if)
    async with state.pool.connection() as conn:
        cur = await conn.execute(query, params)
        return cur.rowcount == 1


async def _settle_pending() -> None:
    """Charges PAYMENT_PENDING orders once the breaker lets calls through again."""
    while True:
        await asyncio.sleep(settings.settle_interval_s)
        if not state.db_ready:
            continue
        try:
            pending = await _rows(
                "SELECT id::text AS id, amount_cents FROM orders WHERE status = 'PAYMENT_PENDING' "
                "ORDER BY created_at LIMIT 100", [])
            for order in pending:
                charge_id = await _guarded_call(order["id"], order["amount_cents"])
                if await _set_status(order["id"], "PAID", charge_id, only_if="PAYMENT_PENDING"):
                    log.info("order_settled", order_id=order["id"], charge_id=charge_id)
                    ORDERS.labels("PAID").inc()
        except (OpenedState, VendorError):
            continue  # the vendor is still down: try again on the next tick
        except Exception as exc:  # never let the settler die; the next tick retries
            log.error("settler_error", error=repr(exc))


@contextlib.asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    state.pool = AsyncConnectionPool(
        settings.database_url, min_size=1, max_size=10, open=False,
        kwargs={"connect_timeout": settings.db_connect_timeout_s, "autocommit": True},
    )
    await state.pool.open(wait=False)
    timeout = httpx.Timeout(settings.payment_timeout_s) if RESILIENT else httpx.Timeout(None)
    state.http = httpx.AsyncClient(base_url=settings.payment_url, timeout=timeout)
    state.breakers = AsyncCircuitBreakerFactory(
        default_threshold=settings.breaker_threshold, default_ttl=settings.breaker_reset_s)
    state.breakers.add_listener(_on_breaker)
    state.tasks = [asyncio.create_task(_prepare_database())]
    if RESILIENT:
        state.tasks.append(asyncio.create_task(_settle_pending()))
    log.info("started", settings=settings.model_dump(exclude={"database_url"}))
    yield
    for task in state.tasks:
        task.cancel()
    await state.http.aclose()
    await state.pool.close()


app = FastAPI(title="api_gateway", lifespan=lifespan)
app.mount("/metrics", make_asgi_app())


@app.middleware("http")
async def bind_trace(request: Request, call_next: Any) -> Any:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(trace_id=request.headers.get("X-Trace-Id") or uuid.uuid4().hex)
    try:
        return await call_next(request)
    except Exception as exc:  # logged as one JSON event, answered as a plain 500
        log.exception("unhandled_error", path=request.url.path, error=repr(exc))
        return JSONResponse({"error": "internal error"}, status_code=500)


@app.get("/health")
async def health() -> JSONResponse:
    body = report({"database": (state.db_ready, 60), "payment_breaker_closed": (state.breaker_state != "opened", 40)})
    body |= {"service": "api_gateway", "sut_mode": settings.sut_mode, "breaker": state.breaker_state}
    return JSONResponse(body, status_code=200 if state.db_ready else 503)


async def _rows(query: str, params: list[Any]) -> list[dict]:
    """Rows as dicts, with the row factory on the cursor so pooled connections stay plain."""
    async with state.pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(query, params)
        return await cur.fetchall()


async def _existing(key: str) -> dict | None:
    rows = await _rows(
        "SELECT id::text AS id, status, sku, quantity, amount_cents FROM orders WHERE idempotency_key = %s", [key])
    return rows[0] if rows else None


@app.post("/orders")
async def create_order(body: OrderIn, idempotency_key: str | None = Header(default=None)) -> JSONResponse:
    if not idempotency_key:
        return JSONResponse({"error": "Idempotency-Key header is required"}, status_code=400)
    order_id = str(uuid.uuid4())
    async with state.pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO orders (id, idempotency_key, sku, quantity, amount_cents, status) "
            "VALUES (%s, %s, %s, %s, %s, 'NEW') ON CONFLICT (idempotency_key) DO NOTHING",
            [order_id, idempotency_key, body.sku, body.quantity, body.amount_cents])
        inserted = cur.rowcount == 1
    if not inserted:
        existing = await _existing(idempotency_key)
        return JSONResponse(existing | {"replayed": True}, status_code=200)
    structlog.contextvars.bind_contextvars(order_id=order_id)
    status = await _charge(order_id, body.amount_cents)
    ORDERS.labels(status).inc()
    return JSONResponse({"id": order_id, "status": status}, status_code=ANSWER[status])


async def _charge(order_id: str, amount_cents: int) -> str:
    """Charges a new order and records the outcome; returns the order's resulting status."""
    try:
        if RESILIENT:
            charge_id = await _charge_resilient(order_id, amount_cents)
        else:
            charge_id = await _call_vendor(order_id, amount_cents)
    except (VendorError, OpenedState) as exc:
        status = "PAYMENT_PENDING" if RESILIENT else "FAILED"
        log.warning("payment_deferred" if RESILIENT else "payment_failed", order_id=order_id,
                    reason="breaker_open" if isinstance(exc, OpenedState) else str(exc))
        await _set_status(order_id, status)
        return status
    await _set_status(order_id, "PAID", charge_id)
    return "PAID"


@app.get("/orders/{order_id}")
async def get_order(order_id: uuid.UUID) -> JSONResponse:
    rows = await _rows(
        "SELECT id::text AS id, idempotency_key, status, sku, quantity, amount_cents, charge_id "
        "FROM orders WHERE id = %s", [str(order_id)])
    if not rows:
        return JSONResponse({"error": "no such order"}, status_code=404)
    return JSONResponse(rows[0])
