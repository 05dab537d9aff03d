"""The alerts a system sent, read from the service that declares the `alerts` capability.

The capability's contract (services/chaos.yaml declares it for the shop's sink): the service keeps
the alerts it received in a bounded, sequenced list at `GET /alerts` (harness.feeds), each alert
with its receipt time `ts` and its fields under `chaos` (`status`: firing or resolved, and the
5W1H fields observe.ALERT_FIELDS), and its control endpoints take the run's control secret. A
topology without such a service has no alerts to show: the reports and `chaos status` say nothing
of alerts rather than fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from harness.feeds import Feeds
from harness.topology import Topology

CAPABILITY = "alerts"


def alerts_service(system: Topology) -> str | None:
    """The service of a topology that receives its alerts (the first that declares the
    capability), None when it has none."""
    return next(iter(system.with_capability(CAPABILITY)), None)


@dataclass
class AlertReader(Feeds):
    """What a system's alert receiver holds, after the mark."""

    FEEDS: ClassVar[dict[str, str]] = {"alerts": "/alerts"}

    @classmethod
    def service_in(cls, system: Topology) -> str | None:
        return alerts_service(system)

    def alerts(self, status: str | None = None) -> list[dict[str, Any]]:
        """Alerts received since the mark, optionally only those `firing` or `resolved`."""
        return [a for a in self.since_mark("alerts") if status is None or a.get("chaos", {}).get("status") == status]
