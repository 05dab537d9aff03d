"""A synthetic scenario timeline shared by the report tests (imported by them), checked here.

t0 + 2.0 s: http.status injected on payment_gateway; health turns orange at 2.3 s; a firing
alert arrives at 2.2 s; healed at 6.0 s; green at 7.0 s, a one-sample orange blip at 7.6 s,
green again from 7.7 s on; orders every 0.25 s from 1 s to 9 s.
"""

from __future__ import annotations

import re

from harness import observe, recovery
from harness.report.json_report import RAW

T0 = 1_800_000_000.0
INJECT, HEAL = T0 + 2.0, T0 + 6.0


def level_at(t: float) -> str:
    """Health level at t seconds after T0 in the synthetic run."""
    if 2.3 <= t < 7.0 or 7.55 <= t < 7.65:
        return "orange"
    return "green"


def samples(until: float = 12.0) -> list[dict]:
    out = []
    for i in range(int(until * 10)):
        t = round(i * 0.1, 3)
        level = level_at(t)
        score = 100 if level == "green" else 60
        out.append({"ts": T0 + t, "score": score, "level": level, "breaker": "opened" if level != "green" else "closed",
                    "disk_used_percent": 41.5, "ok": True, "error": None,
                    "services": {"api_gateway": score, "payment_gateway": 100}})
    return out


def journal() -> list[dict]:
    fault = {"fault": "http.status", "target": "payment_gateway", "params": {"status": 503}}
    return [{"ts": INJECT, "action": "inject", **fault}, {"ts": INJECT + 0.05, "action": "landed", **fault},
            {"ts": HEAL, "action": "heal", **fault}]


def alerts() -> list[dict]:
    """As the reports keep them (observe.alert_row: every 5W1H field, null when the sink had none)."""
    received = [{"ts": T0 + 2.2, "chaos": {"status": "firing", "who": "api_gateway", "what": "Payment gateway API "
                                            "returned 503 Service Unavailable.", "severity": "critical"}},
                {"ts": T0 + 8.0, "chaos": {"status": "resolved", "who": "api_gateway",
                                           "what": "payment vendor recovered"}}]
    return [observe.alert_row(alert) for alert in received]


def ops() -> list[dict]:
    out = []
    for i in range(33):
        t = 1.0 + 0.25 * i
        during = 2.0 <= t <= 7.7
        outcome, status = ("unknown", None) if i == 12 else ("fail", 503) if i == 10 else \
            ("ok", 202 if during else 201)
        latency = 0.9 if during else 0.05
        out.append({"index": i, "kind": "place_order", "invoked": T0 + t, "completed": T0 + t + latency,
                    "latency_s": latency, "outcome": outcome, "status": status,
                    "order_id": f"o{i}" if outcome == "ok" else None, "order_status": None})
    return out


# payment_outage's guards in the order they run, with the prescription each proves.
GUARDS = (("steady_state_before", None), ("steady_state_after", None), ("fallback_202", "fallback"),
          ("latency_budget", None), ("log_line", None), ("alert", "alert_on_recovery"),
          ("recovery_alert", "alert_on_recovery"), ("backoff", "retry_with_backoff"),
          ("breaker_opens", "circuit_breaker"),
          ("recovery", "exactly_once_settlement"), ("exactly_once", "exactly_once_settlement"), ("ledger", None))


def guards_ran(failed_at: str | None) -> list[dict]:
    """The guard records of a run that failed at the guard `failed_at` (None: every guard held;
    a tag that is no guard: it failed before any guard ran)."""
    tags = [tag for tag, _ in GUARDS]
    if failed_at is None:
        return [{"tag": tag, "prescription": p, "held": True} for tag, p in GUARDS]
    if failed_at not in tags:
        return []
    stop = tags.index(failed_at)
    return [{"tag": tag, "prescription": p, "held": i < stop} for i, (tag, p) in enumerate(GUARDS[:stop + 1])]


def scenario(name: str = "payment_outage", outcome: str = "passed", reason: str | None = None) -> dict:
    """A scenario entry as the plugin builds it (harness.report.schema), raw timeline included;
    its guards ran until the one its reason names."""
    s, j, a, o = samples(), journal(), alerts(), ops()
    tag = re.search(r"\[([a-z0-9_]+)\]", reason or "")
    failed_at = None if outcome == "passed" else tag.group(1) if tag else ""
    return {"name": name, "scenario": name.partition("[")[0], "mutant": None,
            "protects": {"fallback_202": ["fallback"], "backoff": ["retry", "backoff"]}, "preconditions": ["log_line"],
            "nodeid": f"scenarios/test_{name}.py::test_{name}", "root_cause": "payment_gateway_outage",
            "runbook": ["fallback", "alert_on_recovery", "retry_with_backoff", "circuit_breaker",
                        "exactly_once_settlement"],
            "guards": guards_ran(failed_at),
            "outcome": outcome, "duration_s": 11.9, "reason": reason, "figures": {"recovery_s": 1.2}, "guardrail": None,
            "recovery_actions": [],
            "window": {"started": T0, "finished": T0 + 12.0},
            "probe": {"samples": len(s), "errors": 0, "hz": 10.0, "cpu_s": 0.05, "cpu_percent": 0.4, "wall_s": 12.0},
            "unobserved": [], **recovery.findings(j, s, a, o), "alerts": a,
            "logs": recovery.log_summary(
                [{"ts": T0 + 2.1, "service": "api_gateway", "level": "error",
                  "event": "Payment gateway API returned 503 Service Unavailable."}],
                "Payment gateway API returned 503 Service Unavailable."),
            RAW: {"samples": s, "ops": o, "journal": j}}


def verdict_only(name: str = "payment_outage", outcome: str = "passed") -> dict:
    """The entry of a scenario that ended before its probe ran (setup failed): no probe findings."""
    return {"name": name, "scenario": name, "mutant": None, "protects": {}, "preconditions": [],
            "nodeid": f"scenarios/test_{name}.py::test_{name}", "root_cause": None, "runbook": [], "guards": [],
            "outcome": outcome, "duration_s": 0.5, "reason": None if outcome == "passed" else "setup failed",
            "figures": {}, "guardrail": None, "recovery_actions": []}


def run_of(run_id: str) -> dict:
    """A run block of a containers session with the resilient shop."""
    return {**RUN, "run_id": run_id}


RUN = {"run_id": "20270115T080000-abcdef", "started": T0 - 5, "finished": T0 + 20, "sut_mode": "resilient",
       "disabled": [], "stack": "containers", "exit_status": 0}


def test_the_synthetic_scenario_is_consistent():
    s = scenario()
    assert s["faults"] == [{"fault": "http.status", "target": "payment_gateway", "params": {"status": 503},
                            "start": INJECT, "end": HEAL}]
    assert len(s[RAW]["samples"]) == 120 and s["health"]["levels"]["orange"] == 48
