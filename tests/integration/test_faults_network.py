"""Every network fault against the real Toxiproxy of the session's stack: it lands (the
effect is seen by traffic through the proxy, not only by Toxiproxy's word), heals (the effect
is gone), heals twice harmlessly, and touches only the toxics the harness added."""

import time
from dataclasses import dataclass
from typing import Any, Callable

import httpx
import pytest

from harness import state
from harness.errors import HarnessError
from harness.faults import network
from harness.faults.network import check_through, exchange, toxic_names

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    """This test's own fault records, apart from any other run's."""
    monkeypatch.setenv(state.STATE_ENV, str(tmp_path))
    return tmp_path


def _timed_get(url: str, timeout_s: float = 3.0) -> tuple[float, int | None]:
    """Seconds a GET took and its status (None when the transport failed)."""
    began = time.monotonic()
    try:
        status: int | None = httpx.get(url, timeout=timeout_s).status_code
    except httpx.TransportError:
        status = None
    return time.monotonic() - began, status


@dataclass
class Case:
    params: dict[str, Any]
    effect: Callable[[Any], bool]  # seen through the edge proxy while the fault is active


def _raw(stack: Any, window_s: float = 2.0):
    edge = stack.proxy_endpoint("edge_gateway")
    return exchange(edge.host, edge.port, window_s)


CASES: dict[str, Case] = {
    "network.latency": Case({"latency_ms": 400}, lambda s: _timed_get(s.edge_url + "/health")[0] >= 0.35),
    "network.down": Case({}, lambda s: _timed_get(s.edge_url + "/health")[1] is None),
    "network.timeout": Case({"timeout_ms": 0}, lambda s: _timed_get(s.edge_url + "/health", 1.0)[1] is None),
    "network.reset_peer": Case({"timeout_ms": 0}, lambda s: _timed_get(s.edge_url + "/health")[1] is None),
    "network.bandwidth": Case({"rate_kb": 1}, lambda s: _timed_get(s.edge_url + "/health")[0] >= 0.2),
    "network.slow_close": Case({"delay_ms": 400}, lambda s: (lambda x: x.complete and x.end_s >= 0.35)(_raw(s))),
    "network.slicer": Case({"average_size": 8, "size_variation": 4, "delay_us": 2000},
                           lambda s: _raw(s).reads >= 10),
    "network.limit_data": Case({"bytes": 20}, lambda s: (lambda x: x.received == 20 and not x.complete)(_raw(s))),
}


def _answers_normally(stack: Any, attempts: int = 5) -> bool:
    """A prompt, whole answer that closes promptly, in one of a few tries: a busy machine can
    slow one request down, but no toxic is left if any try is clean."""
    for _ in range(attempts):
        elapsed, status = _timed_get(stack.edge_url + "/health")
        seen = _raw(stack)
        if status == 200 and elapsed < 0.3 and seen.complete and seen.reads <= 3 and (seen.end_s or 1) < 0.3:
            return True
    return False


@pytest.mark.parametrize("name", sorted(CASES))
def test_fault_lands_heals_and_heals_twice(stack, chaos, name):
    case = CASES[name]
    assert _answers_normally(stack)
    fault = chaos.inject(name, "edge_gateway", **case.params)
    assert case.effect(stack), f"{name} landed but its effect is not seen through the edge"
    if name != "network.down":
        assert fault.toxic in toxic_names(fault.api, "edge_gateway")
    assert [r.fault for r in state.records()] == [name]
    fault.heal()
    assert _answers_normally(stack), f"{name} healed but the edge still misbehaves"
    assert toxic_names(fault.api, "edge_gateway") == set() and state.records() == []
    fault.heal()
    assert _answers_normally(stack)
    assert [e["action"] for e in chaos.journal.entries] == ["inject", "landed", "heal"]


def test_upstream_latency_delays_the_request(stack, chaos):
    with chaos.inject("network.latency", "edge_gateway", latency_ms=300, stream="upstream") as fault:
        assert fault.toxic == "chaos_latency_upstream"
        assert _timed_get(stack.edge_url + "/health")[0] >= 0.27
    assert _answers_normally(stack)


def test_partial_toxicity_lands_once_a_wire_check_meets_it(stack, chaos):
    with chaos.inject("network.latency", "edge_gateway", latency_ms=2000, toxicity=0.5) as fault:
        (toxic,) = stack.toxiproxy.get_proxy("edge_gateway").toxics().values()
        assert toxic.name == fault.toxic and toxic.toxicity == 0.5 and toxic.attributes["latency"] == 2000
    assert _answers_normally(stack)


def test_internal_edge_latency_slows_orders_and_down_triggers_the_fallback(stack, chaos, shop, vendor):
    began = time.monotonic()
    assert shop.place_order().status == 201
    baseline = time.monotonic() - began
    with chaos.inject("network.latency", "payment", latency_ms=600):
        began = time.monotonic()
        assert shop.place_order().status == 201
        assert time.monotonic() - began >= baseline + 0.5  # the vendor call went through the toxic
    with chaos.inject("network.down", "payment"):
        calls = len(vendor.journal())
        op = shop.place_order()
        assert op.status == 202, op.body  # vendor unreachable: resilient fallback
        assert len(vendor.journal()) == calls
    assert shop.place_order().status == 201


def test_a_second_injection_of_the_same_toxic_is_refused_and_heal_spares_foreign_toxics(stack, chaos):
    proxy = stack.toxiproxy.get_proxy("edge_gateway")
    proxy.add_toxic(name="operator_latency", type="latency", attributes={"latency": 1})
    try:
        fault = chaos.inject("network.latency", "edge_gateway", latency_ms=50)
        with pytest.raises(HarnessError, match="already active on edge_gateway"):
            chaos.inject("network.latency", "edge_gateway", latency_ms=60)
        fault.heal()
        assert set(proxy.toxics()) == {"operator_latency"}
    finally:
        proxy.destroy_toxic("operator_latency")
    assert _answers_normally(stack)


# ---------------------------------------------------------------- internal edges, proven through the proxy

def _through(stack: Any, proxy: str, window_s: float = 2.0):
    """One wire check through an internal proxy's published listener, independent of the fault's own."""
    wire_check = check_through(stack, proxy)
    return wire_check.exchange(window_s)


INTERNAL: dict[tuple[str, str], tuple[dict[str, Any], Callable[[Any], bool]]] = {
    ("network.latency", "postgres"): ({"latency_ms": 300}, lambda x: x.complete and x.first_byte_s >= 0.27),
    ("network.latency", "rabbitmq"): ({"latency_ms": 300}, lambda x: x.complete and x.first_byte_s >= 0.27),
    ("network.latency", "inventory"): ({"latency_ms": 300}, lambda x: x.complete and x.first_byte_s >= 0.27),
    ("network.down", "postgres"): ({}, lambda x: x.received == 0 and x.error != "timeout"),
    ("network.down", "rabbitmq"): ({}, lambda x: x.received == 0 and x.error != "timeout"),
    ("network.timeout", "rabbitmq"): ({"timeout_ms": 0}, lambda x: x.received == 0 and x.error == "timeout"),
    ("network.limit_data", "rabbitmq"): ({"bytes": 16}, lambda x: x.received == 16 and not x.complete),
}


@pytest.mark.parametrize("name, proxy", sorted(INTERNAL))
def test_an_internal_edge_fault_is_in_effect_when_inject_returns_and_gone_when_heal_does(stack, chaos, name, proxy):
    params, effect = INTERNAL[(name, proxy)]
    assert _through(stack, proxy).complete
    with chaos.inject(name, proxy, **params):
        assert effect(_through(stack, proxy)), f"{name} on {proxy} returned but is not in effect"
    seen = _through(stack, proxy)
    assert seen.complete and seen.error is None and seen.first_byte_s < 0.2, (
        f"{name} healed but {proxy} still misbehaves"
    )


def test_a_toxic_that_has_no_effect_fails_the_inject_and_is_removed(stack, chaos, monkeypatch):
    """Toxiproxy lists the toxic, but with latency 0 behind the harness's back: inject must not
    take the listing for the effect."""
    toothless = network.Toxic(**{**vars(network.TOXICS["latency"]), "attributes": lambda p: {"latency": 0}})
    monkeypatch.setitem(network.TOXICS, "latency", toothless)
    with pytest.raises(HarnessError, match="network.latency on postgres did not land"):
        chaos.inject("network.latency", "postgres", latency_ms=400)
    assert toxic_names(stack_api(stack), "postgres") == set()


def test_a_heal_that_leaves_a_delay_behind_fails(stack, chaos):
    """A delay another hand put on the proxy while the fault was active: heal removes its own
    toxic, sees the proxy still slow, and says so."""
    proxy = stack.toxiproxy.get_proxy("rabbitmq")
    fault = chaos.inject("network.latency", "rabbitmq", latency_ms=200)
    proxy.add_toxic(name="operator_latency", type="latency", attributes={"latency": 300})
    try:
        with pytest.raises(HarnessError, match="still shows its effect"):
            fault.heal()
        assert toxic_names(stack_api(stack), "rabbitmq") == {"operator_latency"}
    finally:
        proxy.destroy_toxic("operator_latency")
    assert [e["action"] for e in chaos.journal.entries][-1] == "heal"


def stack_api(stack: Any) -> str:
    endpoint = stack.endpoint("toxiproxy")
    return f"{endpoint.host}:{endpoint.port}"
