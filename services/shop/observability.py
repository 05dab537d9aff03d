"""The HTTP middleware every shop service with an API shares: a trace id bound to each request's
log events, and an unhandled error logged as one JSON event and answered as a plain 500."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse


def observe(app: FastAPI, log: Any, on_answer: Callable[[Request, Response], None] | None = None) -> None:
    """Adds the middleware to `app`; `on_answer` sees every request with the response it got
    (a 500 made here included), e.g. to count answers per route."""

    @app.middleware("http")
    async def bind_trace(request: Request, call_next: Any) -> Any:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(trace_id=request.headers.get("X-Trace-Id") or uuid.uuid4().hex)
        try:
            response = await call_next(request)
        except Exception as exc:  # logged as one JSON event, answered as a plain 500
            log.exception("unhandled_error", path=request.url.path, error=repr(exc))
            response = JSONResponse({"error": "internal error"}, status_code=500)
        if on_answer is not None:
            on_answer(request, response)
        return response
