"""inventory_service: the catalogue, stock reservations, and the consumer of order events.

What the operations manual prescribes, each a protection of its own (shop.protections):

- broker settings are checked at start: a missing RABBITMQ_* stops the service naming it (the
  RabbitMQ-configuration incident);
- every database operation is bounded (connect 3 s, statement 2 s, pool 2 s, and a deadline the
  service measures itself, because a slow network delays a reply that statement_timeout never
  sees); past it the answer is 503 with Retry-After and the manual's line
  "Database connection timed out.", never a worker waiting as long as the database does;
- a product row with a NULL column is put in `quarantine` and left out of what is served;
- order events are parsed, validated against shop.events.ORDER_EVENT_SCHEMA, applied once per
  message id (processed_messages, written in the effect's own transaction), with one mail per
  paid order (notifications); what can never be processed goes to the dead-letter queue;
- the broker connection is robust, and the consumer resumes on its own after a broker outage;
- the consumer is supervised (shop.supervisor): one that dies or wedges is restarted, and each
  restart is counted in /health (the RabbitMQ-configuration incident's worker auto-recovery).

Dead-lettering with a reason: a reject can't carry headers, and the broker's own x-death header
only says "rejected". So the consumer publishes a copy of the message to the dead-letter
exchange itself, with headers x-reason ("<kind>: <detail>") and x-original-routing-key, waits
for the broker's confirm, and only then acks the original. If that publish fails it rejects
without requeue, and the queue's own dead-lettering still lands the message in the DLQ (without
the reason). A message that fails for a transient cause (database, SMTP) is requeued after a
pause, at most MAX_TRANSIENT_ATTEMPTS times, and then dead-lettered too: nothing loops forever.

Turned off: silent broker defaults, no timeouts, NULL columns reach arithmetic, no schema, no
dedup, failed messages dropped instead of parked, a lost connection given up; and without
consumer_isolation a message the consumer can't handle stops it for good (the incident:
nothing is processed until someone notices).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import smtplib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aio_pika
import httpx
from aio_pika.abc import AbstractConnection, AbstractExchange, AbstractIncomingMessage, AbstractQueue
from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from fastapi.responses import JSONResponse
from jsonschema import Draft202012Validator
from prometheus_client import Counter, Gauge, make_asgi_app
from psycopg import AsyncConnection
from pydantic import BaseModel, Field
from tenacity import AsyncRetrying, RetryError, retry_if_exception_type, stop_after_delay, wait_fixed

from shop import auth_client, broker, events
from shop import inventory_store as store
from shop.config import broker_url
from shop.db import DB_ERRORS, Database, DatabaseUnavailable, unavailable_response
from shop.health import report
from shop.logs import INVENTORY_NULL, configure
from shop.observability import observe
from shop.protections import describe as describe_protections
from shop.protections import on
from shop.supervisor import Supervisor
from shop.switchboard import require_control
from shop.switchboard import router as protections_router
from shop.wedge import router as wedge_router
from shop.wedge import wedge

T = TypeVar("T")

log = configure("inventory_service")
BROKER_URL = broker_url(on("config_validation"), log)  # exits here, naming a missing variable
DATABASE_URL = os.environ.get("DATABASE_URL", "")
SMTP_HOST = os.environ.get("SMTP_HOST", "localhost")
SMTP_PORT = int(os.environ.get("SMTP_PORT", "25"))
SMTP_TIMEOUT_S = 5.0

PREFETCH = 10
BROKER_RETRY_S = 1.0  # while the broker is still starting (both modes: that is deployment, not a fault)
MAX_TRANSIENT_ATTEMPTS = 30
RETRY_PAUSE_S = 2.0  # with 30 attempts: a database or mail outage of a minute or more costs no event
HEALTH_DEADLINE_S = 1.0

REQUESTS = Counter("inventory_requests_total", "HTTP requests answered", ["method", "route", "status"])
PROCESSED = Counter("inventory_messages_processed_total", "Order events handled", ["type", "outcome"])
DEAD_LETTERED = Counter("inventory_messages_dead_lettered_total", "Messages sent to the DLQ", ["kind"])
DB_UNAVAILABLE = Counter("inventory_database_unavailable_total", "Operations ended by the database deadline")
CONSUMER_CONNECTED = Gauge("inventory_consumer_connected", "1 while the order-event consumer is connected")


# Worth another delivery later: the database or the mail server was away (SMTPException is an OSError).
TRANSIENT = (*DB_ERRORS, OSError)
VALIDATOR = Draft202012Validator(events.ORDER_EVENT_SCHEMA)


class Refused(Exception):
    """A request the service understood and declines (unknown sku, out of stock)."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status


class State:
    """What the running service holds."""

    db: Database
    http: httpx.AsyncClient
    consumer_stopped: asyncio.Event
    supervisor: Supervisor
    dead_letters: AbstractExchange | None = None
    consumer_connected: bool = False
    consumer_down_until: float = 0.0  # the consumer-kill fault: a consumer started before this dies at once

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task] = []
        self.transient_failures: dict[str, int] = {}


state = State()


# ---------------------------------------------------------------- the database, bounded

async def _run(work: Callable[[AsyncConnection], Awaitable[T]], *, transaction: bool = False,
               deadline_s: float | None | str = "request") -> T:
    return await state.db.run(work, transaction=transaction, deadline_s=deadline_s)


async def _rows(query: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    return await state.db.rows(query, params)


async def _setup_schema(conn: AsyncConnection) -> None:
    """Creates the schema and the catalogue (idempotent: a restart never resets used stock)."""
    await conn.execute(store.SCHEMA)
    async with conn.cursor() as cur:
        await cur.executemany(store.SEED, [(*item, store.INITIAL_STOCK) for item in store.CATALOGUE])


# ---------------------------------------------------------------- the HTTP API

@contextlib.asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    state.db = Database(DATABASE_URL, log, "inventory", on_unavailable=DB_UNAVAILABLE.inc)
    await state.db.open()
    state.http = httpx.AsyncClient()
    state.consumer_stopped = asyncio.Event()
    state.supervisor = Supervisor(_consume, lambda: state.consumer_connected,
                                  lambda: on("consumer_supervisor"), log)
    state.supervisor.launch()
    state.tasks = [asyncio.create_task(state.db.prepare(_setup_schema)), asyncio.create_task(state.supervisor.run())]
    log.info("started", limits=state.db.describe(), broker=_broker_address())
    yield
    state.supervisor.kill()
    for task in state.tasks:
        task.cancel()
    await asyncio.gather(*state.tasks, return_exceptions=True)
    await state.http.aclose()
    await state.db.close()


app = FastAPI(title="inventory_service", lifespan=lifespan)
app.mount("/metrics", make_asgi_app())
app.include_router(protections_router)
app.include_router(wedge_router)
consumer_control = APIRouter(dependencies=[Depends(require_control)])


async def _refused(_: Request, exc: Refused) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=exc.status)


async def _auth_failed(_: Request, exc: auth_client.AuthDenied | auth_client.AuthUnavailable) -> JSONResponse:
    return auth_client.denial(exc)


ANSWERS: dict[type[Exception], Callable[..., Awaitable[JSONResponse]]] = {
    DatabaseUnavailable: unavailable_response,
    Refused: _refused,
    auth_client.AuthDenied: _auth_failed,
    auth_client.AuthUnavailable: _auth_failed,
}
for _exc_type, _answer in ANSWERS.items():
    app.add_exception_handler(_exc_type, _answer)


def _count(request: Request, response: Response) -> None:
    """Counts the answer per route."""
    route = getattr(request.scope.get("route"), "path", "unmatched")
    REQUESTS.labels(request.method, route, str(response.status_code)).inc()


observe(app, log, on_answer=_count)


async def authorized(authorization: str | None = Header(default=None)) -> dict[str, Any]:
    """The caller's claims; AuthDenied / AuthUnavailable are answered by ANSWERS."""
    return await auth_client.verify(state.http, authorization, audience="shop")


AUTH = [Depends(authorized)]
PRODUCTS = "SELECT sku, name, price_cents, stock FROM products"
RESERVATION = ("SELECT order_id, sku, quantity, status, created_at::text AS created_at, "
               "updated_at::text AS updated_at FROM reservations WHERE order_id = %s")
QUARANTINE = ("INSERT INTO quarantine (sku, reason) VALUES (%s, %s) "
              "ON CONFLICT (sku) DO UPDATE SET reason = EXCLUDED.reason, at = now()")


@app.get("/health")
async def health() -> JSONResponse:
    database = await state.db.answers(HEALTH_DEADLINE_S)
    body = report({"database": (database, 50), "broker_consumer": (state.consumer_connected, 50)},
                  critical=("database",))
    body |= {"service": "inventory_service", "sut_mode": os.environ.get("SUT_MODE", "resilient"),
             "protections": describe_protections(), "consumer_recoveries": state.supervisor.recoveries.describe()}
    return JSONResponse(body, status_code=200 if database else 503)


async def _quarantine(reasons: dict[str, str]) -> None:
    async def work(conn: AsyncConnection) -> None:
        async with conn.cursor() as cur:
            await cur.executemany(QUARANTINE, list(reasons.items()))

    await _run(work)
    for sku, reason in reasons.items():
        log.warning("product_quarantined", sku=sku, reason=reason)


async def _servable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """null_quarantine: rows with a NULL column are quarantined and left out, the rest served.
    Without it every row goes to render(), and a NULL column ends the request."""
    if on("null_quarantine"):
        bad = {row["sku"]: reason for row in rows if (reason := store.quarantine_reason(row))}
        if bad:
            await _quarantine(bad)
        return [store.render(row) for row in rows if row["sku"] not in bad]
    try:
        return [store.render(row) for row in rows]
    except (TypeError, AttributeError) as exc:  # what a NULL column does to arithmetic and formatting
        log.error(INVENTORY_NULL, error=repr(exc))
        raise


@app.get("/products", dependencies=AUTH)
async def list_products() -> JSONResponse:
    return JSONResponse(await _servable(await _rows(PRODUCTS + " ORDER BY sku")))


@app.get("/products/{sku}", dependencies=AUTH)
async def get_product(sku: str) -> JSONResponse:
    rows = await _rows(PRODUCTS + " WHERE sku = %s", [sku])
    if not rows:
        return JSONResponse({"error": "no such product"}, status_code=404)
    served = await _servable(rows)
    if not served:
        return JSONResponse({"error": "not available", "reason": "quarantined",
                             "detail": store.quarantine_reason(rows[0])}, status_code=404)
    return JSONResponse(served[0])


class ReservationIn(BaseModel):
    order_id: str = Field(min_length=1, max_length=128)
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=1000)


@app.post("/reservations", dependencies=AUTH)
async def reserve(body: ReservationIn) -> JSONResponse:
    """Reserves stock, idempotent by order id: the reservation row is inserted first, so a repeat
    (or a concurrent twin) finds it and takes no stock; a refusal rolls the insert back."""

    async def work(conn: AsyncConnection) -> bool:
        inserted = await conn.execute(
            "INSERT INTO reservations (order_id, sku, quantity, status) VALUES (%s, %s, %s, 'RESERVED') "
            "ON CONFLICT (order_id) DO NOTHING", [body.order_id, body.sku, body.quantity])
        if inserted.rowcount == 0:
            return False
        taken = await conn.execute("UPDATE products SET stock = stock - %s WHERE sku = %s AND stock >= %s",
                                   [body.quantity, body.sku, body.quantity])
        if taken.rowcount == 1:
            return True
        known = await (await conn.execute("SELECT 1 FROM products WHERE sku = %s", [body.sku])).fetchone()
        raise Refused(409, "out of stock") if known else Refused(404, "no such product")

    if await _run(work, transaction=True):
        log.info("reserved", order_id=body.order_id, sku=body.sku, quantity=body.quantity)
        return JSONResponse({"order_id": body.order_id, "status": "RESERVED", "sku": body.sku,
                             "quantity": body.quantity}, status_code=201)
    existing = await _rows(RESERVATION, [body.order_id])
    return JSONResponse(existing[0] | {"replayed": True}, status_code=200)


@app.get("/reservations/{order_id}", dependencies=AUTH)
async def get_reservation(order_id: str) -> JSONResponse:
    rows = await _rows(RESERVATION, [order_id])
    if not rows:
        return JSONResponse({"error": "no such reservation"}, status_code=404)
    return JSONResponse(rows[0])


# ---------------------------------------------------------------- order events: effects

CLAIMS = {  # a row that exists once: a second claim of the same key changes nothing
    "message": "INSERT INTO processed_messages (message_id) VALUES (%s) ON CONFLICT DO NOTHING",
    "mail": "INSERT INTO notifications (order_id) VALUES (%s) ON CONFLICT DO NOTHING",
}


async def _claim(conn: AsyncConnection, what: str, key: str) -> bool:
    return (await conn.execute(CLAIMS[what], [key])).rowcount == 1


async def _transition(conn: AsyncConnection, event: dict[str, Any]) -> None:
    """Moves the order's reservation as the event says (store.transition decides)."""
    row = await (await conn.execute(
        "SELECT status, sku, quantity FROM reservations WHERE order_id = %s FOR UPDATE",
        [event["order_id"]])).fetchone()
    target = store.transition(row[0] if row else None, event["type"])
    if target is None:
        return
    await conn.execute("UPDATE reservations SET status = %s, updated_at = now() WHERE order_id = %s",
                       [target, event["order_id"]])
    if target == store.STOCK_RELEASED:
        await conn.execute("UPDATE products SET stock = stock + %s WHERE sku = %s", [row[2], row[1]])


def _send(message: EmailMessage) -> None:
    """Blocking SMTP, run in a thread."""
    with smtplib.SMTP(SMTP_HOST, SMTP_PORT, timeout=SMTP_TIMEOUT_S) as smtp:
        smtp.send_message(message)


async def _mail_paid(event: dict[str, Any]) -> None:
    """The customer's paid mail, sent now (raises what SMTP raises)."""
    await asyncio.to_thread(_send, store.paid_mail(event["order_id"], event["customer_email"]))
    log.info("customer_notified", order_id=event["order_id"])


async def _apply(event: dict[str, Any]) -> str:
    """One event's effect in one transaction; "processed" or "duplicate".

    dedup: the message id is claimed in the same transaction as the effect, and the paid mail
    once per order, so a redelivery changes nothing and mails nobody twice. mail_after_commit:
    the mail goes out only after that commit and is then marked sent (_deliver); a commit that
    fails can therefore never follow a mail already sent, which would requeue the event and mail
    the customer again. Without it the mail is sent inside the transaction."""
    paid_mail = event["type"] == "order.paid" and bool(event.get("customer_email"))
    dedup, after_commit = on("dedup"), on("mail_after_commit")  # one decision per event

    async def work(conn: AsyncConnection) -> str:
        if dedup and not await _claim(conn, "message", event["message_id"]):
            return "duplicate"
        await _transition(conn, event)
        first = paid_mail and (await _claim(conn, "mail", event["order_id"]) if dedup else True)
        if first and not after_commit:
            await _mail_paid(event)
        return "processed"

    outcome = await _run(work, transaction=True, deadline_s=state.db.limits.message_deadline_s)
    if paid_mail and after_commit and dedup:
        await _deliver(event)  # also for a duplicate: finishes a mail claimed but never sent
    elif paid_mail and after_commit:  # nothing claimed: every delivery mails again
        await _mail_paid(event)
    return outcome


MAIL_SENDING_S = 30  # one sender at a time per order; a sender that died frees the claim after this
MARK_SENT_FOR_S = 60.0  # the database may be away when the mail has just gone out: keep trying


async def _deliver(event: dict[str, Any]) -> None:
    """Sends a claimed, unsent paid mail once: the sender takes the claim for MAIL_SENDING_S (two
    deliveries of the event at once send nothing twice), sends, then records it sent. A failed
    send frees the claim and raises (transient: the event is retried). Once the mail is out,
    recording it is retried while the database is away rather than requeueing the event, which
    would send it again."""
    taken = await _rows(
        "UPDATE notifications SET sending_until = now() + make_interval(secs => %s) WHERE order_id = %s "
        "AND sent_at IS NULL AND (sending_until IS NULL OR sending_until < now()) RETURNING order_id",
        [MAIL_SENDING_S, event["order_id"]])
    if not taken:
        return
    try:
        await _mail_paid(event)
    except Exception:
        with contextlib.suppress(Exception):
            await state.db.execute("UPDATE notifications SET sending_until = NULL WHERE order_id = %s",
                                   [event["order_id"]])
        raise
    try:
        async for attempt in AsyncRetrying(stop=stop_after_delay(MARK_SENT_FOR_S), wait=wait_fixed(0.5),
                                           retry=retry_if_exception_type((DatabaseUnavailable, *DB_ERRORS))):
            with attempt:
                await state.db.execute("UPDATE notifications SET sent_at = now() WHERE order_id = %s",
                                       [event["order_id"]])
    except RetryError:
        log.error("mail_sent_not_recorded", order_id=event["order_id"])


# ---------------------------------------------------------------- order events: how each is settled

@dataclass(frozen=True)
class Disposition:
    """What becomes of a delivered message: acked, requeued for later, or dead-lettered."""

    action: str  # a key of SETTLE
    reason: str = ""
    kind: str = ""


def _body_key(message: AbstractIncomingMessage) -> str:
    return hashlib.sha256(message.body).hexdigest()


def _transient(message: AbstractIncomingMessage, exc: Exception) -> Disposition:
    """Retried later, but only so often: a message that keeps failing is dead-lettered."""
    key = _body_key(message)
    attempts = state.transient_failures.pop(key, 0) + 1
    reason = f"transient: {type(exc).__name__}: {exc}"[:500]
    if attempts >= MAX_TRANSIENT_ATTEMPTS:
        log.error("message_retries_exhausted", attempts=attempts, reason=reason)
        return Disposition("dead_letter", f"{reason} (after {attempts} attempts)", "transient")
    state.transient_failures[key] = attempts
    log.warning("message_retry_later", attempts=attempts, reason=reason)
    return Disposition("retry", reason, "transient")


async def _dispose(message: AbstractIncomingMessage) -> Disposition:
    """Decides a message's fate; never raises, so one message can't stop the consumer."""
    try:
        event = store.parse_event(message.body, VALIDATOR if on("schema_validation") else None)
        outcome = await _apply(event)
    except store.Rejected as exc:
        log.error(exc.log_event, reason=exc.reason, message_id=message.message_id)
        return Disposition("dead_letter", exc.reason[:500], exc.kind)
    except (DatabaseUnavailable, *TRANSIENT) as exc:
        return _transient(message, exc)
    except Exception as exc:  # a surprise in one message is that message's problem only
        log.exception("message_processing_failed", message_id=message.message_id, error=repr(exc))
        return Disposition("dead_letter", f"processing: {exc!r}"[:500], "processing")
    state.transient_failures.pop(_body_key(message), None)
    PROCESSED.labels(event["type"], outcome).inc()
    if outcome == "duplicate":
        log.info("duplicate_message_skipped", message_id=event["message_id"], order_id=event["order_id"])
    else:
        log.info("message_processed", message_id=event["message_id"], type=event["type"],
                 order_id=event["order_id"])
    return Disposition("ack")


async def _ack(message: AbstractIncomingMessage, _: Disposition) -> None:
    await message.ack()


async def _retry(message: AbstractIncomingMessage, _: Disposition) -> None:
    await asyncio.sleep(RETRY_PAUSE_S)
    await message.nack(requeue=True)


async def _dead_letter(message: AbstractIncomingMessage, disposition: Disposition) -> None:
    """A copy with its reason to the dead-letter exchange, confirmed, then the original acked
    (dlq off: acked and gone, the way a consumer without a DLQ drops what it can't handle)."""
    if not on("dlq"):
        log.warning("message_dropped", reason=disposition.reason)
        await message.ack()
        return
    DEAD_LETTERED.labels(disposition.kind).inc()
    headers = {**(message.headers or {}), "x-reason": disposition.reason,
               "x-original-routing-key": message.routing_key or ""}
    copy = aio_pika.Message(message.body, headers=headers, content_type=message.content_type,
                            message_id=message.message_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
    try:
        if state.dead_letters is None:
            raise RuntimeError("the dead-letter exchange is not declared")
        await state.dead_letters.publish(copy, routing_key=message.routing_key or "", timeout=5)
    except Exception as exc:  # the broker's own dead-lettering still takes it, without the reason
        log.warning("dead_letter_publish_failed", error=repr(exc), fallback="reject")
        await message.reject(requeue=False)
        return
    await message.ack()


SETTLE: dict[str, Callable[[AbstractIncomingMessage, Disposition], Awaitable[None]]] = {
    "ack": _ack, "retry": _retry, "dead_letter": _dead_letter,
}


async def _on_message(message: AbstractIncomingMessage) -> None:
    """Settles each message as _dispose decided. Without consumer_isolation the first message
    that is not simply acked stops the consumer for good (the incident of root cause 4). The
    supervisor is told of each message taken and settled (its wedge check). An armed wedge
    (shop.wedge) hangs the handler between the effect and the ack."""
    state.supervisor.progress.taken()
    async with wedge.lane():
        disposition = await _dispose(message)
        await wedge.hang()
    if disposition.action != "ack" and not on("consumer_isolation"):
        log.error("consumer_crashed", error=disposition.reason)
        state.consumer_stopped.set()
        return
    try:
        await SETTLE[disposition.action](message, disposition)
    except Exception as exc:  # the channel went away mid-flight: the broker redelivers, dedup absorbs it
        log.warning("settle_failed", action=disposition.action, error=repr(exc))
    finally:
        state.supervisor.progress.settled()


# ---------------------------------------------------------------- the consumer's connection

def _broker_address() -> str:
    parts = urlsplit(BROKER_URL)
    return f"{parts.hostname}:{parts.port}"


def _set_consumer(connected: bool, event: str) -> None:
    log.info(event, broker=_broker_address())
    state.consumer_connected = connected
    CONSUMER_CONNECTED.set(1 if connected else 0)


def _on_connection_lost(*_: Any) -> None:
    _set_consumer(False, "consumer_disconnected")
    if not on("broker_reconnect"):
        state.consumer_stopped.set()  # given up: the consumer stays down


def _on_reconnected(*_: Any) -> None:
    _set_consumer(True, "consumer_reconnected")


async def _subscribe() -> tuple[AbstractConnection, AbstractQueue]:
    """Connects and declares the topology, waiting (unbounded: the service has nothing better to
    do) while the broker starts, or, without config_validation, while the silent default points nowhere."""
    while True:
        connection: AbstractConnection | None = None
        try:
            connection = await broker.connect(BROKER_URL)
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=PREFETCH)
            _, queue = await broker.declare(channel)
            state.dead_letters = await channel.get_exchange(events.DLX, ensure=False)
            return connection, queue
        except Exception as exc:
            log.info("broker_waiting", broker=_broker_address(), error=type(exc).__name__)
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close()
            await asyncio.sleep(BROKER_RETRY_S)


async def _consume() -> None:
    """The consumer's life: once the database is ready, subscribe and consume until stopped.
    Stopped (a message it could not handle without consumer_isolation, a lost connection
    without broker_reconnect) it stays down for as long as those protections are off: for good
    in the fragile shop, until the switch is turned back on in a matrix run."""
    await state.db.ready.wait()
    if time.monotonic() < state.consumer_down_until:
        log.error("consumer_crashed_at_start", reason="held down by the consumer-kill fault")
        return  # the task ends: dead, as a consumer that crashes while starting
    while True:
        await _consume_once()
        while not (on("consumer_isolation") and on("broker_reconnect")):
            await asyncio.sleep(0.5)
        state.consumer_stopped.clear()
        log.info("consumer_resumed")


async def _consume_once() -> None:
    connection, queue = await _subscribe()
    try:
        connection.close_callbacks.add(_on_connection_lost)
        connection.reconnect_callbacks.add(_on_reconnected)  # type: ignore[attr-defined]
        await queue.consume(_on_message)
        _set_consumer(True, "consumer_connected")
        await state.consumer_stopped.wait()
    finally:
        _set_consumer(False, "consumer_stopped")
        connection.close_callbacks.discard(_on_connection_lost)  # closing it here is no lost connection
        with contextlib.suppress(Exception):
            await connection.close()


# ---------------------------------------------------------------- the consumer-kill fault's way in

class KillIn(BaseModel):
    down_s: float = Field(default=0.0, ge=0.0, le=300.0)


@consumer_control.post("/_control/consumer/kill")
async def kill_consumer(body: KillIn) -> JSONResponse:
    """Ends the consumer task (not the service), and for down_s every consumer started dies at
    once, as one that crashes on start: the supervisor's restarts fail until then."""
    state.consumer_down_until = time.monotonic() + body.down_s
    killed = state.supervisor.kill()
    log.warning("consumer_killed", down_s=body.down_s, was_alive=killed)
    return JSONResponse({"killed": killed, "down_s": body.down_s})


@consumer_control.post("/_control/consumer/heal")
async def heal_consumer() -> JSONResponse:
    """Ends the hold-down and starts the consumer if none is alive: the restart an operator
    does by hand, so the fault heals whether or not the supervisor is on (not counted)."""
    state.consumer_down_until = 0.0
    started = not state.supervisor.alive()
    if started:
        state.supervisor.launch()
    log.info("consumer_healed", started=started)
    return JSONResponse({"started": started})


app.include_router(consumer_control)
