"""The worker: consumes the notes' events and records each note once in `processed`.

A message is acknowledged only after its row is committed; while the database is unreachable
it goes back to the queue (after a pause, so an outage is not a hot loop of redeliveries). A
message that names no note is dropped with a log line: redelivering it would never help.
"""

from __future__ import annotations

import asyncio
import json
import logging

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from notes.deps import Broker, Postgres, Unavailable
from notes.schema import QUEUE, SCHEMA
from notes.service import app_for, serve, setting

RETRY_PAUSE_S = 0.5
log = logging.getLogger("notes")

db = Postgres(setting("DATABASE_URL"), SCHEMA)


async def handle(message: AbstractIncomingMessage) -> None:
    try:
        note_id = int(json.loads(message.body)["id"])
    except (ValueError, KeyError, TypeError):
        log.warning("dropped a message that names no note: %r", message.body[:200])
        await message.reject(requeue=False)
        return
    try:
        await db.fetch("INSERT INTO processed (note_id) VALUES (%s) ON CONFLICT DO NOTHING", (note_id,))
    except Unavailable:
        await asyncio.sleep(RETRY_PAUSE_S)
        await message.nack(requeue=True)
        return
    await message.ack()


async def _consume(channel: AbstractChannel) -> None:
    queue = await channel.declare_queue(QUEUE, durable=True)
    await queue.consume(handle)


broker = Broker(setting("BROKER_URL"), QUEUE, _consume)
app = app_for("worker", db, broker)


if __name__ == "__main__":
    serve(app)
