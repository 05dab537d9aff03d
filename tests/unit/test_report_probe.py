"""The health probe against an in-process transport: rate, parsing, errors, bounds."""

from __future__ import annotations

import time

import httpx
import pytest

from harness.probes import UNREACHABLE, Probe, ReportedHealth, parse

SYSTEM = {"score": 60, "level": "orange", "services": {
    "api_gateway": {"score": 60, "level": "orange", "breaker": "opened", "disk_used_percent": 42.1},
    "payment_gateway": {"score": 100, "level": "green"}}}


def _client(handler) -> ReportedHealth:
    """A system that reports its own health, answered in process by `handler`."""
    client = httpx.Client(transport=httpx.MockTransport(handler), timeout=0.5)
    return ReportedHealth(lambda: "http://probe.test/health/system", client=client)


def test_parse_reads_score_level_breaker_disk_and_services():
    sample = parse(1.0, httpx.Response(200, json=SYSTEM))
    read = (sample["score"], sample["level"], sample["breaker"], sample["disk_used_percent"])
    assert read == (60, "orange", "opened", 42.1)
    assert sample["ok"] and sample["services"] == {"api_gateway": 60, "payment_gateway": 100}


def test_parse_turns_garbage_into_an_unreachable_sample():
    sample = parse(1.0, httpx.Response(502, text="bad gateway"))
    assert sample["level"] == UNREACHABLE and not sample["ok"] and sample["error"].startswith("HTTP 502")


def test_probe_samples_at_most_at_ten_hertz_and_stops():
    seen = []
    probe = Probe(_client(lambda request: seen.append(request.url.path)
                                                      or httpx.Response(200, json=SYSTEM)))
    with probe:
        time.sleep(1.0)
    stats = probe.stats()
    # A slow machine takes fewer samples; the fixed-rate schedule never takes more than one per
    # period (plus the first, taken at once).
    assert 1 <= stats["samples"] <= stats["wall_s"] * 10 + 1 and len(seen) == stats["samples"]
    assert set(seen) == {"/health/system"} and stats["errors"] == 0 and stats["cpu_s"] >= 0
    assert stats["hz"] == pytest.approx(stats["samples"] / stats["wall_s"], abs=0.05)
    count = len(probe.samples)
    time.sleep(0.3)
    assert len(probe.samples) == count, "the probe kept sampling after stop()"


def test_probe_records_failures_and_keeps_going():
    def refuse(request):
        raise httpx.ConnectError("refused", request=request)

    with Probe(_client(refuse)) as probe:
        time.sleep(0.35)
    assert len(probe.samples) >= 1 and all(s["level"] == UNREACHABLE and s["error"] == "ConnectError"
                                           for s in probe.samples)


def test_probe_stops_by_itself_at_its_maximum_duration():
    probe = Probe(_client(lambda r: httpx.Response(200, json=SYSTEM)), max_duration_s=0.3)
    probe.start()
    probe._thread.join(timeout=10.0)  # nobody calls stop(): it ends on its own
    assert not probe._thread.is_alive() and 1 <= len(probe.samples) <= probe.max_samples == 4
    probe.stop()


def test_wait_until_is_bounded():
    with Probe(_client(lambda r: httpx.Response(200, json=SYSTEM))) as probe:
        began = time.monotonic()
        assert not probe.wait_until(lambda samples: False, 0.3)
        assert time.monotonic() - began >= 0.3  # gave up only when its time was up
        assert probe.wait_until(lambda samples: len(samples) >= 2, 2.0)


@pytest.mark.parametrize("hz,duration", [(0.5, 10), (100, 10), (10, 0), (10, 7200)])
def test_probe_bounds(hz, duration):
    with pytest.raises(ValueError):
        Probe(_client(lambda r: httpx.Response(200, json=SYSTEM)), hz=hz, max_duration_s=duration)
