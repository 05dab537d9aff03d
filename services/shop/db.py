"""Postgres access bounded in time (db_timeouts) or not at all, shared by the services.

The manual's root cause 2: a slow or unreachable database hangs workers. With db_timeouts every
operation has a deadline the service measures itself (statement_timeout alone does not help
against a slow network: the server finishes at once and only the reply is late), and any
trouble becomes DatabaseUnavailable, logged with the manual's line and answered 503 +
Retry-After. Without it a service waits as long as the database likes. The deadlines are read
at every operation (a switch acts at once); connect and statement timeouts are set when the
pool opens its connections, so only a restart changes those.
"""

from __future__ import annotations

import asyncio
import time
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
    acquire_s: float
    request_deadline_s: float | None  # a whole HTTP-side operation, acquire included
    message_deadline_s: float | None  # a whole event, SMTP included

    def connection_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"autocommit": True}
        if self.connect_s:
            kwargs["connect_timeout"] = self.connect_s
        if self.statement_ms:
            kwargs["options"] = f"-c statement_timeout={self.statement_ms}"
        return kwargs


LIMITS = {
    True: DbLimits(connect_s=3, statement_ms=2000, acquire_s=2.0, request_deadline_s=2.0, message_deadline_s=8.0),
    False: DbLimits(connect_s=None, statement_ms=None, acquire_s=UNBOUNDED_S, request_deadline_s=None,
                    message_deadline_s=None),
}


class Database:
    """A pool plus the deadline discipline of db_timeouts."""

    def __init__(self, url: str, log, name: str,
                 on_unavailable: Callable[[], None] = lambda: None, min_size: int = 2, max_size: int = 10) -> None:
        self.log, self.on_unavailable = log, on_unavailable
        self.ready = asyncio.Event()
        self.abandoned: set[asyncio.Task] = set()
        # A connection is checked as it leaves the pool, so one broken while idle (database
        # restarted, proxy reset) is replaced instead of failing the request that drew it.
        self.pool = AsyncConnectionPool(url, min_size=min_size, max_size=max_size, open=False, name=name,
                                        timeout=UNBOUNDED_S, kwargs=LIMITS[on("db_timeouts")].connection_kwargs(),
                                        check=AsyncConnectionPool.check_connection)

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
                  deadline_s: float | None | str = "request") -> T:
        """One operation on a pooled connection. With db_timeouts: bounded by the deadline, and any
        trouble with the database becomes DatabaseUnavailable with the manual's line. An operation
        cut off may still commit later, which is why every write through here is idempotent."""
        limits = self.limits
        if deadline_s == "request":
            deadline_s = limits.request_deadline_s

        async def attempt() -> T:
            async with self.pool.connection(timeout=limits.acquire_s) as conn:
                if not transaction:
                    return await work(conn)
                async with conn.transaction():
                    return await work(conn)

        if deadline_s is None:  # db_timeouts off (a health probe brings its own deadline)
            return await attempt()
        task = asyncio.ensure_future(attempt())
        try:
            done, _ = await asyncio.wait({task}, timeout=deadline_s)
        except asyncio.CancelledError:  # the caller went away: so does the operation
            self._abandon(task)
            raise
        if done:
            try:
                return task.result()
            except DB_ERRORS as exc:
                cause = f"{type(exc).__name__}: {exc}"[:300]
        else:
            self._abandon(task)
            cause = f"no answer within {deadline_s:g} s"
        self.on_unavailable()
        self.log.error(DB_TIMEOUT, cause=cause)
        raise DatabaseUnavailable(cause)

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
            await self.run(lambda conn: conn.execute("SELECT 1"), deadline_s=deadline_s)
        except DatabaseUnavailable:
            return False
        return True

    def describe(self) -> dict[str, Any]:
        return asdict(self.limits)
