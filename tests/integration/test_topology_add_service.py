"""Adding a service to the shop is one entry in its topology file: the stack starts it, wires its
client through a proxy of its own, and the network faults can cut that edge.

The added service is a second alert sink (the shop's image, `python3 -m shop alert_sink`) that
the gateway is told about in an env variable of the entry's `address:`; nothing but the file
changes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from harness import topology
from harness.faults import Chaos
from harness.stack import RUN_LABEL, Stack, container_env

pytestmark = pytest.mark.integration

ENTRY = """
  audit_sink:
    image: shop
    port: 8000
    readiness: {http: {path: /health}}
    command: [python3, -m, shop, alert_sink]
    env: {SERVICE_NAME: audit_sink, <<: *shop-env}
    address: {AUDIT_URL: "http://{host}:{port}"}
"""


def with_one_more_service(tmp_path: Path) -> Path:
    """The shop's file plus the entry, and the gateway using it (the two edits a person makes)."""
    text = topology.BUNDLED.read_text(encoding="utf-8")
    gateway_uses = "uses: [postgres, payment_gateway, payment_gateway_b, rabbitmq, auth_service, inventory_service]"
    assert text.count(gateway_uses) == 1
    text = text.replace(gateway_uses, gateway_uses[:-1] + ", audit_sink]")
    path = tmp_path / "chaos.yaml"
    path.write_text(text.rstrip("\n") + "\n" + ENTRY, encoding="utf-8")
    return path


def test_one_entry_adds_a_service_its_proxy_and_a_faultable_edge(tmp_path):
    """Catches a service that needs more than its entry: one not started, a client handed its
    real address (no proxy, so the edge cannot be cut), a proxy missing from Toxiproxy, or a
    network fault that only knows the shop's own proxies."""
    system = topology.load(with_one_more_service(tmp_path))
    assert system.proxy_of("audit_sink") is not None
    proxy = system.proxy_of("audit_sink").name
    with Stack(topology=system) as stack:
        labels = {c.labels["chaos-harness.service"]
                  for c in stack.client.containers.list(filters={"label": f"{RUN_LABEL}={stack.run_id}"})}
        assert "audit_sink" in labels
        listen = system.proxies[proxy].listen_port
        assert container_env(stack.docker_container("api_gateway"))["AUDIT_URL"] == f"http://toxiproxy:{listen}"
        assert proxy in stack.toxiproxy.proxies()
        through = stack.proxy_endpoint(proxy).url + "/health"
        assert httpx.get(through, timeout=5).status_code == 200
        chaos = Chaos(stack)
        with chaos.inject("network.down", proxy):
            with pytest.raises(httpx.TransportError):
                httpx.get(through, timeout=2)
        assert httpx.get(through, timeout=5).status_code == 200
