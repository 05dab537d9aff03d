"""The broker monitor's judgement (the RabbitMQ-configuration incident: 5秒間隔での接続監視, キュー
状態の追跡, 異常検知時の自動アラート): every CHECK_EVERY_S the gateway asks the broker how many
consumers the order queue has, and this says when to page. A queue nobody consumes fills up
silently while orders are still accepted, so a consumer that is gone for NO_CONSUMER_FOR_S is
an alert (consumer_alert), and its return after that a resolved one (recovery_alerts).

Only the standard library here: the harness's unit tests load it.
"""

from __future__ import annotations

from dataclasses import dataclass

CHECK_EVERY_S = 5.0
# Checks in a row that find nobody before the page: the first and one CHECK_EVERY_S later, so the
# queue has had no consumer for 5 s at least (counted in checks, not clock readings, so a check
# that wakes a hair early can't hold the alert back a whole interval).
EMPTY_CHECKS = 2
NO_CONSUMER_FOR_S = CHECK_EVERY_S * (EMPTY_CHECKS - 1)

FIRING, RESOLVED = "firing", "resolved"


@dataclass
class QueueWatch:
    """What the monitor remembers between checks."""

    seen_consumer: bool = False  # start-up is no outage: watched once a consumer was seen
    empty_checks: int = 0
    firing: bool = False

    def observe(self, consumers: int | None, alerting: bool = True) -> str | None:
        """FIRING at the EMPTY_CHECKS-th check in a row that finds no consumer (once per outage,
        and only when `alerting`), RESOLVED at the first check that finds one again after that,
        else None. `consumers` None (the broker did not answer) changes nothing: a broker outage
        is the broker's alert, not the consumer's."""
        if consumers is None:
            return None
        if consumers > 0:
            self.seen_consumer, self.empty_checks = True, 0
            if self.firing:
                self.firing = False
                return RESOLVED
            return None
        if not self.seen_consumer:
            return None
        self.empty_checks += 1
        if alerting and not self.firing and self.empty_checks >= EMPTY_CHECKS:
            self.firing = True
            return FIRING
        return None
