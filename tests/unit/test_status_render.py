"""`chaos status` as a person reads it, from snapshots made by hand (no stack needed)."""

from harness.status import render


def document(**changes):
    base = {"ts": 0.0, "run": {"run_id": "r1", "owner": "chaos-up", "sut_mode": "resilient"},
            "health": {"score": 40, "level": "red", "breaker": "open", "disk_used_percent": 97.2, "error": None},
            "services": [{"name": "postgres", "state": "paused", "score": None},
                         {"name": "api_gateway", "state": "running", "score": 40}],
            "faults": [{"id": "process.pause-postgres-1", "fault": "process.pause", "target": "postgres",
                        "run_id": "r1", "params": {}, "age_s": 12.4, "left_s": 47.6}],
            "alerts": [{"ts": 0.0, "chaos": {"status": "firing", "severity": "critical", "where": "node-A",
                                             "what": "disk 97%"}}],
            "guardrail_trips": [], "unreadable": []}
    return base | changes


def test_a_degraded_stack_shows_health_faults_and_alerts():
    text = render(document())
    assert "system health 40 red  breaker open  disk 97%" in text
    assert any(line.split()[:4] == ["api_gateway", "running", "40", "red"] for line in text.splitlines())
    assert any(line.split()[:3] == ["postgres", "paused", "-"] for line in text.splitlines())
    assert "ACTIVE FAULTS (1)" in text and "process.pause-postgres-1" in text and "12s" in text and "48s" in text
    assert "firing   node-A: disk 97%" in text


def test_no_stack_shows_the_faults_on_disk_and_how_to_start_one():
    text = render(document(run=None, faults=[]))
    assert "no stack is running (`chaos up` starts one)" in text and "ACTIVE FAULTS: none" in text
    assert "SERVICE" not in text


def test_a_guardrail_trip_is_shown():
    trip = {"ts": 0.0, "condition": "health<50", "observed": 0.0, "healed": ["a", "b"]}
    assert "GUARDRAIL TRIPPED 00:00:00: health<50 (observed 0.0), healed 2 fault(s)" in render(
        document(guardrail_trips=[trip]))


