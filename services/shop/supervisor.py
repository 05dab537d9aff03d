"""The consumer's supervisor (consumer_supervisor; the RabbitMQ-configuration incident's "worker
auto-recovery"): a consumer task that died, or that holds messages without settling any for too
long (wedged), is restarted, and every restart is counted, as succeeded once the new consumer is
attached to the queue or failed when it dies or does not attach in time. /health shows the
counts and their success rate, the manual's 復旧成功率.

Turned off, the supervisor only watches: a dead consumer stays dead (the incident: nothing is
processed until someone restarts the service by hand).

Only the standard library here: the judgements are pure functions the harness's unit tests load.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

CHECK_EVERY_S = 0.5
# A restart succeeded when the new consumer is attached within this; else it counts as failed
# and the consumer is restarted again.
ATTACH_WITHIN_S = 10.0
# Messages held without any settled for this long: wedged. Longer than the longest legitimate
# hold of a message (inventory_service: a paid mail's "sent" mark retried for 60 s while the
# database is away, after a 5 s SMTP timeout), so a slow database is never taken for a wedge.
WEDGED_AFTER_S = 90.0

DEAD, WEDGED = "dead", "wedged"


def diagnosis(alive: bool, in_flight: int, since_progress_s: float,
              wedged_after_s: float = WEDGED_AFTER_S) -> str | None:
    """Why a consumer needs a restart, or None when it does not: dead (its task ended), wedged
    (it holds messages and has settled none for wedged_after_s). Idle with nothing in flight is
    healthy however long it lasts."""
    if not alive:
        return DEAD
    if in_flight > 0 and since_progress_s >= wedged_after_s:
        return WEDGED
    return None


@dataclass
class Recoveries:
    """The restarts and how they ended; `pending_since` is the restart still being judged."""

    restarts: int = 0
    succeeded: int = 0
    failed: int = 0
    pending_since: float | None = None

    def judge(self, now: float, alive: bool, attached: bool, attach_within_s: float = ATTACH_WITHIN_S) -> str | None:
        """Ends the pending restart as "succeeded" (attached) or "failed" (died, or not attached
        in time), counting it; None while it is still undecided or none is pending."""
        if self.pending_since is None:
            return None
        if attached and alive:
            outcome = "succeeded"
        elif not alive or now - self.pending_since >= attach_within_s:
            outcome = "failed"
        else:
            return None
        self.pending_since = None
        setattr(self, outcome, getattr(self, outcome) + 1)
        return outcome

    def describe(self) -> dict[str, Any]:
        """What /health shows: the counts and the success rate (None before any restart ended)."""
        ended = self.succeeded + self.failed
        return {"restarts": self.restarts, "succeeded": self.succeeded, "failed": self.failed,
                "success_rate": round(self.succeeded / ended, 3) if ended else None}


class Progress:
    """What the consumer reports of itself: messages taken and not yet settled, and when it last
    settled one (or started)."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.last_progress = time.monotonic()

    def started(self) -> None:
        self.in_flight, self.last_progress = 0, time.monotonic()

    def taken(self) -> None:
        self.in_flight += 1

    def settled(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self.last_progress = time.monotonic()

    def since_progress_s(self) -> float:
        return time.monotonic() - self.last_progress


class Supervisor:
    """Keeps one consumer task: `start` makes a new one, `attached` says whether it is on the
    queue, `enabled` whether the protection is on now (asked at every check)."""

    def __init__(self, start: Callable[[], Awaitable[None]], attached: Callable[[], bool],
                 enabled: Callable[[], bool], log: Any) -> None:
        self.start, self.attached, self.enabled, self.log = start, attached, enabled, log
        self.progress = Progress()
        self.recoveries = Recoveries()
        self.task: asyncio.Task[None] | None = None

    def alive(self) -> bool:
        return self.task is not None and not self.task.done()

    def launch(self) -> None:
        """A new consumer task (the first at start, or a restart)."""
        self.progress.started()
        self.task = asyncio.create_task(self.start())

    def kill(self) -> bool:
        """Ends the consumer task (the consumer-kill fault's way in); False when none was alive."""
        if not self.alive():
            return False
        assert self.task is not None
        self.task.cancel()
        return True

    async def run(self) -> None:
        """Checks every CHECK_EVERY_S; bounded per check, it runs for the service's life."""
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            self.check()

    def check(self) -> None:
        outcome = self.recoveries.judge(time.monotonic(), self.alive(), self.attached())
        if outcome:
            self.log.info("consumer_restart_" + outcome, **self.recoveries.describe())
        if self.recoveries.pending_since is not None:
            return
        why = diagnosis(self.alive(), self.progress.in_flight, self.progress.since_progress_s())
        if why is None:
            return
        if not self.enabled():
            return  # nobody restarts it: it stays as it is
        self.kill()
        self.recoveries.restarts += 1
        self.recoveries.pending_since = time.monotonic()
        self.log.warning("consumer_restarted", reason=why, restarts=self.recoveries.restarts)
        self.launch()
