"""The shop's protections: one named switch for each thing the operations manual prescribes.

Every place in the services that behaves differently with and without a protection asks
`on(name)` of this table, so one protection can be turned off on its own and the scenario
that guards it shown failing (the harness's mutation matrix). They are read at each use, so a
switch turned at run time (PUT /_control/protections, shop.switchboard) takes effect at once;
the exceptions say so in `at_start`. Only the standard library here: the harness reads this
table too, to validate names and to know which guard protects what.

At start: SUT_DISABLE=name[,name...] turns the named ones off; SUT_MODE=fragile turns every
one off (the shop as it was before the manual's fixes). An unknown name stops the service
with one line naming it: a typo must not leave a protection on silently.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass

EXIT_CONFIG = 78  # EX_CONFIG, as for a missing broker setting


@dataclass(frozen=True)
class Protection:
    """One prescription of the manual as the shop implements it."""

    name: str
    services: tuple[str, ...]
    what: str
    at_start: str = ""  # what only a restart changes (empty: the switch acts at once)


GATEWAY, INVENTORY, AUTH = "api_gateway", "inventory_service", "auth_service"
CALLERS = (GATEWAY, INVENTORY)

PROTECTIONS: dict[str, Protection] = {p.name: p for p in (
    Protection("retry", (GATEWAY,), "a failed vendor call is tried again, up to 4 attempts"),
    Protection("backoff", (GATEWAY,), "retries wait exponentially longer, with jitter"),
    Protection("breaker", (GATEWAY,), "a circuit breaker stops calling a vendor that keeps failing"),
    Protection("vendor_alert", (GATEWAY,), "an alert with its 5W1H when the payment breaker opens"),
    Protection("alert_severity", (GATEWAY,), "every firing alert is graded critical, error or warning, so the "
               "on-call engineer triages the most severe first"),
    Protection("fallback", (GATEWAY,), "an order the vendor can't charge now is accepted 202 PAYMENT_PENDING"),
    Protection("settlement", (GATEWAY,), "pending orders are charged once the vendor is back, exactly once"),
    Protection("idempotency", (GATEWAY,), "a client's Idempotency-Key makes every retry the same order"),
    Protection("vendor_idempotency", (GATEWAY,), "every vendor call carries the order id as its key, so "
               "the vendor replays a repeated charge instead of charging again"),
    Protection("retry_after", (GATEWAY,), "a vendor's 429 (or 503) with Retry-After holds every call to it, "
               "retries and settler alike, until that time has passed"),
    Protection("vendor_failover", (GATEWAY,), "while the primary vendor's breaker is open, new charges go to "
               "the second vendor, and to the primary again once it is back; an order whose charge may have "
               "reached one vendor is never sent to the other"),
    Protection("call_timeouts", (GATEWAY, INVENTORY), "calls to the vendor, peers and auth give up in time"),
    Protection("charged_order_sweep", (GATEWAY,), "PAYMENT_PENDING is written before the vendor is "
               "called, so an order whose outcome could not be written is finished by the settler"),
    Protection("retryable_refusal", (GATEWAY,), "a transient inventory refusal leaves the order for the "
               "client's retry to resume (and a NEW order nobody resumes is failed, its stock released)"),
    Protection("settler_give_up", (GATEWAY,), "an order the vendor keeps refusing is failed after 4 "
               "tries, with an alert, instead of being tried for ever"),
    Protection("db_timeouts", CALLERS + (AUTH,), "every database operation has a deadline; past it 503 "
               "with Retry-After and the manual's line", at_start="connect and statement timeouts"),
    Protection("durable_commit", CALLERS + (AUTH,), "a write is acknowledged only once its commit is in the "
               "database's write-ahead log, so a database crash loses no accepted order"),
    Protection("pool_timeout", CALLERS + (AUTH,), "a request that finds every pooled database connection "
               "busy waits 1 s at most, then 503 with Retry-After and the manual's line"),
    Protection("pool_shrink", CALLERS + (AUTH,), "the connections a burst opened are closed again once idle "
               "for 1 s, so the pool goes back to its size before the burst", at_start="the pool's idle limit"),
    Protection("db_watch_alert", (GATEWAY,), "an alert when the database stops answering for 2 s"),
    Protection("health_checks", CALLERS, "/health probes the database live, and the gateway's shows its broker "
               "connection as it is now, instead of what start-up found"),
    Protection("recovery_alerts", (GATEWAY,), "a resolved alert when the vendor, the database, the disk or "
               "the order queue's consumer is back"),
    Protection("outbox", (GATEWAY,), "order events are written in the order's transaction and relayed"),
    Protection("publisher_confirms", (GATEWAY,), "an event counts as published only once the broker confirmed it"),
    Protection("broker_reconnect", CALLERS, "a lost broker connection is re-established by itself"),
    Protection("config_validation", CALLERS, "a missing or wrong RABBITMQ_* setting stops the service, "
               "naming it", at_start="the whole check (it runs once, at start)"),
    Protection("disk_monitor", (GATEWAY,), "node-A's disk is watched and alerted on at 90 %"),
    Protection("log_rotation", (GATEWAY,), "node-A's logs are rotated at 1 MiB, the rotated ones gzipped, "
               "4 kept, so a fast-growing log never fills the disk"),
    Protection("write_shedding", (GATEWAY,), "while the disk is critically low, writes get 503 and reads go on"),
    Protection("traffic_shaping", (GATEWAY,), "above a configured rate (a token bucket) order writes are "
               "shed with 429 and Retry-After, so the orders admitted are served in time"),
    Protection("auth_fail_closed", CALLERS, "when auth can't answer, requests are refused (503), never let through"),
    Protection("audience_check", (AUTH,), "a token for another audience is rejected"),
    Protection("expiry_check", (AUTH,), "an expired or not-yet-valid token is rejected"),
    Protection("leeway", (AUTH,), "a few seconds of clock drift between services is tolerated"),
    Protection("null_quarantine", (INVENTORY,), "a product row with a NULL column is quarantined, the rest served"),
    Protection("schema_validation", (INVENTORY,), "order events are validated against their schema first"),
    Protection("dlq", (INVENTORY,), "what can't be processed goes to the dead-letter queue, with its reason"),
    Protection("dedup", (INVENTORY,), "an event's message id is claimed with its effect, and its paid mail once "
               "per order: a redelivery changes nothing and mails nobody twice"),
    Protection("mail_after_commit", (INVENTORY,), "the paid mail is claimed in the transaction and sent "
               "after the commit, once"),
    Protection("consumer_isolation", (INVENTORY,), "one message the consumer can't handle never stops it"),
    Protection("consumer_supervisor", (INVENTORY,), "a consumer that dies or wedges is restarted by its "
               "supervisor within seconds, each restart counted in /health"),
    Protection("consumer_alert", (GATEWAY,), "the broker monitor alerts when the order queue has had no "
               "consumer for 5 s (checked every 5 s)"),
)}


class Switches:
    """Which protections are off in this process; every check reads it at the time of use."""

    def __init__(self, disabled: Iterable[str] = ()) -> None:
        self.at_start = frozenset(checked(disabled))
        self.disabled: frozenset[str] = self.at_start

    def on(self, name: str) -> bool:
        if name not in PROTECTIONS:  # a misspelt check would be a protection nobody can switch
            raise KeyError(f"unknown protection {name!r}")
        return name not in self.disabled

    def set(self, disabled: Iterable[str]) -> None:
        self.disabled = frozenset(checked(disabled))


def checked(names: Iterable[str]) -> list[str]:
    """The names, each one a protection of the table (ValueError naming the first that is not)."""
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in PROTECTIONS]
    if unknown:
        raise ValueError(f"unknown protection {unknown[0]!r}: known are {', '.join(PROTECTIONS)}")
    return names


def from_env(environ: dict[str, str] | os._Environ = os.environ) -> Switches:
    """SUT_MODE=fragile: all off; else SUT_DISABLE's list. An unknown name stops the service."""
    if environ.get("SUT_MODE", "resilient") == "fragile":
        return Switches(PROTECTIONS)
    try:
        return Switches(environ.get("SUT_DISABLE", "").split(","))
    except ValueError as exc:
        print(f"configuration error: SUT_DISABLE: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CONFIG) from None


switches = from_env()


def on(name: str) -> bool:
    """Whether the protection `name` is on in this process now."""
    return switches.on(name)


def describe() -> dict[str, object]:
    """What /_control/protections and /health report: off now, and off since start."""
    return {"disabled": sorted(switches.disabled), "disabled_at_start": sorted(switches.at_start)}
