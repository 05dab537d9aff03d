"""The load part of a game day's section in report.html: the loads that ran, the ledger's verdict
on their orders, the service level over the whole load and while faults were active, and the
impact per fault window (the figures harness.gameday_load.findings gives, harness.load_figures's
shapes). A scenario's report has these as its key figures and its ledger guard; a game day's
gets them here, drawn, instead of as raw values in its own-figures table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.report.markup import escaped, table

KEYS = ("loads", "ledger", "slo", "impact_per_fault")  # the figures this part draws whole
SERVED = ("orders", "accepted", "failed", "unanswered", "slow", "accepted_share", "latency_p50_s", "latency_p99_s")
HEADER = ("orders", "accepted", "failed", "unanswered", "slow", "accepted", "p50", "p99")


def _share(value: Any) -> str:
    return "n/o" if value is None else f"{value * 100:.1f} %"


def _seconds(value: Any) -> str:
    return "n/o" if value is None else f"{value:.3f} s"


def _served(figures: Mapping[str, Any]) -> tuple[str, ...]:
    """One row of served(): counts, the accepted share, the answered orders' p50 and p99."""
    cells = []
    for key in SERVED:
        value = figures.get(key)
        cells.append(_share(value) if key == "accepted_share" else _seconds(value) if key.startswith("latency")
                     else escaped(value if value is not None else "n/o"))
    return tuple(cells)


def _ledger(ledger: Mapping[str, Any] | None) -> str:
    if ledger is None:
        return "<p>ledger: not judged (see the problems above).</p>"
    anomalies = {kind: n for kind, n in (ledger.get("anomalies") or {}).items() if n}
    verdict = ("no anomaly" if not anomalies
               else ", ".join(f"{escaped(kind)} × {escaped(n)}" for kind, n in anomalies.items()))
    return f"<p>ledger of the load's {escaped(ledger.get('orders', 0))} orders: <b>{verdict}</b>.</p>"


def section(figures: Mapping[str, Any] | None) -> str:
    """The load part, or nothing for a report without a load (every scenario, a day without one)."""
    if not figures or "slo" not in figures:
        return ""
    slo = figures["slo"]
    parts = ["<h3>load</h3>"]
    loads = [(escaped(f"{i + 1}"), escaped(load.get("users")), escaped(load.get("rate")),
              escaped(load.get("duration_s")), escaped((load.get("stats") or {}).get("requests", "n/o")),
              escaped((load.get("stats") or {}).get("failures", "n/o")))
             for i, load in enumerate(figures.get("loads") or [])]
    if loads:
        parts.append(table(("load", "users", "rate / s", "for (s)", "requests", "failures"), loads))
    parts.append(_ledger(figures.get("ledger")))
    parts.append(f"<p>service level (an order is slow above {escaped(slo.get('slow_s'))} s):</p>")
    parts.append(table(("", *HEADER), [("whole load", *_served(slo.get("whole_load") or {})),
                                       ("while faults were active", *_served(slo.get("during_faults") or {}))]))
    windows = [(escaped(w.get("fault")), escaped(w.get("target")), *_served(w))
               for w in figures.get("impact_per_fault") or []]
    if windows:
        parts.append("<p>impact per fault window (the orders placed inside it):</p>")
        parts.append(table(("fault", "target", *HEADER), windows))
    return "".join(parts)
