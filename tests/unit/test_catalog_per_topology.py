"""The fault catalog of a topology: the generic faults on any system, the cooperating ones only on
the services that declare their capability, and heals that read the run's topology, not the
active one."""

import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import topology
from harness.cli import unsupported_line
from harness.errors import HarnessError
from harness.faults import CATALOG, check, describe, unsupported
from harness.faults.network import check_through
from harness.faults.process import Kill
from harness.faults.wire import PROTOCOLS
from harness.ownership import RUN_LABEL
from harness.stack import Endpoint

SHOP = topology.load(topology.BUNDLED)

# A plain system: a web service over a database, no capability declared.
PLAIN = """\
name: plain
entry: [web]
services:
  db:
    image: postgres
    port: 5432
    readiness: {sql: {user: u, password: p, database: d}}
    address: {DATABASE_URL: "postgresql://u:p@{host}:{port}/d"}
    proxy: store
  web:
    image: python
    port: 8000
    readiness: {http: {path: /health}}
    uses: [db]
"""


def plain(tmp_path: Path, extra: str = "") -> topology.Topology:
    path = tmp_path / "chaos.yaml"
    path.write_text(textwrap.dedent(PLAIN) + extra, encoding="utf-8")
    return topology.load(path)


def test_generic_faults_target_the_topologys_own_proxies_and_services(tmp_path):
    """Catches targets fixed at import from the shop (edge_gateway, payment, ...): a plain system's
    network faults would name proxies it does not have, and its process faults its services."""
    rows = {row["name"]: row for row in describe(plain(tmp_path))}
    assert rows["network.latency"]["targets"] == ["store", "web"]
    assert rows["network.down"]["targets"] == ["store", "web"]
    assert rows["process.kill"]["targets"] == ["db", "web"]
    assert {row["family"] for row in rows.values()} == {"network", "process"}


def test_cooperating_faults_are_absent_and_named_with_their_capability(tmp_path):
    """Catches a catalog that offers a plain system the shop's vendor, auth or message faults (or
    drops them silently): each one left out is named with the capability it needs."""
    system = plain(tmp_path)
    needs = unsupported(system)
    assert needs["http.status"] == "vendor" and needs["process.db_outage"] == "database"
    assert needs["auth.auth_down"] == "auth" and needs["message.poison"] == "order_events"
    assert set(needs) | {row["name"] for row in describe(system)} == set(CATALOG)
    assert not set(needs) & {row["name"] for row in describe(system)}
    line = unsupported_line(needs, system.name)
    assert line.startswith(f"{len(needs)} more fault(s)") and "vendor" in line and "\n" not in line


def test_a_declared_capability_brings_its_faults_to_the_declaring_services_only(tmp_path):
    """Catches a capability fault that targets every service, or its proxy fault (auth_down) that
    targets the service's name instead of the proxy in front of it."""
    path = plain(tmp_path).path
    path.write_text(
        path.read_text().replace("    proxy: store\n", "    proxy: store\n    capabilities: [database, auth]\n")
    )
    system = topology.load(path)
    rows = {row["name"]: row for row in describe(system)}
    assert rows["process.db_outage"]["targets"] == ["db"]
    assert rows["process.db_outage"]["capability"] == "database"
    assert rows["auth.auth_down"]["targets"] == ["store"]
    assert "http.status" not in rows


def test_the_shop_supports_the_whole_catalog():
    """Catches a capability renamed in a fault but not in services/chaos.yaml (or the reverse):
    the shop would lose that fault."""
    assert unsupported(SHOP) == {}
    rows = {row["name"]: row for row in describe(SHOP)}
    assert rows["http.status"]["targets"] == ["payment_gateway", "payment_gateway_b"]  # both vendors
    assert rows["auth.auth_down"]["targets"] == ["auth"]
    assert rows["config.missing_env"]["targets"] == ["inventory_service", "api_gateway"]


def test_a_fault_the_topology_cannot_take_is_one_line_naming_the_capability(tmp_path, monkeypatch):
    """Catches the check `chaos inject` makes of a cooperating fault on a plain system failing with
    a target list of nothing, or not saying what to declare. (The command makes it against the
    run's own topology, so only once it has found the run: without an engine it can't be reached.)"""
    path = plain(tmp_path).path
    monkeypatch.setenv(topology.TOPOLOGY_ENV, str(path))
    with pytest.raises(HarnessError, match=r"capability 'vendor'.*`capabilities: \[vendor\]`"):
        check("http.status", "web")
    with pytest.raises(HarnessError, match=r"capability 'vendor'.*`capabilities: \[vendor\]`"):
        check("http.status", "web", topology.load(path))


def test_a_heal_reads_the_run_topology_not_the_active_one(tmp_path, monkeypatch):
    """Catches a heal from a record that looks its service or proxy up in the active topology: run
    from another system's directory, healing the shop's fault fails on a name it does not know."""
    monkeypatch.setenv(topology.TOPOLOGY_ENV, str(plain(tmp_path).path))
    stack = SimpleNamespace(topology=SHOP, run_id="r1", proxy_endpoint=lambda proxy: Endpoint("127.0.0.1", 1))
    assert check_through(stack, "payment").protocol == PROTOCOLS["http"]

    asked: list[str] = []
    monkeypatch.setattr("harness.readiness.ready", lambda spec, host, port: asked.append(spec.name) or True)
    container = SimpleNamespace(labels={RUN_LABEL: "r1"}, status="running", name="c", reload=lambda: None,
                                attrs={"NetworkSettings": {"Ports": {"5672/tcp": [{"HostPort": "1"}]}}})
    stack.docker_container = lambda service: container
    Kill.undo_from({"service": "rabbitmq"}, stack)
    assert asked == ["rabbitmq"]
