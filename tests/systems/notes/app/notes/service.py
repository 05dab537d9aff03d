"""What makes either process a service: its settings from the environment, the background
tasks beside the HTTP server (broker supervisor, health monitor) and GET /health."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from notes.deps import Broker, Monitor, Postgres
from notes.health import report

PORT = 8000


def setting(name: str) -> str:
    """A required setting: a service that starts without its dependency's address would only
    fail later and less clearly."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise SystemExit(f"notes: {name} is not set (the address of a dependency)")
    return value


def app_for(name: str, db: Postgres, broker: Broker,
            tasks: tuple[Callable[[], Awaitable[None]], ...] = ()) -> FastAPI:
    """A FastAPI app named `name` whose /health checks the database and the broker; the broker
    supervisor, the health monitor and `tasks` run for the app's lifetime."""
    monitor = Monitor({"postgres": db.answers, "broker": broker.answers})

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        running = [asyncio.create_task(run()) for run in (broker.run, monitor.run, *tasks)]
        try:
            yield
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            await db.close()

    app = FastAPI(title=f"notes {name}", lifespan=lifespan)

    @app.get("/health")
    async def health() -> JSONResponse:
        """200 when every dependency answers, else 503; the body says which do, either way."""
        body = report(monitor.answers) | {"service": name}
        return JSONResponse(body, status_code=200 if body["score"] == 100 else 503)

    return app


def serve(app: FastAPI) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)  # its failed connects: logged once, as ours
    uvicorn.run(app, host="0.0.0.0", port=PORT, access_log=False, log_level="warning")
