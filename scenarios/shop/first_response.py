"""The operations manual's first responses, performed during the incident as the on-call engineer
would, from the outside: triage the alerts, look at the vendor's status page, ask the system
which service is failing, run `df -h` on node-A, read a deployment's settings, count the mails
per order.

A check is proven when it points at the cause the scenario injected: the operator who follows
the manual is led to the right place. Each judgement here is pure (what the check saw in, one
line of what misled the operator out, or None) so the ways a check misleads are unit tested on
synthetic answers (tests/unit/test_first_response.py); a scenario records what it did and saw
with `performed`, which its report and incident record show as the first responses taken.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

SEVERITIES = ("critical", "error", "warning")  # the manual's triage order, the most severe first
FIVE_W1H = ("who", "when_utc", "where", "what", "why", "how")


def performed(record: MutableMapping[str, Any], step: str, did: str, saw: str) -> None:
    """Notes a first response in the scenario's figures: the manual's step, what was done, what was seen."""
    record.setdefault("first_responses", []).append({"step": step, "did": did, "saw": saw})


def triaged(alerts: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Firing alerts in the order the manual triages them: the most severe first, then the oldest."""
    firing = [a for a in alerts if a.get("chaos", {}).get("status") == "firing"]

    def rank(alert: Mapping[str, Any]) -> tuple[int, float]:
        severity = alert["chaos"].get("severity")
        return (SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES), alert.get("ts", 0.0))
    return sorted(firing, key=rank)


def triage_gap(alerts: Iterable[Mapping[str, Any]], cause: str) -> str | None:
    """What keeps triage from finding the cause: no firing alert, the first one of the triage
    order not about it, not graded by a severity the manual knows, or missing a 5W1H field."""
    ranked = triaged(alerts)
    if not ranked:
        return "no firing alert to triage"
    top = ranked[0]["chaos"]
    if top.get("severity") not in SEVERITIES:
        return f"the first alert has severity {top.get('severity')!r}, none of {', '.join(SEVERITIES)}"
    missing = [field for field in FIVE_W1H if not top.get(field)]
    if missing:
        return f"the first alert lacks {', '.join(missing)}"
    if cause not in str(top.get("what", "")):
        return f"the most severe alert is not about {cause!r}: {top.get('what')!r}"
    return None


def df_used_percent(output: str) -> float | None:
    """Use% of the one filesystem of `df -P MOUNT` output (POSIX format), or None."""
    rows = [line.split() for line in output.strip().splitlines()[1:]]
    for row in rows:
        if len(row) >= 5 and re.fullmatch(r"\d+%", row[4]):
            return float(row[4].rstrip("%"))
    return None


def df_gap(df_percent: float | None, monitored_percent: float | None, threshold: float,
           tolerance: float = 2.0) -> str | None:
    """What keeps `df -h` from confirming the disk alert: df unreadable, below the threshold,
    or far from what the monitor reported (it watched another disk, or a stale reading)."""
    if df_percent is None:
        return "df showed no usage for node-A's data volume"
    if df_percent < threshold:
        return f"df shows {df_percent:g} % used, below the {threshold:g} % alert"
    if monitored_percent is None or abs(df_percent - monitored_percent) > tolerance:
        return f"df shows {df_percent:g} % but the monitor reported {monitored_percent} %"
    return None


def weakest(system: Mapping[str, Any]) -> list[str]:
    """The services of GET /health/system at its lowest score: where the manual's check looks first."""
    services = system.get("services") or {}
    if not services:
        return []
    low = min(s.get("score", 0) for s in services.values())
    return sorted(name for name, s in services.items() if s.get("score", 0) == low)


def health_gap(system: Mapping[str, Any], cause: str) -> str | None:
    """What keeps the system's health from pointing at the failing service: it is not the
    weakest, or shares the bottom with a healthy one."""
    found = weakest(system)
    if found != [cause]:
        return f"the system's weakest service is {found or 'none'}, not {cause}"
    return None


def env_gap(env: Iterable[str], variable: str, refusal: str) -> str | None:
    """What keeps reading the deployment from confirming a refusal to start: the refusal does not
    name the variable, or the deployment has it set after all."""
    if variable not in refusal:
        return f"the refusal does not name {variable}"
    if any(entry.split("=", 1)[0] == variable for entry in env):
        return f"{variable} is set in the deployment; the refusal points elsewhere"
    return None


def mails_per_order(mails: Iterable[Mapping[str, Any]], orders: Iterable[str]) -> dict[str, int]:
    """Notifications counted per order, as the duplicate-notification incident asks (0 included)."""
    counted = Counter(m.get("order_id") for m in mails)
    return {order: counted[order] for order in orders}


def duplicates_gap(counts: Mapping[str, int]) -> str | None:
    """Orders not mailed exactly once."""
    wrong = {order: n for order, n in counts.items() if n != 1}
    return f"orders not mailed exactly once: {wrong}" if wrong else None


STATUS_QUIET = "none"  # a status page's indicator when nothing is reported


def status_gap(during: Mapping[str, Any], after: Mapping[str, Any]) -> str | None:
    """What keeps the vendor's status page from telling the operator to wait: no incident shown
    while the vendor failed, or one still shown after it recovered."""
    if during.get("indicator", STATUS_QUIET) == STATUS_QUIET:
        return f"the vendor's status page showed no incident during the outage: {dict(during)}"
    if after.get("indicator") != STATUS_QUIET:
        return f"the vendor's status page still shows an incident after recovery: {dict(after)}"
    return None
