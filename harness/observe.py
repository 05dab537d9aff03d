"""What the reports read from a stack after the fact, and the report entry made of it.

A scenario (the pytest plugin) and a game day (harness.gameday) end the same way: the health
samples, the fault journal and the orders, with the alerts the alert receiver got and the services'
log events since the start, become one entry of a run's report. Observing must never change a
verdict, so a read that fails (alert receiver gone, engine hiccup) gives nothing and is noted under
``unobserved`` instead.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from harness import recovery
from harness.alerts import AlertReader
from harness.view import StackView

ALERT_FIELDS = ("status", "severity", "who", "where", "what", "when_utc", "when_jst")


def alert_row(alert: dict[str, Any]) -> dict[str, Any]:
    """An alert as the reports and `chaos status` keep it: its time and 5W1H fields."""
    return {"ts": alert["ts"], "chaos": {k: alert.get("chaos", {}).get(k) for k in ALERT_FIELDS}}


def alerts_since(stack: StackView, since: float) -> list[dict[str, Any]]:
    """The alerts the run's alert receiver (the service declaring the `alerts` capability)
    received since a time (of those it still holds), as the reports keep them; none when the
    system has no such service."""
    if AlertReader.service_in(stack.topology) is None:
        return []
    client = AlertReader.of(stack)
    try:
        return [alert_row(a) for a in client.alerts() if a.get("ts", 0) >= since]
    finally:
        client.close()


def log_events(stack: StackView, services: tuple[str, ...], since: float) -> list[dict[str, Any]]:
    return [e for name in services if name in stack.containers for e in stack.logs(name, since=since)]


def observed(what: str, read: Callable[[], list[dict[str, Any]]], problems: list[str]) -> list[dict[str, Any]]:
    """read(), or nothing with the failure noted in `problems` (deliberately broad: see above)."""
    try:
        return read()
    except Exception as exc:  # noqa: BLE001
        problems.append(f"{what}: {type(exc).__name__}: {exc}"[:200])
        return []


def entry(stack: StackView | None, *, window: dict[str, Any], probe: dict[str, Any],
          samples: Sequence[Mapping[str, Any]], journal: list[dict[str, Any]], ops: list[dict[str, Any]],
          services: tuple[str, ...], manual_line: str | None) -> dict[str, Any]:
    """The timeline part of a report entry: raw (samples, ops, journal) and what the reports
    derive from it (fault windows, TTD/TTR, health, impact), with alerts and log lines read from
    the stack since the window started (None: the stack is gone, nothing to read)."""
    # Imported here, not above: `chaos status --watch` reads alerts through this module, and
    # harness.report brings every report writer (html, incident records, runbooks) with it.
    from harness.report import json_report

    problems: list[str] = []
    if stack is None:
        problems.append("alerts and logs: the stack was gone")
        alerts, events = [], []
    else:
        alerts = observed("alerts", lambda: alerts_since(stack, window["started"]), problems)
        events = observed("logs", lambda: log_events(stack, services, window["started"]), problems)
    return {"window": window, "probe": probe, "unobserved": problems,
            **recovery.findings(journal, samples, alerts, ops), "alerts": alerts,
            "logs": recovery.log_summary(events, manual_line),
            json_report.RAW: {"samples": samples, "ops": ops, "journal": journal}}
