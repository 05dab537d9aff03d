"""Alerts to a Slack-compatible webhook (the monitoring guide): on failure AND on recovery, saying
who (service), when (UTC and JST), where (node), what, why and how to respond."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta, timezone

import httpx

from shop.protections import on

JST = timezone(timedelta(hours=9), "JST")


def alert_body(service: str, status: str, what: str, why: str, how: str, severity: str = "critical") -> dict:
    """A Slack webhook payload whose text and fields carry the 5W1H of the alert."""
    now = datetime.now(timezone.utc)
    where = os.environ.get("NODE_NAME") or socket.gethostname()
    fields = {
        "who": service,
        "when_utc": now.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "when_jst": now.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S JST"),
        "where": where,
        "what": what,
        "why": why,
        "how": how,
        "status": status,
        # Ungraded, every alert looks alike: the manual's triage by severity has nothing to go on.
        "severity": (severity if on("alert_severity") else "unknown") if status == "firing" else "info",
    }
    icon = ":rotating_light:" if status == "firing" else ":white_check_mark:"
    title = "FIRING" if status == "firing" else "RESOLVED"
    text = f"{icon} [{title}] {what} ({service} on {where})"
    return {
        "text": text,
        "blocks": [
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*: {v}"} for k, v in fields.items()]}
        ],
        "chaos": fields,  # the same fields, machine-readable, for the harness
    }


async def send(client: httpx.AsyncClient, service: str, status: str, what: str, why: str, how: str) -> bool:
    """Posts an alert; a sink that is down must never take the service down with it."""
    url = os.environ.get("ALERT_URL")
    if not url:
        return False
    try:
        response = await client.post(url, json=alert_body(service, status, what, why, how), timeout=2.0)
        return response.status_code < 300
    except httpx.HTTPError:
        return False
