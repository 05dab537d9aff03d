"""The external payment vendor, simulated: idempotent charges, a journal, and a control API.

The journal is the vendor's side of the story: every request with its arrival time and the
answer given, so the harness can judge retries, backoff and breaker behaviour from outside
the shop. The control API (under /_control) lets the harness make the vendor fail on purpose.
Everything lives in memory: a real vendor is a black box that restarts with the harness.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Literal

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from shop.health import report
from shop.logs import configure

log = configure("payment_gateway")
app = FastAPI(title="payment vendor simulator")


class Charge(BaseModel):
    order_id: str
    amount_cents: int = Field(ge=0)


class FaultSpec(BaseModel):
    """Answer `status` to every charge until `duration_s` passes (or until healed)."""

    status: Literal[500, 503, 429] = 503
    duration_s: float | None = Field(default=None, gt=0, le=3600)
    retry_after: int | None = Field(default=None, ge=0, le=3600)


class Vendor:
    """The simulator's whole state, kept behind one lock so the journal is ordered."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.reset()

    def reset(self) -> None:
        self.journal: list[dict] = []
        self.charges: dict[str, dict] = {}
        self.fault: dict | None = None

    def active_fault(self) -> dict | None:
        if self.fault and self.fault["until"] is not None and time.time() >= self.fault["until"]:
            self.fault = None
        return self.fault


vendor = Vendor()


@app.post("/charges")
async def charge(
    body: Charge,
    request: Request,
    idempotency_key: str = Header(...),
    x_chaos_probe: str | None = Header(default=None),
) -> JSONResponse:
    async with vendor.lock:
        entry = {"ts": time.time(), "key": idempotency_key, "order_id": body.order_id,
                 "probe": bool(x_chaos_probe)}
        vendor.journal.append(entry)
        fault = vendor.active_fault()
        if fault:
            entry.update(status=fault["status"], outcome="fault")
            headers = {"Retry-After": str(fault["retry_after"])} if fault["retry_after"] is not None else {}
            return JSONResponse({"error": "vendor unavailable"}, status_code=fault["status"], headers=headers)
        existing = vendor.charges.get(idempotency_key)
        if existing:
            existing["replays"] += 1
            entry.update(status=200, outcome="replay")
            return JSONResponse({"charge_id": existing["charge_id"], "replayed": True}, status_code=200)
        record = {"charge_id": uuid.uuid4().hex, "order_id": body.order_id,
                  "amount_cents": body.amount_cents, "ts": time.time(), "replays": 0}
        if not x_chaos_probe:
            vendor.charges[idempotency_key] = record
        entry.update(status=201, outcome="charged")
        log.info("charged", order_id=body.order_id)
        return JSONResponse({"charge_id": record["charge_id"], "replayed": False}, status_code=201)


@app.get("/health")
async def health() -> dict:
    return report({"accepting": (vendor.active_fault() is None, 100)}) | {"service": "payment_gateway"}


@app.post("/_control/fault")
async def set_fault(spec: FaultSpec) -> dict:
    async with vendor.lock:
        until = time.time() + spec.duration_s if spec.duration_s else None
        vendor.fault = {"status": spec.status, "retry_after": spec.retry_after, "until": until,
                        "since": time.time()}
        log.info("fault_set", **{k: v for k, v in vendor.fault.items()})
        return {"fault": vendor.fault}


@app.delete("/_control/fault")
async def clear_fault() -> dict:
    async with vendor.lock:
        healed = vendor.fault is not None
        vendor.fault = None
        log.info("fault_cleared", was_active=healed)
        return {"fault": None, "was_active": healed}


@app.get("/_control/fault")
async def get_fault() -> dict:
    return {"fault": vendor.active_fault()}


@app.get("/_control/journal")
async def journal() -> dict:
    return {"journal": vendor.journal, "charges": vendor.charges}


@app.post("/_control/reset")
async def reset() -> dict:
    async with vendor.lock:
        vendor.reset()
    return {"reset": True}
