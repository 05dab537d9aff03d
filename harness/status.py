"""What a person running a game day sees: endpoints, health, active faults, alerts, trips.

`chaos up` prints ``endpoints``; `chaos status` prints ``render(snapshot(...))`` once, as JSON,
or redrawn every second with ``--watch``. Reading is bounded (one health request with a short
timeout, two small requests to the alert receiver) and never fails the command: what can't be read shows as such.
Alerts are read after a cursor (AlertTail): --watch keeps it between redraws, so each redraw
reads only the alerts that are new, and holds the newest few, however long the game day.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, TypeVar

from harness import observe, protections, run_ids, state
from harness.alerts import AlertReader
from harness.errors import HarnessError
from harness.escape import terminal
from harness.view import StackView

View = TypeVar("View", bound=StackView)
# How an operator writes each service's address, by its readiness protocol (the credentials and
# database are the ones its topology gives the readiness check).
SCHEMES = {"sql": "postgresql://{user}:{password}@{host}:{port}/{database}",
           "amqp": "amqp://{user}:{password}@{host}:{port}/", "http": "http://{host}:{port}", "tcp": "{host}:{port}"}
RECENT_ALERTS = 5
RECENT_TRIPS = 3


def endpoints(stack: StackView) -> dict[str, str]:
    """Where each part of a running stack is reached from this machine (all on 127.0.0.1)."""
    found = {"edge (clients, through Toxiproxy)": stack.edge_url} if stack.topology.entry else {}
    for name, service in stack.topology.services.items():
        point = stack.endpoint(name)
        found[name] = SCHEMES[service.readiness].format(**service.readiness_params, host=point.host, port=point.port)
    return found


def wait_green(find: Callable[[], View], timeout_s: float, what: str) -> View:
    """The stack `find()` gives, once its system health is green: the steady state every
    scenario and game day starts from (a stack that just answered is orange for a moment while
    its consumers connect). Bounded; progress every 10 s on stderr; HarnessError on timeout.
    `find` is called on every try, so a stack whose ports are not published yet can appear."""
    from harness.probes import health_of

    began = said = time.monotonic()
    while True:
        try:
            stack = find()
            with health_of(stack, timeout_s=2.0) as health:
                sample = health.sample()
            if sample["ok"] and sample["level"] == "green":
                return stack
        except HarnessError:  # not attachable yet (a compose stack still starting)
            pass
        if time.monotonic() - began > timeout_s:
            raise HarnessError(f"{what} is not green after {timeout_s:.0f}s: `chaos status` shows why")
        if time.monotonic() - said > 10:
            print(f"[stack] waiting for {what} to be green", file=sys.stderr, flush=True)
            said = time.monotonic()
        time.sleep(0.25)


def _health(stack: StackView) -> dict[str, Any]:
    from harness.probes import health_of

    with health_of(stack, timeout_s=1.0) as health:
        return dict(health.sample())


def _fault_rows(now: float) -> list[dict[str, Any]]:
    return [{"id": r.id, "fault": r.fault, "target": r.target, "run_id": r.run_id, "params": r.params,
             "age_s": round(now - r.injected_at, 1),
             "left_s": None if r.expires_at is None else round(r.expires_at - now, 1)}
            for r in state.records()]


@dataclass
class AlertTail:
    """The newest RECENT_ALERTS alerts of one run, and the alert receiver's cursor after them: a redraw
    reads only what came after it. Another run starts it over; a restarted receiver (its numbers
    below the cursor) is read from its newest again."""

    run_id: str | None = None
    cursor: int | None = None
    alerts: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_ALERTS))

    def read(self, stack: StackView) -> list[dict[str, Any]]:
        if stack.run_id != self.run_id:
            self.run_id, self.cursor = stack.run_id, None
            self.alerts.clear()
        client = AlertReader.of(stack)
        try:
            new, self.cursor = client.recent("alerts", self.cursor, RECENT_ALERTS)
        finally:
            client.close()
        self.alerts.extend(observe.alert_row(a) for a in new)
        return list(self.alerts)


def snapshot(stack: StackView | None, tail: AlertTail | None = None) -> dict[str, Any]:
    """Everything `chaos status` shows, as plain JSON, with every endpoint `chaos up` prints
    (a script driving a game day reads them here). Without a stack: the faults only. `tail`:
    the alerts read so far (--watch passes the same one to every redraw)."""
    now = time.time()
    document: dict[str, Any] = {"ts": now, "run": None, "endpoints": {}, "health": None, "services": [], "alerts": [],
                                "faults": _fault_rows(now), "guardrail_trips": [], "unreadable": []}
    if stack is None:
        return document
    document["run"] = {"run_id": stack.run_id, "owner": stack.owner, "system": stack.topology.name,
                       "sut_mode": stack.sut_mode, "protections_off": protections.off_anywhere(stack)}
    document["endpoints"] = endpoints(stack)  # what `chaos up` printed, for scripts driving a game day
    health = _health(stack)
    document["health"] = {k: health[k] for k in ("score", "level", "breaker", "disk_used_percent", "error")}
    scores = health.get("services") or {}
    for name in stack.topology.services:
        container = stack.containers.get(name)
        found = container.status if container is not None else "missing"
        document["services"].append({"name": name, "state": found, "score": scores.get(name)})
    if AlertReader.service_in(stack.topology) is not None:  # a system without an alert receiver has none to show
        tail = tail or AlertTail()
        document["alerts"] = observe.observed("alerts", lambda: tail.read(stack), document["unreadable"])
    journal = state.journal(stack.run_id) if run_ids.is_run_id(stack.run_id) else []
    trips = [e for e in journal if e.get("action") == "abort"]
    document["guardrail_trips"] = trips[-RECENT_TRIPS:]
    return document


def _clock(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, timezone.utc).strftime("%H:%M:%S")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{max(value, 0):.0f}s"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    return ["  ".join(f"{cell!s:<{w}}" for cell, w in zip(row, widths)).rstrip() for row in (header, *rows)]


# What the plain render and the live table (harness.status_live) both show, built once here:
# the two differ in layout only, never in which services, faults or alerts they list.
FAULT_COLUMNS = ("RECORD", "FAULT", "TARGET", "RUN", "AGE", "LEFT")


def headline(document: dict[str, Any]) -> list[str]:
    """The lines above the tables: the time, the run and the system's health."""
    lines = [f"chaos status  {_clock(document['ts'])} UTC"]
    run = document["run"]
    if run is None:
        return lines + ["no stack is running (`chaos up` starts one)"]
    health = document["health"]
    score = "-" if health["score"] is None else str(health["score"])
    lines.append(f"run {run['run_id']} ({run['sut_mode']} {run.get('system', 'shop')}, owner {run['owner']})")
    if run.get("protections_off"):
        lines.append(f"protections off: {', '.join(run['protections_off'])}")
    lines.append(f"system health {score} {health['level']}"
                 + (f"  breaker {health['breaker']}" if health.get("breaker") else "")
                 + (f"  disk {health['disk_used_percent']:.0f}%" if health.get("disk_used_percent") is not None else "")
                 + (f"  ({health['error']})" if health.get("error") else ""))
    return lines


def service_rows(document: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """One row per service of the snapshot: name, container state, health score, its level."""
    from harness.recovery import level_of

    return [(s["name"], s["state"], "-" if s["score"] is None else str(s["score"]),
             "-" if s["score"] is None else level_of(s["score"])) for s in document["services"]]


def fault_rows(document: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per active fault on disk (FAULT_COLUMNS), whichever run injected it."""
    return [(f["id"], f["fault"], f["target"], f["run_id"], _seconds(f["age_s"]), _seconds(f["left_s"]))
            for f in document["faults"]]


def alert_lines(document: dict[str, Any]) -> list[str]:
    """The recent alerts, one line each, oldest first."""
    return [f"{_clock(a['ts'])}  {a['chaos']['status'] or '-':<8} {a['chaos']['where'] or '-'}: "
            f"{a['chaos']['what'] or '-'}" for a in document["alerts"]]


def notice_lines(document: dict[str, Any]) -> list[str]:
    """The guardrail trips, then what could not be read."""
    lines = [f"GUARDRAIL TRIPPED {_clock(trip['ts'])}: {trip['condition']} (observed {trip['observed']}), "
             f"healed {len(trip.get('healed', []))} fault(s)" for trip in document["guardrail_trips"]]
    return lines + [f"(could not read {what})" for what in document["unreadable"]]


def render(document: dict[str, Any]) -> str:
    """The snapshot as the terminal table a person reads (control characters in it shown as
    escapes: an ESC in an alert text must not drive the reader's terminal)."""
    lines = headline(document)
    run = document["run"]
    if run is not None:
        lines.append("")
        lines += _table(("SERVICE", "STATE", "HEALTH"),
                        [(name, state, score if level == "-" else f"{score} {level}")
                         for name, state, score, level in service_rows(document)])
    lines.append("")
    faults = fault_rows(document)
    lines.append(f"ACTIVE FAULTS ({len(faults)})" if faults else "ACTIVE FAULTS: none")
    if faults:
        lines += _table(FAULT_COLUMNS, faults)
    if run is not None:
        lines.append("")
        alerts = document["alerts"]
        lines.append("RECENT ALERTS" if alerts else "RECENT ALERTS: none")
        lines += [f"  {line}" for line in alert_lines(document)] + notice_lines(document)
    return "\n".join(terminal(line) for line in lines)  # alert, fault and error text came from the system
