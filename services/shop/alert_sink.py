"""The harness's observer: a Slack-webhook receiver for alerts and an SMTP server for customer
mail (the duplicate-notification incident counts notifications per order). Everything is kept in memory, bounded (the
newest 10,000 alerts and mails, shop.ring) and readable over HTTP after a cursor;
/_control/reset clears it between scenarios, /_control/smtp slows the mail server (both ask
for the run's control secret)."""

from __future__ import annotations

import asyncio
import contextlib
import email
import time
from collections.abc import AsyncIterator
from email import policy

from aiosmtpd.controller import Controller
from fastapi import Depends, FastAPI, Request
from prometheus_client import Counter, make_asgi_app

from shop.health import report
from shop.logs import configure
from shop.ring import PAGE, Ring
from shop.switchboard import require_control

SMTP_PORT = 2525
log = configure("alert_sink")
alerts = Ring()
mails = Ring()
# How long the SMTP server waits, after recording a mail, before it answers 250: a slow mail
# server is how a scenario holds the shop's consumer between "mail sent" and its commit.
smtp = {"delay_ms": 0}


class MailHandler:
    """aiosmtpd handler: records each message with its headers and body."""

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        body = message.get_body(preferencelist=("plain",))
        mails.append({"ts": time.time(), "from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                      "subject": str(message["Subject"]), "order_id": str(message.get("X-Order-Id", "")),
                      "body": body.get_content() if body else ""})
        RECEIVED.labels("mail").inc()
        if smtp["delay_ms"]:
            await asyncio.sleep(smtp["delay_ms"] / 1000)
        return "250 OK"


@contextlib.asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    controller = Controller(MailHandler(), hostname="0.0.0.0", port=SMTP_PORT, server_hostname="alert-sink")
    controller.start()
    yield
    controller.stop()


app = FastAPI(title="alert_sink", lifespan=lifespan)
app.mount("/metrics", make_asgi_app())
RECEIVED = Counter("sink_received_total", "Alerts and mails received", ["kind"])


@app.post("/hooks/alerts")
async def receive(request: Request) -> dict:
    payload = await request.json()
    alerts.append({"ts": time.time(), **payload})
    RECEIVED.labels("alert").inc()
    log.info("alert_received", text=payload.get("text"))
    return {"ok": True}


@app.get("/alerts")
async def list_alerts(since: int = 0, limit: int = PAGE) -> dict:
    """The alerts after cursor `since`, and the cursor to read next."""
    return alerts.since(since, limit).as_json("alerts")


@app.get("/mails")
async def list_mails(since: int = 0, limit: int = PAGE) -> dict:
    """The mails after cursor `since`, and the cursor to read next."""
    return mails.since(since, limit).as_json("mails")


@app.post("/_control/smtp", dependencies=[Depends(require_control)])
async def set_smtp(settings: dict) -> dict:
    """{"delay_ms": N}: answer each mail N ms after recording it (0: at once; at most 4 s, under
    the shop's SMTP timeout, so the mail counts as sent)."""
    smtp["delay_ms"] = max(0, min(4000, int(settings.get("delay_ms", 0))))
    return {"smtp": smtp}


@app.post("/_control/reset", dependencies=[Depends(require_control)])
async def reset() -> dict:
    alerts.clear()
    mails.clear()
    smtp["delay_ms"] = 0
    return {"reset": True}


@app.get("/health")
async def health() -> dict:
    return report({"listening": (True, 100)}) | {"service": "alert_sink"}
