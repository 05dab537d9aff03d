"""Postgres access bounded in time (db_timeouts) or not at all, shared by the services.

The manual's root cause 2: a slow or unreachable database hangs workers. With db_timeouts every
operation has a deadline the service measures itself (statement_timeout alone does not help
against a slow network: the server finishes at once and only the reply is late), and any
trouble becomes DatabaseUnavailable, logged with the manual's line and answered 503 +
Retry-After. Without it a service waits as long as the database likes. The deadlines are read
at every operation (a switch acts at once); connect and statement timeouts are set when the
pool opens its connections, so only a restart changes those.

Waiting for a pooled connection is its own protection, pool_timeout: when slow queries hold
every connection of the pool, a request that finds none gets 503 + Retry-After (and the line)
after POOL_TIMEOUT_S instead of queueing for ever. So the operation's deadline (db_timeouts)
counts from the moment the pool hands a connection over (its liveness check included), never
the time spent queueing for one; and pool_timeout bounds only the queueing, so a slow check of a
free connection is db_timeouts' to cut, not the pool's. With pool_shrink the connections a
burst opened are closed again once idle for POOL_MAX_IDLE_S (one per period), so the pool goes
back to its size before the burst; off, it keeps them. Read at every period (ShrinkingPool).

With durable_commit a commit is acknowledged once it is in the write-ahead log (Postgres's
synchronous_commit, the server's default); off, every connection asks for asynchronous commits,
acknowledged before the log is written, so a database killed right after loses orders the shop
answered 201. Matched on each connection as it is handed over, so the switch acts at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import psycopg
from fastapi.responses import JSONResponse
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from shop.logs import DB_TIMEOUT
from shop.protections import on

T = TypeVar("T")
DB_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)
UNBOUNDED_S = 24 * 3600.0  # psycopg_pool wants a number: a day is "as long as the database likes"
STARTUP_WAIT_S = 120.0
STARTUP_CONNECT_S = 3.0
POOL_TIMEOUT_S = 1.0
POOL_MAX_IDLE_S = 1.0  # pool_shrink: a connection idle this long is closed (one per period)
ACQUIRE_S = {True: POOL_TIMEOUT_S, False: UNBOUNDED_S}  # pool_timeout on/off
# Set by the pool's check in the task that asked for a connection: from then on the operation's
# deadline runs (a context variable, since the pool calls the check without saying for whom).
_HANDED_OVER: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar("handed_over", default=None)
# What each pooled connection was last told of synchronous_commit (absent: the server's default, on).
_DURABLE: weakref.WeakKeyDictionary[AsyncConnection, bool] = weakref.WeakKeyDictionary()


class DatabaseUnavailable(Exception):
    """The database did not answer within the deadline (or at all): 503 with Retry-After."""


async def unavailable_response(_: object, exc: Exception) -> JSONResponse:
    """The answer every service gives for DatabaseUnavailable (an exception handler)."""
    return JSONResponse({"error": "database unavailable", "reason": str(exc)}, status_code=503,
                        headers={"Retry-After": "1"})


@dataclass(frozen=True)
class DbLimits:
    """How long a service lets the database take; None: as long as it likes."""

    connect_s: int | None
    statement_ms: int | None
    request_deadline_s: float | None  # a whole HTTP-side operation, from the connection's hand-over
    message_deadline_s: float | None  # a whole event, SMTP included

    def connection_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"autocommit": True}
        if self.connect_s:
            kwargs["connect_timeout"] = self.connect_s
        if self.statement_ms:
            kwargs["options"] = f"-c statement_timeout={self.statement_ms}"
        return kwargs


LIMITS = {
    True: DbLimits(connect_s=3, statement_ms=2000, request_deadline_s=2.0, message_deadline_s=8.0),
    False: DbLimits(connect_s=None, statement_ms=None, request_deadline_s=None, message_deadline_s=None),
}


def _remaining(deadline_s: float | None, whole_s: float | None, spent_s: float) -> float | None:
    """How long an operation handed its connection may still take: its deadline, within what is
    left of a probe's whole bound (None: no bound at all)."""
    bounds = [b for b in (deadline_s, None if whole_s is None else max(0.0, whole_s - spent_s)) if b is not None]
    return min(bounds) if bounds else None


def _left(deadline_s: float | None, since: float) -> float | None:
    """What is left of a deadline that started at `since` (monotonic), None: no deadline."""
    return None if deadline_s is None else max(0.0, deadline_s - (time.monotonic() - since))


async def _check_handed_over(conn: AsyncConnection) -> None:
    """The pool's check of a connection leaving it, which also tells the waiting operation that
    its connection is found (the queueing is over; the deadline starts)."""
    handed_over = _HANDED_OVER.get()
    if handed_over is not None:
        handed_over.set()
    await AsyncConnectionPool.check_connection(conn)


async def _match_durability(conn: AsyncConnection) -> None:
    """Tells the connection what durable_commit asks now, once per change (a session setting)."""
    wanted = on("durable_commit")
    if _DURABLE.get(conn, True) != wanted:
        await conn.execute(f"SET synchronous_commit TO {'on' if wanted else 'off'}")
        _DURABLE[conn] = wanted


class ShrinkingPool(AsyncConnectionPool):
    """A pool whose shrinking asks pool_shrink at every period, so the switch acts on a running
    service (psycopg_pool reads its idle limit only when it schedules the next period). The
    method overridden is psycopg_pool's own (pinned in services/requirements.lock)."""

    async def _shrink_pool(self) -> None:
        if on("pool_shrink"):
            await super()._shrink_pool()


class Database:
    """A pool plus the deadline discipline of db_timeouts."""

    def __init__(self, url: str, log, name: str,
                 on_unavailable: Callable[[], None] = lambda: None, min_size: int = 2, max_size: int = 10) -> None:
        self.log, self.on_unavailable = log, on_unavailable
        self.ready = asyncio.Event()
        self.abandoned: set[asyncio.Task] = set()
        # A connection is checked as it leaves the pool, so one broken while idle (database
        # restarted, proxy reset) is replaced instead of failing the request that drew it. Each
        # connection carries the service's name, so pg_stat_activity says whose it is.
        kwargs = LIMITS[on("db_timeouts")].connection_kwargs() | {"application_name": name}
        self.pool = ShrinkingPool(url, min_size=min_size, max_size=max_size, open=False, name=name,
                                  timeout=UNBOUNDED_S, max_idle=POOL_MAX_IDLE_S, kwargs=kwargs,
                                  check=_check_handed_over)

    @property
    def limits(self) -> DbLimits:
        """The limits in force now."""
        return LIMITS[on("db_timeouts")]

    async def open(self) -> None:
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    def _forget(self, task: asyncio.Task) -> None:
        self.abandoned.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not report it as lost

    def _abandon(self, task: asyncio.Task) -> None:
        """Cancels an operation without waiting for it. psycopg answers a cancellation by waiting
        for the server to confirm it, which on a slow network is as slow as the fault itself; so
        the caller is answered now and the connection returns to the pool whenever that is done."""
        task.cancel()
        self.abandoned.add(task)
        task.add_done_callback(self._forget)

    async def run(self, work: Callable[[AsyncConnection], Awaitable[T]], *, transaction: bool = False,
                  deadline_s: float | None | str = "request", whole_s: float | None = None) -> T:
        """One operation on a pooled connection. With pool_timeout the wait for a connection is
        bounded; with db_timeouts the operation is, from the connection's hand-over; a probe's
        whole_s bounds the two together, whatever the switches. Any trouble with the database
        within them becomes DatabaseUnavailable with the manual's line. An operation cut off may
        still commit later, which is why every write through here is idempotent."""
        limits = self.limits
        if deadline_s == "request":
            deadline_s = limits.request_deadline_s
        acquire_s = ACQUIRE_S[on("pool_timeout")]

        async def attempt() -> T:
            async with self.pool.connection(timeout=UNBOUNDED_S) as conn:  # the queueing is bounded below
                await _match_durability(conn)
                if not transaction:
                    return await work(conn)
                async with conn.transaction():
                    return await work(conn)

        handed_over = asyncio.Event()
        token = _HANDED_OVER.set(handed_over)
        task = asyncio.ensure_future(attempt())  # the task's context holds handed_over
        _HANDED_OVER.reset(token)
        found = asyncio.ensure_future(handed_over.wait())
        began = time.monotonic()
        queue_s = acquire_s if whole_s is None else min(acquire_s, whole_s)
        done: set[asyncio.Future[T]] = set()
        try:  # queueing for a free connection: bounded by pool_timeout (and a probe's whole_s)
            await asyncio.wait({task, found}, timeout=queue_s, return_when=asyncio.FIRST_COMPLETED)
            queued = not task.done() and not handed_over.is_set()
            exhausted = queued and self.exhausted()
            deadline_from = time.monotonic()  # handed over now: the operation's deadline runs from here
            if queued and not exhausted:
                # Not every connection is taken: the pool is opening one for it, and a database
                # slow to connect is db_timeouts' to bound, not the pool's: the deadline runs
                # from the request's start, connecting included.
                deadline_from = began
                await asyncio.wait({task, found}, timeout=_remaining(_left(deadline_s, began), whole_s,
                                                                     time.monotonic() - began),
                                   return_when=asyncio.FIRST_COMPLETED)
                queued = not task.done() and not handed_over.is_set()
            if not queued:  # handed over: the operation's own deadline (db_timeouts)
                done, _ = await asyncio.wait({task}, timeout=_remaining(_left(deadline_s, deadline_from), whole_s,
                                                                        time.monotonic() - began))
        except asyncio.CancelledError:  # the caller went away: so does the operation
            self._abandon(task)
            raise
        finally:
            found.cancel()
        if done:
            try:
                return task.result()
            except DB_ERRORS as exc:
                if deadline_s is None and not isinstance(exc, PoolTimeout):
                    raise  # db_timeouts off: the database's trouble is the caller's, as it comes
                cause = f"{type(exc).__name__}: {exc}"[:300]
        else:
            self._abandon(task)
            cause = (f"PoolTimeout: no connection free within {queue_s:g} s" if exhausted and queue_s == acquire_s
                     else f"no answer within {whole_s if whole_s is not None else deadline_s:g} s")
        self.on_unavailable()
        self.log.error(DB_TIMEOUT, cause=cause)
        raise DatabaseUnavailable(cause)

    def exhausted(self) -> bool:
        """Every connection the pool may have is open or being opened: a request waiting now waits
        for one to be given back (what pool_timeout bounds)."""
        return self.pool.get_stats().get("pool_size", 0) >= self.pool.max_size

    async def rows(self, query: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Rows as dicts, with the row factory on the cursor so pooled connections stay plain."""

        async def work(conn: AsyncConnection) -> list[dict[str, Any]]:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(query, params)
            return await cur.fetchall()

        return await self.run(work)

    async def execute(self, query: str, params: list[Any] | tuple[Any, ...] = ()) -> int:
        """One statement; returns the number of rows it touched."""

        async def work(conn: AsyncConnection) -> int:
            return (await conn.execute(query, params)).rowcount

        return await self.run(work)

    async def prepare(self, setup: Callable[[AsyncConnection], Awaitable[None]]) -> None:
        """Runs the schema set-up once the database answers (bounded); the service is not ready before."""
        deadline = time.monotonic() + STARTUP_WAIT_S
        while time.monotonic() < deadline:
            try:
                async with self.pool.connection(timeout=STARTUP_CONNECT_S) as conn:
                    await setup(conn)
                self.ready.set()
                self.log.info("database_ready")
                return
            except Exception as exc:  # any failure here means "not yet"; retried until the deadline
                self.log.info("database_waiting", error=type(exc).__name__)
                await asyncio.sleep(0.2)
        self.log.error("database_never_ready")

    async def answers(self, deadline_s: float) -> bool:
        """A live probe with a short deadline (health_checks); without it, what start-up found."""
        if not self.ready.is_set():
            return False
        if not on("health_checks"):
            return True
        try:
            await self.run(lambda conn: conn.execute("SELECT 1"), deadline_s=deadline_s, whole_s=deadline_s)
        except DatabaseUnavailable:
            return False
        return True

    def describe(self) -> dict[str, Any]:
        return asdict(self.limits) | {"acquire_s": ACQUIRE_S[on("pool_timeout")]}
