"""TTD/TTR and the other pure recovery judgements the reports stand on."""

from __future__ import annotations

import pytest

from harness import recovery
from tests.unit.test_report_data import HEAL, INJECT, T0, alerts, journal, ops, samples

SCORES = {"green": 100, "yellow": 80, "orange": 50, "red": 0, "unreachable": None}  # a score per level


def _sample(t: float, level: str) -> dict:
    return {"ts": T0 + t, "score": SCORES[level],
            "level": level, "breaker": None, "disk_used_percent": None, "ok": level != "unreachable",
            "error": None, "services": {}}


def test_ttd_is_the_first_firing_alert_when_it_beats_the_probe():
    assert recovery.time_to_detect(journal(), samples(), alerts()) == pytest.approx(0.2)
    assert recovery.detected_at(journal(), samples(), alerts()) == pytest.approx(T0 + 2.2)


def test_ttd_from_samples_alone_and_resolved_alerts_do_not_count():
    resolved_only = [a for a in alerts() if a["chaos"]["status"] == "resolved"]
    assert recovery.time_to_detect(journal(), samples(), resolved_only) == pytest.approx(0.3)


def test_an_unanswered_probe_counts_as_a_detection():
    seen = [_sample(1.0, "green"), _sample(2.4, "unreachable"), _sample(2.5, "red")]
    assert recovery.time_to_detect(journal(), seen) == pytest.approx(0.4)


def test_a_system_degraded_before_the_fault_must_get_worse_to_count_as_detected():
    seen = [_sample(1.9, "orange"), _sample(2.1, "orange"), _sample(2.2, "yellow"), _sample(2.4, "red")]
    assert recovery.time_to_detect(journal(), seen) == pytest.approx(0.4)
    assert recovery.time_to_detect(journal(), seen[:3]) is None
    assert recovery.baseline_score(seen, INJECT) == 50 and recovery.baseline_score([], INJECT) == 100


def test_a_fault_showing_while_it_is_applied_is_detected_at_once():
    # recorded (rabbitmq_outage): green, then orange 2.1 s before the journal's inject entry,
    # because stopping the broker took that long; orange is the fault, not an older degradation
    seen = [_sample(-0.4, "green"), _sample(-0.1, "orange"), _sample(2.05, "orange"), _sample(4.0, "green")]
    assert recovery.baseline_score(seen, INJECT) == 100
    assert recovery.time_to_detect(journal(), seen) == pytest.approx(0.05)


def test_ttd_ignores_signs_before_the_injection_and_is_none_when_nothing_showed():
    before = [_sample(1.0, "red"), _sample(3.0, "green")]
    assert recovery.time_to_detect(journal(), before) is None
    assert recovery.time_to_detect([], samples(), alerts()) is None


def test_ttr_waits_for_green_that_stays_green_for_a_second():
    # green at 7.0 is broken by the orange blip at 7.6; green from 7.7 holds through 8.7
    assert recovery.recovered_at(journal(), samples()) == pytest.approx(T0 + 7.7)
    assert recovery.time_to_recover(journal(), samples()) == pytest.approx(1.7)


def test_ttr_is_none_when_stable_green_was_not_observed():
    short = [s for s in samples() if s["ts"] < T0 + 8.5]  # green from 7.7 but seen only for 0.7 s
    assert recovery.time_to_recover(journal(), short) is None
    assert recovery.time_to_recover(journal()[:2], samples()) is None  # never healed
    assert recovery.time_to_recover(journal(), samples(), stable_s=0.3) == pytest.approx(1.0)


def test_fault_windows_and_active_faults():
    entries = journal() + [{"ts": T0 + 9, "action": "inject", "fault": "network.latency", "target": "postgres",
                            "params": {"latency_ms": 6000}}]
    windows = recovery.fault_windows(entries)
    assert [(w["fault"], w["target"], w["end"]) for w in windows] == [
        ("http.status", "payment_gateway", HEAL), ("network.latency", "postgres", None)]
    assert recovery.active_faults(INJECT + 1, windows) == ["http.status"]
    assert recovery.active_faults(HEAL, windows) == []
    assert recovery.active_faults(T0 + 100, windows) == ["network.latency"]


def test_order_impact_counts_the_orders_of_the_fault_until_recovery():
    impact = recovery.order_impact(ops(), INJECT, T0 + 7.7)
    during = impact["during_fault"]
    assert during["orders"] == 23 and (during["accepted"], during["failed"], during["unknown"]) == (21, 1, 1)
    assert during["statuses"] == {"0": 1, "202": 21, "503": 1}
    assert impact["whole_scenario"]["orders"] == 33
    assert recovery.order_impact(ops(), None, None)["during_fault"]["orders"] == 0


def test_error_rate_bins_failed_and_unanswered_orders():
    rates = {round(start - T0, 3): (n, share) for start, n, share in recovery.error_rate(ops(), 1.0)}
    assert rates[3.0] == (4, 0.25) and rates[4.0] == (4, 0.25) and rates[1.0] == (4, 0.0)
    shifted = {round(start - T0, 3): n for start, n, _ in recovery.error_rate(ops(), 1.0, T0 + 0.5)}
    assert shifted[0.5] == 2 and shifted[1.5] == 4  # bins from the origin: [0.5, 1.5), [1.5, 2.5), ...


def test_health_summary_names_the_worst_moment_and_services_below_green():
    worst = recovery.health_summary(samples())["worst"]
    assert worst == {"ts": pytest.approx(T0 + 2.3), "score": 60, "level": "orange"}
    summary = recovery.health_summary(samples() + [_sample(11.5, "unreachable")])
    assert summary["worst"] == {"ts": T0 + 11.5, "score": None, "level": "unreachable"}  # no answer is the worst
    assert summary["services_below_green"] == {"api_gateway": 60}
    assert summary["errors"] == 1 and summary["breaker_states"] == ["closed", "opened"]


def test_log_summary_counts_the_manual_line_and_the_loudest_events():
    line = "Disk space is critically low on server node-A."
    events = [{"ts": T0 + 3, "service": "api_gateway", "level": "error", "event": line},
              {"ts": T0 + 2, "service": "api_gateway", "level": "error", "event": line},
              {"ts": T0 + 4, "service": "api_gateway", "level": "info", "event": "order_paid"}]
    summary = recovery.log_summary(events, line)
    assert summary["manual_count"] == 2 and summary["manual_first"] == T0 + 2
    assert summary["loudest"] == [{"service": "api_gateway", "event": line, "count": 2}]


def test_health_summary_covers_the_fault_period_and_names_the_start():
    seen = [_sample(1.0, "orange"), _sample(2.5, "red"), _sample(4.0, "green"), _sample(9.0, "red")]
    summary = recovery.health_summary(seen, INJECT, T0 + 5.0)
    assert summary["samples"] == 2 and summary["levels"] == {"red": 1, "green": 1}
    assert summary["at_start"] == {"ts": T0 + 1.0, "score": 50, "level": "orange"}
    assert recovery.health_summary([])["at_start"] is None and recovery.health_summary(seen)["samples"] == 4


# Recorded: a real payment_outage run on the resilient shop: the time of every probe sample in
# seconds since the injection, and the level runs it saw. The shop was orange before the fault
# (inventory_service still at 50 just after the stack started), red from the first sample after
# the injection (the vendor's own health fails), yellow after the heal while the breaker stayed
# open, then green.
RECORDED_HEAL_S = 3.639
RECORDED_TIMES = (
    -0.17, -0.081, 0.015, 0.113, 0.213, 0.313, 0.413, 0.514, 0.614, 0.715, 0.813, 0.912, 1.014, 1.12, 1.214, 1.314,
    1.413, 1.514, 1.619, 1.714, 1.815, 1.912, 2.016, 2.116, 2.214, 2.313, 2.413, 2.517, 2.618, 2.714, 2.813, 2.913,
    3.013, 3.116, 3.213, 3.314, 3.413, 3.513, 3.617, 3.71, 3.813, 3.922, 4.017, 4.113, 4.213, 4.313, 4.414, 4.514,
    4.614, 4.712, 4.811, 4.913, 5.012, 5.112, 5.278, 5.314, 5.413, 5.515, 5.614, 5.713, 5.813, 5.913, 6.014, 6.114,
    6.213)
RECORDED_LEVELS = ((0.015, "orange"), (3.71, "red"), (5.112, "yellow"), (float("inf"), "green"))  # (until, level)
RECORDED = [(t, next(level for until, level in RECORDED_LEVELS if t < until)) for t in RECORDED_TIMES]


def test_ttd_and_ttr_on_a_recorded_timeline():
    entries = [{"ts": INJECT, "action": "inject", "fault": "http.status", "target": "payment_gateway", "params": {}},
               {"ts": INJECT + RECORDED_HEAL_S, "action": "heal", "fault": "http.status", "target": "payment_gateway",
                "params": {}}]
    seen = [_sample(2.0 + t, level) for t, level in RECORDED]
    assert recovery.time_to_detect(entries, seen) == pytest.approx(0.015, abs=1e-6)
    assert recovery.time_to_recover(entries, seen) == pytest.approx(5.112 - RECORDED_HEAL_S, abs=1e-6)
    assert recovery.health_summary(seen, INJECT, INJECT + 5.112)["at_start"]["level"] == "orange"
