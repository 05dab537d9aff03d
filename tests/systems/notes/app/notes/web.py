"""The web service: POST /notes stores a note and announces it on the queue; GET /notes/{id}
says whether the worker has processed it.

A note is stored first and announced after; one whose announcement failed (broker down) stays
unpublished and is announced again by the republisher once the broker is back, so every stored
note reaches the worker (at least once: the worker records each once).
"""

from __future__ import annotations

import asyncio
import json

from aio_pika.abc import AbstractChannel
from fastapi import HTTPException
from pydantic import BaseModel, Field

from notes.deps import Broker, Postgres, Unavailable
from notes.schema import QUEUE, SCHEMA
from notes.service import app_for, serve, setting

REPUBLISH_EVERY_S = 1.0
REPUBLISH_BATCH = 100


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)


async def _declare(channel: AbstractChannel) -> None:
    await channel.declare_queue(QUEUE, durable=True)


db = Postgres(setting("DATABASE_URL"), SCHEMA)
broker = Broker(setting("AMQP_URL"), QUEUE, _declare)


async def announce(note_id: int, text: str) -> bool:
    """Publishes the note's event and marks it published; False when either fails."""
    try:
        await broker.publish(json.dumps({"id": note_id, "text": text}).encode())
        await db.fetch("UPDATE notes SET published = true WHERE id = %s", (note_id,))
    except Unavailable:
        return False
    return True


async def republish() -> None:
    """Announces the notes whose announcement failed, oldest first, a batch a second."""
    while True:
        await asyncio.sleep(REPUBLISH_EVERY_S)
        try:
            rows = await db.fetch("SELECT id, text FROM notes WHERE NOT published ORDER BY id LIMIT %s",
                                  (REPUBLISH_BATCH,))
        except Unavailable:
            continue
        for note_id, text in rows:
            if not await announce(note_id, text):
                break


app = app_for("web", db, broker, (republish,))


def _unavailable(exc: Unavailable) -> HTTPException:
    return HTTPException(status_code=503, detail=str(exc), headers={"Retry-After": "1"})


@app.post("/notes", status_code=201)
async def create(note: NoteIn) -> dict:
    try:
        [(note_id,)] = await db.fetch("INSERT INTO notes (text) VALUES (%s) RETURNING id", (note.text,))
    except Unavailable as exc:
        raise _unavailable(exc) from None
    return {"id": note_id, "text": note.text, "published": await announce(note_id, note.text)}


@app.get("/notes/{note_id}")
async def read(note_id: int) -> dict:
    try:
        rows = await db.fetch(
            "SELECT n.id, n.text, n.published, p.note_id IS NOT NULL FROM notes n "
            "LEFT JOIN processed p ON p.note_id = n.id WHERE n.id = %s", (note_id,))
    except Unavailable as exc:
        raise _unavailable(exc) from None
    if not rows:
        raise HTTPException(status_code=404, detail=f"no note {note_id}")
    [(found, text, published, processed)] = rows
    return {"id": found, "text": text, "published": published, "processed": processed}


if __name__ == "__main__":
    serve(app)
