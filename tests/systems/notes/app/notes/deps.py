"""The two dependencies, each kept usable by itself: a PostgreSQL connection reopened after it
breaks, and a RabbitMQ connection kept up by a supervisor with a bounded backoff.

Every call and every check is bounded (CALL_TIMEOUT_S), so a cut dependency fails fast and
health falls within seconds instead of a request hanging on a dead socket; and neither needs a
restart to come back, which is what a healed fault expects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aio_pika
import psycopg
from aio_pika.abc import AbstractChannel, AbstractConnection

CALL_TIMEOUT_S = 1.0  # a query, a publish, a check
CONNECT_TIMEOUT_S = 2.0  # an AMQP handshake is several round trips
BACKOFF_S = (0.1, 2.0)  # reconnect delay: doubles from the first to at most the second

log = logging.getLogger("notes")
T = TypeVar("T")


class Unavailable(Exception):
    """A dependency did not answer within its bound."""


_background: set[asyncio.Future[Any]] = set()


def _forget(task: asyncio.Future[Any]) -> None:
    _background.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: a late failure of given-up work is expected


def in_background(work: Awaitable[Any]) -> None:
    """Lets given-up work end by itself, referenced until it does (a bare task may be collected
    half-way), its outcome ignored."""
    task = asyncio.ensure_future(work)
    _background.add(task)
    task.add_done_callback(_forget)


async def bounded(work: Awaitable[T], timeout_s: float = CALL_TIMEOUT_S) -> T:
    """The work's result, or TimeoutError after `timeout_s`. Unlike asyncio.wait_for, it does not
    wait for the cancelled work to wind down: psycopg answers a cancellation by cancelling the
    query on the server, which on a stalled connection takes up to 10 s more, and the caller's
    bound is what makes health fall within seconds."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task in done:
        return task.result()
    task.cancel()
    in_background(task)
    raise TimeoutError(f"no answer within {timeout_s:g} s")


async def _quietly(closing: Awaitable[Any]) -> None:
    """Closes without waiting more than a call's bound or caring how it went: the connection is
    being given up either way."""
    try:
        await bounded(closing)
    except Exception:  # noqa: BLE001 - a dead connection may fail to close in any way
        pass


Connection = psycopg.AsyncConnection[Any]
Rows = list[tuple[Any, ...]]


async def _retire(connection: Connection | None, work: asyncio.Future[tuple[Connection, Rows]]) -> None:
    """Closes a given-up connection once the work on it has ended (psycopg bounds that), and the
    one the work opened if it did: closed under the work, its socket's number could go to the
    next connection while the work still watches it."""
    late = None
    try:
        late, _ = await work
    except BaseException:  # noqa: BLE001 - cancelled or failed: nothing more to close
        pass
    for each in {connection, late} - {None}:
        await each.close()  # type: ignore[union-attr]


class Postgres:
    """One connection, opened on first use and again after a failure (with `schema` run on
    each open: CREATE ... IF NOT EXISTS). Calls are serialised: the services need little."""

    def __init__(self, url: str, schema: str) -> None:
        self.url, self.schema = url, schema
        self._connection: Connection | None = None
        self._lock = asyncio.Lock()

    async def _execute(self, connection: Connection | None, sql: str,
                       params: tuple[Any, ...]) -> tuple[Connection, Rows]:
        """Runs the statement on `connection`, or on a new one when it is gone or broken."""
        if connection is None or connection.closed or connection.broken:
            connection = await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=1)
            await connection.execute(self.schema)
        cursor = await connection.execute(sql, params)
        return connection, (await cursor.fetchall() if cursor.description else [])

    async def fetch(self, sql: str, params: tuple[Any, ...] = ()) -> Rows:
        """The statement's rows (none for a statement without a result); Unavailable when the
        database does not answer within the bound. The connection is given up on any failure."""
        async with self._lock:
            work = asyncio.ensure_future(self._execute(self._connection, sql, params))
            try:
                self._connection, rows = await bounded(work)
            except (OSError, TimeoutError, psycopg.Error) as exc:
                in_background(_retire(self._connection, work))
                self._connection = None
                raise Unavailable(f"postgres: {type(exc).__name__}: {exc}".strip()) from exc
            return rows

    async def answers(self) -> bool:
        try:
            await self.fetch("SELECT 1")
            return True
        except Unavailable:
            return False

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()


class Broker:
    """A RabbitMQ connection kept up by `run()` (a background task): it connects, hands a new
    channel to `on_channel` (declare the queue, start consuming), and connects again after a
    backoff when the connection is lost or a check finds it dead."""

    def __init__(self, url: str, queue: str, on_channel: Callable[[AbstractChannel], Awaitable[None]]) -> None:
        self.url, self.queue, self.on_channel = url, queue, on_channel
        self.channel: AbstractChannel | None = None
        self._lost = asyncio.Event()

    async def _session(self) -> None:
        """One connection's life: returns when it is lost."""
        connection: AbstractConnection = await bounded(
            aio_pika.connect(self.url, timeout=CONNECT_TIMEOUT_S), CONNECT_TIMEOUT_S)
        lost = self._lost = asyncio.Event()  # this connection's own: a late callback of the last one can't end it
        connection.close_callbacks.add(lambda *_: lost.set())
        try:
            channel = await bounded(connection.channel(), CALL_TIMEOUT_S)
            await bounded(channel.set_qos(prefetch_count=10), CALL_TIMEOUT_S)
            await bounded(self.on_channel(channel), CONNECT_TIMEOUT_S)
            self.channel = channel
            log.info("broker connected")
            await lost.wait()
        finally:
            self.channel = None
            await _quietly(connection.close())

    async def run(self) -> None:
        delay = BACKOFF_S[0]
        while True:
            try:
                await self._session()
                delay = BACKOFF_S[0]  # it was up: the next loss starts the backoff again
                log.warning("broker connection lost")
            except Exception as exc:  # noqa: BLE001 - the supervisor outlives every failure
                log.warning("broker unreachable: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(delay)
            delay = min(2 * delay, BACKOFF_S[1])

    async def answers(self) -> bool:
        """Connected, and the broker answers a round trip (the queue's passive declare) within
        the bound: a stalled connection looks open until its heartbeat, minutes later."""
        channel = self.channel
        if channel is None or channel.is_closed:
            return False
        try:
            await bounded(channel.declare_queue(self.queue, passive=True), CALL_TIMEOUT_S)
            return True
        except Exception:  # noqa: BLE001 - whatever the failure, the broker did not answer
            self._lost.set()
            return False

    async def publish(self, body: bytes) -> None:
        """Publishes a persistent message to the queue and waits for the broker's confirm."""
        channel = self.channel
        if channel is None or channel.is_closed:
            raise Unavailable("broker: not connected")
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                   content_type="application/json")
        try:
            await bounded(channel.default_exchange.publish(message, routing_key=self.queue), CALL_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - not confirmed, whatever the failure
            self._lost.set()
            raise Unavailable(f"broker: {type(exc).__name__}") from exc


class Monitor:
    """Runs the checks every CHECK_EVERY_S in the background and keeps the last answers, so a
    health probe at any rate costs nothing and a cut dependency shows within a second or two."""

    CHECK_EVERY_S = 0.5

    def __init__(self, checks: dict[str, Callable[[], Awaitable[bool]]]) -> None:
        self.checks = checks
        self.answers: dict[str, bool] = {name: False for name in checks}

    async def _answer(self, check: Callable[[], Awaitable[bool]]) -> bool:
        """A check that does not answer within its bound (waiting behind a slow request) fails."""
        try:
            return await bounded(check(), 2 * CALL_TIMEOUT_S)
        except TimeoutError:
            return False

    async def run(self) -> None:
        while True:
            results = await asyncio.gather(*(self._answer(check) for check in self.checks.values()))
            self.answers = dict(zip(self.checks, results))
            await asyncio.sleep(self.CHECK_EVERY_S)
