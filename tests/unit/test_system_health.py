"""A system's health from its services' own (no `health:` in the topology): each service's score
from its answer, the weakest wins, an unreachable service is red, levels at the band edges, and
the sampler that asks them all at once with one request in flight per service."""

import textwrap
import threading
from types import SimpleNamespace

import httpx
import pytest

from harness import topology
from harness.probes import UNREACHABLE, Reading, ReportedHealth, SampledHealth, aggregate, health_of, reading
from harness.stack import Endpoint
from harness.topology import Health

SCORED = Health("/health", "score")
PLAIN = Health("/health", None)


@pytest.mark.parametrize(("health", "status", "body", "score"), [
    (SCORED, 200, {"score": 73}, 73),
    (SCORED, 503, {"score": 40}, 40),  # a degraded service may say so with a 503 and its score
    (SCORED, 200, {"status": "ok"}, 0),  # no score field where the topology says there is one
    (SCORED, 200, {"score": 250}, 100),
    (PLAIN, 200, {"status": "ok"}, 100),
    (PLAIN, 503, {"status": "ok"}, 0),
    (PLAIN, 200, None, 100),
])
def test_a_services_score_is_read_from_its_answer(health, status, body, score):
    """Catches a score field ignored (every answer counted 100), a 200 without a score field not
    counted whole, or a score out of 0..100 passed on."""
    response = httpx.Response(status, json=body) if body is not None else httpx.Response(status, text="fine")
    assert reading(health, response).score == score


def test_the_weakest_service_is_the_systems_score():
    """Catches the system score taken as the mean, the first or the last service's."""
    sample = aggregate(1.0, {"web": Reading(95), "worker": Reading(61), "api": Reading(88)})
    assert (sample["score"], sample["level"], sample["ok"]) == (61, "orange", True)
    assert sample["services"] == {"api": 88, "web": 95, "worker": 61}


def test_an_unreachable_service_is_red_and_counts_zero():
    """Catches a service that does not answer left out of the score (the system would look green
    while a part of it is down)."""
    sample = aggregate(1.0, {"web": Reading(100), "worker": Reading(error="ConnectError")})
    assert (sample["score"], sample["level"]) == (0, "red") and sample["services"]["worker"] == 0


def test_no_service_answering_is_an_unreachable_sample():
    """Catches a sample scored 0 (red) when the harness heard nothing at all: a monitor that can
    not reach the system must say so, as when the entry's own health does not answer."""
    sample = aggregate(1.0, {"web": Reading(error="ConnectError"), "worker": Reading(error="ReadTimeout")})
    assert sample["level"] == UNREACHABLE and not sample["ok"] and "worker: ReadTimeout" in sample["error"]
    assert aggregate(1.0, {})["level"] == UNREACHABLE


@pytest.mark.parametrize(("score", "level"), [(100, "green"), (90, "green"), (89, "yellow"), (70, "yellow"),
                                              (69, "orange"), (50, "orange"), (49, "red"), (0, "red")])
def test_levels_follow_the_monitoring_guides_bands_at_their_edges(score, level):
    """Catches an off-by-one at a band's floor (90 green, 70 yellow, 50 orange)."""
    assert aggregate(1.0, {"web": Reading(score)})["level"] == level


def test_breaker_and_disk_come_from_the_service_whose_health_carries_them():
    """Catches the extras read from one service by name (the shop's gateway) only."""
    sample = aggregate(1.0, {"a": Reading(100, {"score": 100}),
                             "b": Reading(90, {"score": 90, "breaker": "open", "disk_used_percent": 12.5})})
    assert (sample["breaker"], sample["disk_used_percent"]) == ("open", 12.5)


class Stack:
    """Services published at ports 1 (web), 2 (worker), 3 (any other); `refreshed` counts re-reads."""

    def __init__(self, system):
        self.topology = system
        self.refreshed = []

    def endpoint(self, service, port=None):
        return Endpoint("127.0.0.1", {"web": 1, "worker": 2}.get(service, 3))

    def refresh(self, service):
        self.refreshed.append(service)


def test_the_sampler_asks_every_service_at_once_and_one_at_a_time_each():
    """Catches services asked one after another (a slow one delays every sample by its timeout)
    and a service asked again while its last request is still unanswered (requests pile up on a
    service that is slow)."""
    release, both_in, seen = threading.Event(), threading.Barrier(2, timeout=5), []

    def handler(request):
        seen.append(request.url.port)
        if seen.count(request.url.port) == 1:
            both_in.wait()  # each first request waits until the other service is asked too
        if request.url.port == 2:
            release.wait(5)  # the worker stays slow
        return httpx.Response(200, json={"score": 100})

    urls = {"web": SCORED, "worker": SCORED}
    stack = Stack(None)
    health = SampledHealth(stack, urls, timeout_s=0.2, transport=httpx.MockTransport(handler))
    try:
        first = health.sample()
        assert first["services"] == {"web": 100, "worker": 0}  # the slow one counts as not answering
        second = health.sample()
        assert seen.count(2) == 1, "the slow service was asked again before it answered"
        assert second["services"]["worker"] == 0
        release.set()
    finally:
        release.set()
        health.close()


def test_the_topology_says_how_a_stacks_health_is_read(tmp_path):
    """Catches the shop's /health/system asked of a system that does not report its own health,
    or a system that does (the shop) sampled service by service."""
    path = tmp_path / "chaos.yaml"
    path.write_text(textwrap.dedent("""\
        name: plain
        entry: [web]
        services:
          web:
            image: python
            port: 8000
            readiness: {http: {path: /health}}
            health: {path: /health}
          db:
            image: postgres
            port: 5432
            readiness: {tcp: {}}
        """), encoding="utf-8")
    sampled = health_of(Stack(topology.load(path)))
    reported = health_of(SimpleNamespace(topology=topology.load(topology.BUNDLED), edge_url="http://edge"))
    try:
        assert isinstance(sampled, SampledHealth) and list(sampled.urls) == ["web"]  # db has no health URL
        assert isinstance(reported, ReportedHealth) and reported.url() == "http://edge/health/system"
    finally:
        sampled.close()
        reported.close()


def test_status_shows_a_system_that_is_not_the_shop(tmp_path, monkeypatch):
    """Catches `chaos status` listing the active topology's (the shop's) services for another
    system's run, calling every system "shop", or reading alerts from an alert receiver (a service
    declaring the `alerts` capability) it does not have."""
    from harness import status

    path = tmp_path / "chaos.yaml"
    path.write_text(textwrap.dedent("""\
        name: notes
        services:
          web:
            image: python
            port: 8000
            readiness: {http: {path: /health}}
            health: {path: /health}
        """), encoding="utf-8")
    stack = Stack(topology.load(path))
    stack.run_id, stack.owner, stack.sut_mode, stack.control_secret = "r1", "chaos-up", "resilient", ""
    stack.containers = {"web": SimpleNamespace(status="running")}
    monkeypatch.setattr(status.AlertReader, "of", lambda stack: pytest.fail("read alerts from a receiver it has not"))
    document = status.snapshot(stack)
    assert [s["name"] for s in document["services"]] == ["toxiproxy", "web"] and document["endpoints"]["web"].startswith("http://")
    assert document["health"]["level"] == UNREACHABLE  # nothing listens at port 1
    assert "run r1 (resilient notes, owner chaos-up)" in status.render(document)
