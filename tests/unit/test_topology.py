"""The topology loader: the shop's file as the stack it always was, and errors that name the file,
the line and the field."""

import textwrap
from pathlib import Path

import pytest

from harness import topology
from harness.errors import HarnessError

SHOP = topology.load(topology.BUNDLED)

SMALL = """\
name: notes
entry: [web]
services:
  db:
    image: postgres
    port: 5432
    readiness: {sql: {user: u, password: p, database: d}}
    address: {DATABASE_URL: "postgresql://u:p@{host}:{port}/d"}
  web:
    image: shop
    port: 8000
    readiness: {http: {path: /health}}
    uses: [db]
    env: {MODE: "{run.sut_mode}"}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chaos.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_shop_services_are_given_proxy_addresses_only():
    """Catches an edge wired past Toxiproxy: a service told a real host of the network."""
    real_hosts = {s.host for s in SHOP.services.values()} - {
        "toxiproxy",
        "alert-sink",
    }  # the sink: the harness's observer
    for service in SHOP.services.values():
        for key, value in SHOP.service_env(service, "resilient").items():
            if key == "SERVICE_NAME" or key.startswith("POSTGRES_"):
                continue
            assert not any(f"{host}:" in value or value == host for host in real_hosts), (service.name, key, value)
    gateway = SHOP.service_env(SHOP.services["api_gateway"], "fragile", ("a", "b"), "s3cret")
    assert gateway["PAYMENT_URL"] == "http://toxiproxy:20003"
    assert "@toxiproxy:20004/" in gateway["DATABASE_URL"]
    assert gateway["RABBITMQ_HOST"] == "toxiproxy" and gateway["RABBITMQ_PORT"] == "20005"
    settings = (gateway["SUT_MODE"], gateway["SUT_DISABLE"], gateway["CHAOS_CONTROL_SECRET"])
    assert settings == ("fragile", "a,b", "s3cret")


def test_shop_proxies_are_derived_from_uses_and_entry():
    """Catches a proxy missing for a used service, or one named by anything but the file."""
    assert {p.name: (p.upstream, p.listen_port) for p in SHOP.proxies.values()} == {
        "edge_gateway": ("api_gateway", 20000), "auth": ("auth_service", 20001),
        "inventory": ("inventory_service", 20002), "payment": ("payment_gateway", 20003),
        "postgres": ("postgres", 20004), "rabbitmq": ("rabbitmq", 20005), "payment_b": ("payment_gateway_b", 20006)}
    assert SHOP.entry == ("edge_gateway",)
    assert SHOP.upstream_address(SHOP.proxies["payment"]) == "payment-gateway:8000"
    assert SHOP.services["inventory_service"].uses == ("postgres", "rabbitmq", "auth")


def test_toxiproxy_is_added_and_starts_first():
    waves = SHOP.start_order()
    assert waves[0] == ["toxiproxy"]
    assert sorted(name for wave in waves for name in wave) == sorted(SHOP.services)


def test_a_small_file_loads_with_defaults(tmp_path):
    """Catches a default listen port that collides, or a per-service template left unfilled."""
    system = topology.load(write(tmp_path, SMALL))
    assert [(p.name, p.listen_port, p.published) for p in system.proxies.values()] == [
        ("db", 20000, False), ("web", 20001, True)]
    env = system.service_env(system.services["web"], "fragile")
    assert env == {"MODE": "fragile", "DATABASE_URL": "postgresql://u:p@toxiproxy:20000/d"}


def test_per_edge_env_replaces_the_used_services_address(tmp_path):
    text = SMALL.replace("uses: [db]", 'uses: {db: {PG: "{host}:{port}"}}')
    system = topology.load(write(tmp_path, text))
    assert system.service_env(system.services["web"], "resilient") == {"MODE": "resilient", "PG": "toxiproxy:20000"}


@pytest.mark.parametrize(("change", "where"), [
    (("port: 8000", "port: eighty"), ":11: services.web.port:"),
    (("readiness: {http: {path: /health}}", "readiness: {}"), ":12: services.web.readiness:"),
    (("uses: [db]", "uses: [cache]"), ":13: services.web.uses.0: unknown service 'cache'"),
    (("MODE: \"{run.sut_mode}\"", "MODE: \"{run.colour}\""), ":14: services.web.env.MODE: unknown placeholder"),
    (("entry: [web]", "entry: [front]"), ":2: entry.0: unknown service 'front'"),
    (("    port: 5432", "    port: 5432\n    colour: blue"), ":7: services.db.colour: Extra inputs"),
    (("image: shop", "image: shop\n    build: {context: .}"), ":9: services.web:"),
])
def test_errors_name_the_file_the_line_and_the_field(tmp_path, change, where):
    """Catches an error that leaves the user to search the file: each names file:line: field."""
    path = write(tmp_path, SMALL.replace(*change))
    with pytest.raises(HarnessError) as raised:
        topology.load(path)
    message = str(raised.value)
    assert message.startswith(str(path)) and where in message, message
    assert "\n" not in message


def test_two_proxies_on_one_port_are_refused(tmp_path):
    text = SMALL.replace("    port: 5432\n", "    port: 5432\n    listen_port: 20001\n").replace(
        "    port: 8000\n", "    port: 8000\n    listen_port: 20001\n")
    with pytest.raises(HarnessError, match=r":\d+: services\.web\.listen_port: port 20001 is taken by proxy db"):
        topology.load(write(tmp_path, text))


def test_not_yaml_and_missing_files_are_one_line(tmp_path):
    with pytest.raises(HarnessError, match=r"chaos.yaml:3: not YAML"):
        topology.load(write(tmp_path, "name: x\nservices: [\n"))
    with pytest.raises(HarnessError, match="cannot be read"):
        topology.load(tmp_path / "absent.yaml")


def test_the_chosen_file_is_the_named_one_then_the_local_one_then_the_shop(tmp_path, monkeypatch):
    """Catches --topology not reaching children (they read CHAOS_TOPOLOGY) or ./chaos.yaml ignored."""
    # Set, then removed: monkeypatch restores only what it changed, and choose() below sets the
    # variable; left set, every later test of the session would run on this file's topology.
    monkeypatch.setenv(topology.TOPOLOGY_ENV, "")
    monkeypatch.delenv(topology.TOPOLOGY_ENV)
    monkeypatch.chdir(tmp_path)
    assert topology.chosen_path() == topology.BUNDLED
    local = write(tmp_path, SMALL)
    assert topology.chosen_path() == local.resolve()
    other = tmp_path / "other.yaml"
    other.write_text(SMALL.replace("name: notes", "name: other"), encoding="utf-8")
    topology.choose(other)
    assert topology.active().name == "other"
    assert topology.chosen_path() == other.resolve()
