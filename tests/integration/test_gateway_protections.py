"""api_gateway's protections, each shown working on the resilient shop and absent on the
fragile one: fail-closed auth, clock-skew leeway, node-A disk shedding with alerts, the
outbox across a broker outage, broker settings validated at start, and health scores."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from harness import protections
from harness.images import Builder
from harness.polling import wait_for
from harness.stack import RUN_LABEL
from scenarios.shop.clients import SinkClient, mint_token

pytestmark = pytest.mark.integration

INVALID_TOKEN = "User authentication failed: invalid token."
DISK_LOW = "Disk space is critically low on server node-A."
ORDER = {"sku": "sku-1", "amount_cents": 500}


def _post(stack, token: str | None, timeout: float = 10.0) -> httpx.Response:
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(stack.edge_url + "/orders", json=ORDER, headers=headers, timeout=timeout)


def _token(stack, ttl_s: int = 600) -> str:
    return mint_token(stack, ttl_s=ttl_s)


def _sink(stack, what: str) -> list[dict]:
    return httpx.get(stack.endpoint("alert_sink").url + f"/{what}", timeout=5).json()[what]


def _reset_sink(stack) -> None:
    sink = SinkClient.of(stack)
    sink.reset()
    sink.close()


@pytest.fixture(params=["resilient", "fragile"])
def any_stack(request, stack, fragile_stack):
    return stack if request.param == "resilient" else fragile_stack


def test_invalid_token_gets_401_and_the_manual_line_in_both_modes(any_stack):
    since = time.time()
    response = _post(any_stack, "not-a-jwt")
    assert response.status_code == 401
    logged, _ = wait_for(lambda: any(e.get("event") == INVALID_TOKEN
                                     for e in any_stack.logs("api_gateway", since=since)), 5, 0.2)
    assert logged, "the manual's invalid-token line was not logged"  # docker's log copy may lag a little
    assert _post(any_stack, None).status_code == 401


def test_auth_outage_fails_closed_when_resilient(stack):
    token = _token(stack)
    proxy = stack.toxiproxy.get_proxy("auth")
    proxy.disable()
    try:
        began = time.monotonic()
        response = _post(stack, token)
        took = time.monotonic() - began
    finally:
        proxy.enable()
    assert response.status_code == 503 and response.headers.get("Retry-After")
    assert took < 3.0, f"failing closed took {took:.1f}s"


def test_auth_outage_fails_open_when_fragile(fragile_stack):
    proxy = fragile_stack.toxiproxy.get_proxy("auth")
    proxy.disable()
    try:
        response = _post(fragile_stack, "forged-token-nobody-checks")
    finally:
        proxy.enable()
    assert response.status_code in (201, 202), "the fragile shop lets an unverified request through"


@pytest.mark.parametrize("leeway", [True, False], ids=["leeway", "leeway-off"])
def test_a_token_just_past_expiry_is_within_the_leeway_only_with_the_leeway(leeway, stack):
    token = _token(stack, ttl_s=1)
    time.sleep(2.2)  # expired by ~1 s: inside the 5 s leeway
    protections.switch(stack, [] if leeway else ["leeway"])  # at run time, on the running auth_service
    try:
        status = _post(stack, token).status_code
    finally:
        protections.switch(stack, [])
    assert (status in (201, 202)) is leeway, status


def _fill(stack, percent: float) -> None:
    container = stack.docker_container("api_gateway")
    df = container.exec_run(["df", "--output=size,used", "-B1", "/data"]).output.decode().split()
    size, used = int(df[-2]), int(df[-1])
    extra = max(0, int(size * percent / 100) - used)
    result = container.exec_run(["fallocate", "-l", str(extra), "/data/chaos-fill"])
    assert result.exit_code == 0, result.output


def _unfill(stack) -> None:
    stack.docker_container("api_gateway").exec_run(["rm", "-f", "/data/chaos-fill"])


def test_disk_fill_on_node_a_sheds_writes_alerts_and_recovers_when_resilient(stack):
    token = _token(stack)
    _reset_sink(stack)
    since = time.time()
    _fill(stack, 95)
    try:
        line, _ = wait_for(lambda: any(e.get("event") == DISK_LOW for e in stack.logs("api_gateway", since=since)), 5)
        assert line, "the manual's disk line was not logged within 5 s"
        shed = _post(stack, token)
        assert shed.status_code == 503 and shed.headers.get("Retry-After")
        health = httpx.get(stack.edge_url + "/health", timeout=5).json()
        assert health["checks"]["disk_ok"] is False
        firing, _ = wait_for(lambda: [a for a in _sink(stack, "alerts") if a["chaos"]["status"] == "firing"], 5)
        assert firing and firing[0]["chaos"]["where"] == "node-A"
        assert {"who", "when_utc", "when_jst", "where", "what", "why", "how"} <= set(firing[0]["chaos"])
    finally:
        _unfill(stack)
    resolved, _ = wait_for(lambda: [a for a in _sink(stack, "alerts") if a["chaos"]["status"] == "resolved"], 5)
    assert resolved, "no recovery alert after the disk was cleaned"
    assert _post(stack, token).status_code == 201


def test_disk_full_on_node_a_breaks_writes_silently_when_fragile(fragile_stack):
    token = _token(fragile_stack)
    since = time.time()
    _fill(fragile_stack, 100)
    try:
        response = _post(fragile_stack, token)
        time.sleep(1)
        logs = fragile_stack.logs("api_gateway", since=since)
    finally:
        _unfill(fragile_stack)
    assert response.status_code == 500
    assert not any(e.get("event") == DISK_LOW for e in logs), "the fragile shop has no disk monitor"


def _reservation(stack, token: str, order_id: str) -> dict:
    response = httpx.get(stack.endpoint("inventory_service").url + f"/reservations/{order_id}",
                         headers={"Authorization": f"Bearer {token}"}, timeout=5)
    return response.json() if response.status_code == 200 else {}


@pytest.mark.parametrize("mode", ["resilient", "fragile"])
def test_events_survive_a_broker_outage_only_with_the_outbox(mode, stack, fragile_stack):
    target = stack if mode == "resilient" else fragile_stack
    token = _token(target)
    proxy = target.toxiproxy.get_proxy("rabbitmq")
    proxy.disable()
    try:
        response = _post(target, token)
        assert response.status_code == 201, response.text
        order_id = response.json()["id"]
        if mode == "resilient":
            pending = httpx.get(target.edge_url + "/outbox", timeout=5).json()["pending"]
            assert pending >= 1, "the event was not kept in the outbox"
    finally:
        proxy.enable()
    confirmed, _ = wait_for(lambda: _reservation(target, token, order_id).get("status") == "CONFIRMED", 20, 0.3)
    if mode == "resilient":
        assert confirmed, "the outboxed event never reached inventory after the broker came back"
        drained, _ = wait_for(lambda: httpx.get(target.edge_url + "/outbox", timeout=5).json()["pending"] == 0, 10)
        assert drained
    else:
        assert not confirmed, "without an outbox the event published during the outage should be lost"


def _run_gateway_without(variable: str, mode: str) -> tuple[int | None, str]:
    from harness import topology
    from harness.engine import connect

    client = connect()
    env = topology.active().service_env(topology.SERVICES["api_gateway"], mode)
    env.pop(variable)
    container = client.containers.run(Builder(client).image("shop"), ["python3", "-m", "shop", "api_gateway"],
                                      environment=env, detach=True,
                                      labels={RUN_LABEL: f"config-{uuid.uuid4().hex[:6]}"})
    try:
        exited, _ = wait_for(lambda: (container.reload(), container.status)[1] == "exited", 20, 0.2)
        output = container.logs().decode(errors="replace")
        return (container.attrs["State"]["ExitCode"] if exited else None), output
    finally:
        container.remove(force=True)


def test_missing_broker_setting_stops_the_resilient_gateway_naming_it():
    code, output = _run_gateway_without("RABBITMQ_HOST", "resilient")
    assert code not in (None, 0), output
    assert "RABBITMQ_HOST is not set" in output


def test_missing_broker_setting_is_silently_defaulted_when_fragile():
    code, output = _run_gateway_without("RABBITMQ_HOST", "fragile")
    assert code is None or "RABBITMQ_HOST" not in output, "fragile must not complain; it keeps running on defaults"


def test_system_health_aggregates_every_service(stack):
    """Catches a service left out of the system's score, or a score that never says green. Read
    until green (bounded): a service just started scores low for its first second (its broker
    connection not yet made), which is the truth at that moment, not a fault of the aggregate."""
    def body() -> dict:
        return httpx.get(stack.edge_url + "/health/system", timeout=5).json()

    green, _ = wait_for(lambda: body()["level"] == "green", 20, 0.25)
    last = body()
    assert set(last["services"]) == {"api_gateway", "auth_service", "inventory_service", "payment_gateway",
                                     "payment_gateway_b"}
    assert green and last["score"] >= 90, last


def test_every_shop_service_exposes_metrics(stack):
    for service in ("api_gateway", "auth_service", "inventory_service", "payment_gateway", "alert_sink"):
        text = httpx.get(stack.endpoint(service).url + "/metrics/", timeout=5).text
        assert "# TYPE" in text, service


DB_TIMEOUT = "Database connection timed out."


@pytest.mark.parametrize("mode", ["resilient", "fragile"])
def test_slow_database_gets_503_with_retry_after_only_when_resilient(mode, stack, fragile_stack):
    target = stack if mode == "resilient" else fragile_stack
    token = _token(target)
    proxy = target.toxiproxy.get_proxy("postgres")
    proxy.add_toxic(name="slow_db_test", type="latency", attributes={"latency": 6000})
    since = time.time()
    try:
        began = time.monotonic()
        try:
            response = _post(target, token, timeout=3.5)
        except httpx.TimeoutException:
            response = None
        took = time.monotonic() - began
    finally:
        target.toxiproxy.get_proxy("postgres").destroy_toxic("slow_db_test")
    if mode == "resilient":
        assert response is not None and response.status_code == 503, response
        assert response.headers.get("Retry-After") and took < 3.5
        logged, _ = wait_for(lambda: any(e.get("event") == DB_TIMEOUT
                                         for e in target.logs("api_gateway", since=since)), 5, 0.2)
        assert logged
    else:
        assert response is None, "the fragile gateway has no deadline: it should still be waiting"
    recovered, _ = wait_for(lambda: _post(target, token).status_code == 201, 20, 0.5)
    assert recovered, "the shop did not recover after the database became fast again"


VENDOR_SLOW_MS = 1500  # under the gateway's payment timeout (2 s): the charge is out that long


def test_an_order_is_pinned_to_its_vendor_in_the_database_before_the_charge_goes_out(stack):
    """A gateway that dies with a charge out must leave the order pinned to the vendor it asked
    (the row's vendor column), else the settler or the customer's retry may ask the other vendor
    and the order is charged at both. Broken when the pin is written only with the vendor's
    answer: then it is never seen while the order is still PAYMENT_PENDING."""
    from concurrent.futures import ThreadPoolExecutor

    from harness.datastores import connect_database

    token, key = _token(stack), uuid.uuid4().hex

    def row() -> tuple[str, str | None] | None:
        with connect_database(stack) as conn:
            found = conn.execute("SELECT status, vendor FROM orders WHERE split_part(idempotency_key, ':', 1) = %s",
                                 [key]).fetchone()
        return None if found is None else (found[0], found[1])

    proxy = stack.toxiproxy.get_proxy("payment")
    proxy.add_toxic(name="slow_vendor_pin_test", type="latency", stream="downstream",
                    attributes={"latency": VENDOR_SLOW_MS})
    try:
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(lambda: httpx.post(stack.edge_url + "/orders", json=ORDER, timeout=15, headers={
                "Idempotency-Key": key, "Authorization": f"Bearer {token}"}))
            pinned, _ = wait_for(lambda: (lambda r: r if r and r[1] else None)(row()), 5, 0.05)
            assert answer.result(timeout=15).status_code == 201
    finally:
        stack.toxiproxy.get_proxy("payment").destroy_toxic("slow_vendor_pin_test")
    assert pinned == ("PAYMENT_PENDING", "primary"), f"the order's row while its charge was out: {pinned}"
