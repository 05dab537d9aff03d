import pytest

from harness import topology


def test_table_is_consistent():
    topology.validate()


def test_shop_services_are_given_proxy_addresses_only():
    real_hosts = {s.host for s in topology.SERVICES.values()}
    for service in topology.SERVICES.values():
        env = topology.service_env(service, "resilient")
        for key, value in env.items():
            if key in ("SERVICE_NAME", "SUT_MODE", "POSTGRES_DB", "POSTGRES_USER") or key in topology.SINK_ENV:
                continue  # the sinks are the harness's observers, reached directly by design
            assert not any(f"{host}:" in value or value == host for host in real_hosts if host != "toxiproxy"), (key, value)
    gateway = topology.service_env(topology.SERVICES["api_gateway"], "fragile")
    assert gateway["PAYMENT_URL"] == "http://toxiproxy:20003"
    assert "@toxiproxy:20004/" in gateway["DATABASE_URL"]
    assert gateway["RABBITMQ_HOST"] == "toxiproxy" and gateway["SUT_MODE"] == "fragile"


def test_every_proxy_forwards_to_a_real_service_address():
    assert topology.upstream_address(topology.PROXIES["payment"]) == "payment-gateway:8000"
    assert topology.upstream_address(topology.PROXIES["edge_gateway"]) == "api-gateway:8000"


def test_toxiproxy_starts_first_and_everything_starts_once():
    waves = topology.start_order()
    assert waves[0] == ["toxiproxy"]
    started = [name for wave in waves for name in wave]
    assert sorted(started) == sorted(topology.SERVICES)


def test_validate_rejects_a_shared_listen_port(monkeypatch):
    proxies = dict(topology.PROXIES)
    proxies["twin"] = topology.Proxy("twin", "postgres", topology.PROXIES["postgres"].listen_port)
    monkeypatch.setattr(topology, "PROXIES", proxies)
    with pytest.raises(ValueError, match="share a listen port"):
        topology.validate()


def test_validate_rejects_an_unknown_upstream(monkeypatch):
    monkeypatch.setattr(topology, "PROXIES", {**topology.PROXIES, "x": topology.Proxy("x", "nowhere", 29999)})
    with pytest.raises(ValueError, match="unknown service nowhere"):
        topology.validate()
