"""Order events leave through an outbox, or (outbox off) straight to the broker.

With the outbox the event row is written in the order's own transaction, and a relay publishes
unpublished rows, marking them only once the broker has confirmed them (publisher_confirms); a
broker outage delays events but loses none. Without it: a direct publish after the commit, and
an event published while the broker is away is simply gone. Without publisher_confirms a row
counts as published as soon as it is handed to the socket. Without broker_reconnect a lost
connection is given up for good.
"""

from __future__ import annotations

import asyncio
import json

import aio_pika
from psycopg import AsyncConnection

from shop import broker, events
from shop.db import Database
from shop.protections import on

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id bigserial PRIMARY KEY,
    message_id text UNIQUE NOT NULL,
    routing_key text NOT NULL,
    body jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
)
"""


class Outbox:
    def __init__(self, url: str, db: Database, log) -> None:
        self.url, self.db, self.log = url, db, log
        # Both channels' exchanges, so publisher_confirms can switch at run time.
        self.exchanges: dict[bool, aio_pika.abc.AbstractExchange] = {}
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self.given_up = False  # broker_reconnect off: the connection was lost and stays lost
        # Between a lost connection and its reconnection the robust connection still reads as
        # open; its callbacks say when it is really up.
        self.up = False

    @property
    def connected(self) -> bool:
        if self.given_up and on("broker_reconnect"):
            self.given_up = False  # switched back on: the robust connection is used again
        return self.connection is not None and self.up and not self.connection.is_closed and not self.given_up

    def _lost(self, *_: object) -> None:
        self.up = False
        if not on("broker_reconnect"):
            self.given_up = True
            self.log.error("broker_connection_given_up")

    def _back(self, *_: object) -> None:
        self.up = True

    async def connect(self) -> None:
        """Connects and declares the topology; retried (bounded) while the broker boots."""
        for _ in range(240):
            try:
                self.connection = await broker.connect(self.url)
                for confirms in (True, False):
                    channel = await self.connection.channel(publisher_confirms=confirms)
                    self.exchanges[confirms], _ = await broker.declare(channel)
                self.connection.close_callbacks.add(self._lost)
                self.connection.reconnect_callbacks.add(self._back)  # type: ignore[attr-defined]
                self.up = True
                self.log.info("broker_connected")
                return
            except Exception as exc:  # broker not up yet (or misconfigured: fragile never gets there)
                self.log.info("broker_waiting", error=type(exc).__name__)
                await asyncio.sleep(0.5)
        self.log.error("broker_never_connected")

    async def add(self, conn: AsyncConnection, event: dict) -> None:
        """Called inside the order's transaction."""
        await conn.execute(
            "INSERT INTO outbox (message_id, routing_key, body) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            [event["message_id"], event["type"], json.dumps(event)])

    async def publish_now(self, event: dict) -> None:
        """Without the outbox: straight to the broker, no second chance."""
        try:
            await self._publish(event)
        except Exception as exc:
            self.log.error("event_lost", message_id=event["message_id"], error=type(exc).__name__)

    async def _publish(self, event: dict) -> None:
        exchange = self.exchanges.get(on("publisher_confirms"))
        if exchange is None or not self.connected:
            raise ConnectionError("not connected to the broker")
        message = aio_pika.Message(events.encode(event), message_id=event["message_id"],
                                   content_type="application/json",
                                   delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await exchange.publish(message, routing_key=event["type"], timeout=5)

    async def relay(self) -> None:
        """Publishes pending rows oldest first; a row is marked only after the broker confirmed it."""
        while True:
            await asyncio.sleep(0.2)
            if not self.exchanges or not self.connected:
                continue
            try:
                rows = await self.db.rows(
                    "SELECT id, body FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT 100")
                for row in rows:
                    await self._publish(row["body"])
                    await self.db.execute("UPDATE outbox SET published_at = now() WHERE id = %s", [row["id"]])
            except Exception as exc:  # broker or database away: the rows wait for the next tick
                self.log.warning("outbox_relay_waiting", error=type(exc).__name__)
                await asyncio.sleep(0.5)

    async def pending(self) -> int:
        rows = await self.db.rows("SELECT count(*) AS pending FROM outbox WHERE published_at IS NULL")
        return rows[0]["pending"]
