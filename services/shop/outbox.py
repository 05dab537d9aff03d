"""Order events leave through an outbox (resilient) or straight to the broker (fragile).

Resilient: the event row is written in the order's own transaction, and a relay publishes
unpublished rows with publisher confirms, marking them only once the broker has acked; a broker
outage delays events but loses none. Fragile: a direct publish after the commit, no confirms;
an event published while the broker is away is simply gone.
"""

from __future__ import annotations

import asyncio
import json

import aio_pika
from psycopg import AsyncConnection

from shop import broker, events
from shop.db import Database

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
    def __init__(self, url: str, resilient: bool, db: Database, log) -> None:
        self.url, self.resilient, self.db, self.log = url, resilient, db, log
        self.exchange: aio_pika.abc.AbstractExchange | None = None
        self.connection: aio_pika.abc.AbstractConnection | None = None

    @property
    def connected(self) -> bool:
        return self.connection is not None and not self.connection.is_closed

    async def connect(self) -> None:
        """Connects and declares the topology; retried (bounded) while the broker boots."""
        for _ in range(240):
            try:
                self.connection = await broker.connect(self.url, self.resilient)
                channel = await self.connection.channel(publisher_confirms=self.resilient)
                self.exchange, _ = await broker.declare(channel, self.resilient)
                self.log.info("broker_connected")
                return
            except Exception as exc:  # broker not up yet (or misconfigured: fragile never gets there)
                self.log.info("broker_waiting", error=type(exc).__name__)
                await asyncio.sleep(0.5)
        self.log.error("broker_never_connected")

    async def add(self, conn: AsyncConnection, event: dict) -> None:
        """Called inside the order's transaction (resilient)."""
        await conn.execute(
            "INSERT INTO outbox (message_id, routing_key, body) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            [event["message_id"], event["type"], json.dumps(event)])

    async def publish_now(self, event: dict) -> None:
        """Fragile: straight to the broker, no confirm, no second chance."""
        try:
            await self._publish(event)
        except Exception as exc:
            self.log.error("event_lost", message_id=event["message_id"], error=type(exc).__name__)

    async def _publish(self, event: dict) -> None:
        if self.exchange is None:
            raise ConnectionError("not connected to the broker")
        message = aio_pika.Message(events.encode(event), message_id=event["message_id"],
                                   content_type="application/json",
                                   delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await self.exchange.publish(message, routing_key=event["type"], timeout=5)

    async def relay(self) -> None:
        """Publishes pending rows oldest first; a row is marked only after the broker confirmed it."""
        while True:
            await asyncio.sleep(0.2)
            if self.exchange is None:
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
