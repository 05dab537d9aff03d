"""The external payment vendor, simulated: idempotent charges, a journal, and a control API.

The journal is the vendor's side of the story: every request with its arrival time and the
answer given (with the Retry-After it asked for, in seconds), so the harness can judge retries,
backoff, Retry-After and breaker behaviour from outside the shop. The control API (under
/_control) lets the harness make the vendor misbehave on purpose, one fault per kind at a time:
refuse every charge (status), rate-limit (rate), fail the first N charges (first_n), decline
every charge of one amount (decline: the card issuer refuses that order, the rest go through),
answer late (slow_body) or answer garbage (malformed_body).
Requests marked X-Chaos-Probe show what the vendor answers now without creating a charge or
using up a first_n failure. Everything lives in memory: a real vendor is a black box that
restarts with the harness. The journal and the charges are bounded (shop.ring: the newest
10,000 of each, read after a cursor); like a real vendor's, the idempotency table forgets the
oldest keys past that. Every /_control endpoint asks for the run's control secret.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from typing import Callable, Literal

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import Counter, make_asgi_app
from pydantic import BaseModel, Field

from shop.health import report
from shop.logs import configure
from shop.ring import CAPACITY, PAGE, Ring
from shop.switchboard import require_control

log = configure("payment_gateway")
app = FastAPI(title="payment vendor simulator")
app.mount("/metrics", make_asgi_app())
CHARGE_REQUESTS = Counter("vendor_charge_requests_total", "Charge requests, by how they were answered", ["outcome"])

FaultKind = Literal["status", "rate", "first_n", "decline", "slow_body", "malformed_body"]
# What a vendor behind a broken proxy answers: HTML where the client expects JSON.
MALFORMED_BODY = b"<html><body><h1>502 Bad Gateway</h1>upstream sent an invalid response"
# The FaultSpec fields each kind reads (and keeps in its active fault).
FIELDS: dict[str, tuple[str, ...]] = {
    "status": ("status", "retry_after"),
    "rate": ("per_s", "retry_after"),
    "first_n": ("count", "status", "retry_after"),
    "decline": ("amount_cents",),
    "slow_body": ("delay_ms",),
    "malformed_body": (),
}


class Charge(BaseModel):
    order_id: str
    amount_cents: int = Field(ge=0)


class FaultSpec(BaseModel):
    """One misbehaviour of `kind` until `duration_s` passes (or until healed); each kind reads
    only its own fields: status/retry_after (status, first_n), per_s/retry_after (rate),
    count (first_n), delay_ms (slow_body)."""

    kind: FaultKind = "status"
    status: Literal[500, 503, 429] = 503
    duration_s: float | None = Field(default=None, gt=0, le=3600)
    retry_after: int | None = Field(default=None, ge=0, le=3600)
    per_s: int = Field(default=10, ge=1, le=1000)
    count: int = Field(default=3, ge=1, le=10000)
    delay_ms: int = Field(default=5000, ge=1, le=120000)
    amount_cents: int = Field(default=1, ge=0, le=10_000_000)


class Vendor:
    """The simulator's whole state, kept behind one lock so the journal is ordered."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.reset()

    def reset(self) -> None:
        self.journal = Ring()
        self.charges: dict[str, dict] = {}  # the idempotency table: key -> charge, oldest first
        self.charge_log = Ring()  # the same charges, sequenced for reads after a cursor
        self.faults: dict[str, dict] = {}
        self.arrivals: deque[float] = deque()  # charge arrival times within the last second

    def keep_charge(self, key: str, record: dict) -> None:
        """Records a charge; past CAPACITY the oldest key is forgotten (the ring drops it too)."""
        self.charges[key] = self.charge_log.append(record)
        while len(self.charges) > CAPACITY:
            del self.charges[next(iter(self.charges))]

    def active_faults(self) -> dict[str, dict]:
        now = time.time()
        for kind in [k for k, f in self.faults.items() if f["until"] is not None and now >= f["until"]]:
            del self.faults[kind]
        return self.faults

    def newest_fault(self) -> dict | None:
        faults = self.active_faults()
        return max(faults.values(), key=lambda f: f["since"]) if faults else None


vendor = Vendor()


def _error(status: int, retry_after: int | None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return JSONResponse({"error": "vendor unavailable"}, status_code=status, headers=headers)


def _refuse_status(fault: dict, probe: bool, body: Charge) -> JSONResponse | None:
    return _error(fault["status"], fault["retry_after"])


def _refuse_rate(fault: dict, probe: bool, body: Charge) -> JSONResponse | None:
    """A sliding one-second window; probes count, as every request counts at a real limiter."""
    now = time.time()
    while vendor.arrivals and now - vendor.arrivals[0] >= 1.0:
        vendor.arrivals.popleft()
    if len(vendor.arrivals) >= fault["per_s"]:
        return _error(429, 1 if fault["retry_after"] is None else fault["retry_after"])
    vendor.arrivals.append(now)
    return None


def _refuse_first_n(fault: dict, probe: bool, body: Charge) -> JSONResponse | None:
    """Probes see the failure without using one up, so observing the fault does not change it."""
    if fault["remaining"] <= 0:
        return None
    if not probe:
        fault["remaining"] -= 1
    return _error(fault["status"], fault["retry_after"])


def _refuse_decline(fault: dict, probe: bool, body: Charge) -> JSONResponse | None:
    """402, as an issuer declining a card: only charges of the fault's amount, every time."""
    if body.amount_cents != fault["amount_cents"]:
        return None
    return JSONResponse({"error": "card declined"}, status_code=402)


# Faults that answer instead of the vendor, checked in this order before a charge is made; each
# sees the fault, whether the request is a probe, and the charge asked for.
REFUSALS: dict[str, Callable[[dict, bool, Charge], JSONResponse | None]] = {
    "status": _refuse_status,
    "rate": _refuse_rate,
    "first_n": _refuse_first_n,
    "decline": _refuse_decline,
}


@app.post("/charges")
async def charge(
    body: Charge,
    request: Request,
    idempotency_key: str = Header(...),
    x_chaos_probe: str | None = Header(default=None),
) -> Response:
    probe = bool(x_chaos_probe)
    async with vendor.lock:
        entry = {"ts": time.time(), "key": idempotency_key, "order_id": body.order_id, "probe": probe}
        vendor.journal.append(entry)  # numbered now, completed below (the ring holds the same dict)
        CHARGE_REQUESTS.labels("received").inc()
        faults = vendor.active_faults()
        for kind, refuse in REFUSALS.items():
            refusal = refuse(faults[kind], probe, body) if kind in faults else None
            if refusal is not None:
                wait = refusal.headers.get("retry-after")  # what the caller was told to wait
                entry.update(status=refusal.status_code, outcome="fault", fault=kind,
                             retry_after_s=int(wait) if wait is not None else None)
                return refusal
        response = _charge(body, idempotency_key, probe, entry)
        slow, malformed = faults.get("slow_body"), faults.get("malformed_body")
        if malformed:
            entry.update(fault="malformed_body")
            response = Response(MALFORMED_BODY, status_code=200, media_type="text/html")
        if slow:
            entry.update(fault="slow_body", delayed_ms=slow["delay_ms"])
    if slow:
        # The charge is made; only the answer is late (outside the lock: others are not held up).
        await asyncio.sleep(slow["delay_ms"] / 1000)
    return response


def _charge(body: Charge, key: str, probe: bool, entry: dict) -> JSONResponse:
    """The vendor's real work: one charge per idempotency key, replays answered from the first."""
    existing = vendor.charges.get(key)
    if existing:
        existing["replays"] += 1
        entry.update(status=200, outcome="replay")
        return JSONResponse({"charge_id": existing["charge_id"], "replayed": True}, status_code=200)
    record = {"charge_id": uuid.uuid4().hex, "key": key, "order_id": body.order_id,
              "amount_cents": body.amount_cents, "ts": time.time(), "replays": 0}
    if not probe:
        vendor.keep_charge(key, record)
    entry.update(status=201, outcome="charged")
    log.info("charged", order_id=body.order_id)
    return JSONResponse({"charge_id": record["charge_id"], "replayed": False}, status_code=201)


@app.get("/health")
async def health() -> dict:
    return report({"accepting": (not vendor.active_faults(), 100)}) | {"service": "payment_gateway"}


# What the vendor's public status page says while a kind of fault is active (the manual's first
# response: "check the vendor's status page; wait or switch"), in a status page's usual words.
STATUS_PAGE: dict[str, tuple[str, str]] = {
    "status": ("major", "Payments API outage: charges are failing"),
    "first_n": ("major", "Payments API errors: some charges are failing"),
    "malformed_body": ("major", "Payments API returning invalid responses"),
    "rate": ("minor", "Payments API rate limited: some charges are refused"),
    "slow_body": ("minor", "Payments API degraded performance: charges are slow"),
    "decline": ("minor", "Some cards are being declined"),
}
SEVERITY_RANK = ("major", "minor")


@app.get("/status")
async def status_page() -> dict:
    """The vendor's status page: its worst active incident, or none."""
    incidents = sorted((STATUS_PAGE[kind] for kind in vendor.active_faults() if kind in STATUS_PAGE),
                       key=lambda incident: SEVERITY_RANK.index(incident[0]))
    if not incidents:
        return {"indicator": "none", "description": "All systems operational"}
    indicator, description = incidents[0]
    return {"indicator": indicator, "description": description}


@app.post("/_control/fault", dependencies=[Depends(require_control)])
async def set_fault(spec: FaultSpec) -> dict:
    async with vendor.lock:
        now = time.time()
        fault = {"kind": spec.kind, **{name: getattr(spec, name) for name in FIELDS[spec.kind]},
                 "until": now + spec.duration_s if spec.duration_s else None, "since": now}
        if spec.kind == "first_n":
            fault["remaining"] = spec.count
        vendor.faults[spec.kind] = fault
        if spec.kind == "rate":
            vendor.arrivals.clear()
        log.info("fault_set", **fault)
        return {"fault": fault}


@app.delete("/_control/fault", dependencies=[Depends(require_control)])
async def clear_fault(kind: FaultKind | None = None) -> dict:
    """Clears one kind of fault, or every fault when no kind is given."""
    async with vendor.lock:
        cleared = [vendor.faults.pop(k, None) for k in ([kind] if kind else list(vendor.faults))]
        healed = any(fault is not None for fault in cleared)
        log.info("fault_cleared", was_active=healed, kind=kind or "all")
        return {"fault": vendor.newest_fault(), "was_active": healed}


@app.get("/_control/fault", dependencies=[Depends(require_control)])
async def get_fault() -> dict:
    """The newest active fault (what most callers want) and all of them by kind."""
    return {"fault": vendor.newest_fault(), "faults": vendor.active_faults()}


@app.get("/_control/journal", dependencies=[Depends(require_control)])
async def journal(since: int = 0, limit: int = PAGE) -> dict:
    """The requests after cursor `since` (probes included, marked), and the cursor to read next."""
    return vendor.journal.since(since, limit).as_json("journal")


@app.get("/_control/charges", dependencies=[Depends(require_control)])
async def charges(since: int = 0, limit: int = PAGE) -> dict:
    """The charges made after cursor `since` (each with its idempotency key), and the next cursor."""
    return vendor.charge_log.since(since, limit).as_json("charges")


@app.post("/_control/reset", dependencies=[Depends(require_control)])
async def reset() -> dict:
    async with vendor.lock:
        vendor.reset()
    return {"reset": True}
