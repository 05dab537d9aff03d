"""The stack as started for a session: labels, loopback-only ports, proxies on every edge,
readiness that speaks each protocol, and the vendor fault landing and healing."""

import httpx
import pika
import pytest

from harness import topology
from harness.datastores import connect_database
from harness.faults import Chaos
from harness.polling import wait_for
from harness.stack import OWNER_LABEL, RUN_LABEL, container_env, owner_token

pytestmark = pytest.mark.integration


def test_every_object_carries_the_run_label(stack):
    containers = stack.client.containers.list(filters={"label": f"{RUN_LABEL}={stack.run_id}"})
    assert sorted(c.labels["chaos-harness.service"] for c in containers) == sorted(topology.SERVICES)
    assert all(c.labels[OWNER_LABEL] == owner_token() for c in containers)
    networks = stack.client.networks.list(filters={"label": f"{RUN_LABEL}={stack.run_id}"})
    assert len(networks) == 1


def test_ports_are_published_on_loopback_only(stack):
    for container in stack.client.containers.list(filters={"label": f"{RUN_LABEL}={stack.run_id}"}):
        bindings = [b for per_port in container.attrs["HostConfig"]["PortBindings"].values() for b in per_port]
        assert bindings and all(b["HostIp"] == "127.0.0.1" for b in bindings), container.name


def test_services_are_configured_with_proxy_addresses(stack):
    env = container_env(stack.docker_container("api_gateway"))
    assert env["PAYMENT_URL"] == "http://toxiproxy:20003"
    assert "@toxiproxy:20004/" in env["DATABASE_URL"]
    proxies = stack.toxiproxy.proxies()
    assert {name: proxy.upstream for name, proxy in proxies.items()} == {
        p.name: topology.active().upstream_address(p) for p in topology.PROXIES.values()}


def test_gateway_reaches_the_vendor_only_through_its_proxy(stack, shop, vendor):
    proxy = stack.toxiproxy.get_proxy("payment")
    proxy.disable()
    try:
        op = shop.place_order()
        assert op.status == 202, op.body  # resilient fallback: vendor unreachable
        assert vendor.journal() == []  # nothing got through the disabled proxy
    finally:
        proxy.enable()
    assert shop.place_order().status == 201


def test_client_edge_goes_through_toxiproxy(stack, shop):
    proxy = stack.toxiproxy.get_proxy("edge_gateway")
    proxy.disable()
    try:
        with pytest.raises(httpx.TransportError):
            httpx.get(stack.edge_url + "/health", timeout=2)
        assert httpx.get(stack.endpoint("api_gateway").url + "/health", timeout=2).status_code == 200
    finally:
        proxy.enable()
    # Green again once an order has found the primary vendor back: a breaker an earlier cut
    # opened closes on the first call it lets through (until then the second vendor is paid).
    green, _ = wait_for(lambda: shop.place_order().status == 201 and shop.health()["level"] == "green", 15, 0.5)
    assert green, shop.health()


def test_readiness_protocols_answer_on_published_ports(stack):
    with connect_database(stack) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] >= 0
    mq = stack.endpoint("rabbitmq")
    connection = pika.BlockingConnection(pika.ConnectionParameters(
        host=mq.host, port=mq.port, credentials=pika.PlainCredentials("chaos", "chaos")))
    assert connection.is_open
    connection.close()


def test_vendor_fault_lands_heals_and_heals_twice_harmlessly(stack, vendor):
    chaos = Chaos(stack)
    fault = chaos.inject("http.status", target="payment_gateway", status=429, retry_after=3)
    assert vendor.probe_charge() == 429 and vendor.fault()["retry_after"] == 3
    fault.heal()
    fault.heal()
    assert vendor.fault() is None and vendor.probe_charge() == 201
    actions = [e["action"] for e in chaos.journal.entries]
    assert actions == ["inject", "landed", "heal"]
