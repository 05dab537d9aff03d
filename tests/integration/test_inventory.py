"""inventory_service's HTTP side against real containers, each protection shown working on the
resilient shop and absent on the fragile one: bounded database calls (503 + Retry-After and the
manual's line instead of a hang), quarantine of NULL catalogue rows (instead of a 500 and the
manual's line), broker settings checked at start (instead of silent defaults); plus idempotent
reservations, token checks, health and metrics.

The helpers at the top are shared with test_messaging.py.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import docker
import httpx
import pytest

from harness import topology
from harness.datastores import connect_database
from harness.engine import connect
from harness.images import Builder
from harness.polling import wait_for
from harness.stack import RUN_LABEL, Endpoint, Stack
from scenarios.shop.clients import mint_token

pytestmark = pytest.mark.integration

SERVICE = "inventory_service"
# The operations manual's lines, verbatim.
DB_TIMEOUT = "Database connection timed out."
INVENTORY_NULL = "Unexpected null pointer exception in inventory service."
INVALID_TOKEN = "User authentication failed: invalid token."


# ---------------------------------------------------------------- shared helpers

def published(stack: Stack, service: str, port: int | None = None) -> Endpoint:
    """Where a container's port is published right now. A restarted container gets a new host
    port, which an endpoint remembered before the restart would miss."""
    container = stack.docker_container(service)
    container.reload()
    binding = container.attrs["NetworkSettings"]["Ports"][f"{port or topology.SERVICES[service].port}/tcp"][0]
    return Endpoint(binding["HostIp"], int(binding["HostPort"]))


@contextlib.contextmanager
def toxic(stack: Stack, proxy: str, kind: str, attributes: dict[str, Any]) -> Iterator[None]:
    """A toxic on one proxy of this stack, removed on the way out whatever happens. Talks to the
    stack's own Toxiproxy API: the toxiproxy client library keeps one global API address, which
    points at whichever stack started last when two run in a session."""
    api = stack.endpoint("toxiproxy").url
    name = f"inventory-test-{uuid.uuid4().hex[:6]}"
    httpx.post(f"{api}/proxies/{proxy}/toxics", json={"name": name, "type": kind, "stream": "downstream",
                                                       "toxicity": 1.0, "attributes": attributes},
               timeout=5).raise_for_status()
    try:
        yield
    finally:
        httpx.delete(f"{api}/proxies/{proxy}/toxics/{name}", timeout=5).raise_for_status()


@dataclass
class Inventory:
    """inventory_service as a caller with a valid token sees it, plus its database and logs."""

    stack: Stack
    token: str = ""

    def __post_init__(self) -> None:
        self.token = self.token or mint_token(self.stack, subject="inventory-test")

    @property
    def url(self) -> str:
        return published(self.stack, SERVICE).url

    def request(self, method: str, path: str, timeout: float = 5.0, token: str | None = None,
                **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token if token is None else token}"} if token != "" else {}
        return httpx.request(method, self.url + path, headers=headers, timeout=timeout, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def reserve(self, order_id: str, sku: str = "sku-3", quantity: int = 1) -> httpx.Response:
        return self.request("POST", "/reservations", json={"order_id": order_id, "sku": sku, "quantity": quantity})

    def health(self) -> dict[str, Any]:
        return httpx.get(self.url + "/health", timeout=5).json()

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple]:
        """Straight to Postgres (not through the proxy), as an operator would."""
        with connect_database(self.stack, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def stock(self, sku: str) -> int:
        return self.sql("SELECT stock FROM products WHERE sku = %s", [sku])[0][0]

    def logged(self, event: str, since: float, **fields: Any) -> list[dict[str, Any]]:
        """The service's log events named `event` since a time, matching every given field."""
        return [e for e in self.stack.logs(SERVICE, since=since)
                if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())]


@pytest.fixture(scope="module")
def inventory(stack: Stack) -> Inventory:
    return Inventory(stack)


@pytest.fixture(scope="module")
def fragile_inventory(fragile_stack: Stack) -> Inventory:
    return Inventory(fragile_stack)


# ---------------------------------------------------------------- reservations, tokens, health

def test_reservations_are_idempotent_and_take_stock_once(inventory):
    order_id, refused_id = f"inv-test-{uuid.uuid4().hex}", f"inv-test-{uuid.uuid4().hex}"
    before, scarce = inventory.stock("sku-3"), inventory.stock("sku-4")
    inventory.sql("UPDATE products SET stock = 1 WHERE sku = 'sku-4'")
    try:
        first = inventory.reserve(order_id, "sku-3", 3)
        repeat = inventory.reserve(order_id, "sku-3", 3)
        after = inventory.stock("sku-3")
        fetched = inventory.get(f"/reservations/{order_id}")
        out_of_stock = inventory.reserve(refused_id, "sku-4", 2)
        unknown_sku = inventory.reserve(refused_id, "sku-nope", 1)
        unknown_order = inventory.get(f"/reservations/{refused_id}")
    finally:
        inventory.sql("DELETE FROM reservations WHERE order_id = ANY(%s)", [[order_id, refused_id]])
        inventory.sql("UPDATE products SET stock = %s WHERE sku = 'sku-3'", [before])
        inventory.sql("UPDATE products SET stock = %s WHERE sku = 'sku-4'", [scarce])
    assert first.status_code == 201 and first.json()["status"] == "RESERVED", first.text
    assert repeat.status_code == 200 and repeat.json()["order_id"] == order_id, repeat.text
    assert after == before - 3, "a repeated reservation must not take stock twice"
    assert fetched.status_code == 200 and fetched.json()["status"] == "RESERVED"
    assert out_of_stock.status_code == 409, out_of_stock.text
    assert unknown_sku.status_code == 404, unknown_sku.text
    assert unknown_order.status_code == 404, "a refused reservation must leave no row behind"


def test_every_endpoint_but_health_and_metrics_needs_a_valid_token(inventory):
    since = time.time()
    assert inventory.get("/products", token="").status_code == 401
    assert inventory.get("/products", token="not-a-jwt").status_code == 401
    assert inventory.get("/products").status_code == 200
    assert httpx.get(inventory.url + "/health", timeout=5).status_code == 200
    assert httpx.get(inventory.url + "/metrics/", timeout=5).status_code == 200
    assert inventory.logged(INVALID_TOKEN, since), "the manual's line for a rejected token"


def test_health_scores_database_and_consumer_and_metrics_name_them(inventory):
    connected, _ = wait_for(lambda: inventory.health()["checks"]["broker_consumer"], 30, 0.3)
    assert connected, "the consumer never reported connected"
    body = inventory.health()
    assert body["checks"] == {"database": True, "broker_consumer": True}
    assert body["score"] == 100 and body["level"] == "green" and body["service"] == SERVICE
    metrics = httpx.get(inventory.url + "/metrics/", timeout=5).text
    for name in ("inventory_requests_total", "inventory_messages_processed_total",
                 "inventory_messages_dead_lettered_total", "inventory_consumer_connected 1.0"):
        assert name in metrics, name


# ---------------------------------------------------------------- a slow database

SLOW_DB = {"latency": 5000}  # ms each way through the postgres proxy: slower than any budget


def test_slow_database_gets_a_fast_503_and_the_manual_line_when_resilient(inventory):
    since = time.time()
    with toxic(inventory.stack, "postgres", "latency", SLOW_DB):
        began = time.monotonic()
        response = inventory.get("/products", timeout=6)
        took = time.monotonic() - began
        health = httpx.get(inventory.url + "/health", timeout=5)
    assert response.status_code == 503, response.text
    assert response.headers.get("Retry-After") == "1"
    assert took < 3.5, f"answered after {took:.1f}s: a worker waited on the database"  # 2 s deadline + token check
    assert inventory.logged(DB_TIMEOUT, since), "the manual's line was not logged"
    assert health.status_code == 503 and health.json()["checks"]["database"] is False
    recovered, waited = wait_for(lambda: inventory.get("/products").status_code == 200, 20, 0.3)
    assert recovered, f"still failing {waited:.0f}s after the latency was removed"


def test_slow_database_hangs_the_fragile_service(fragile_inventory):
    since = time.time()
    with toxic(fragile_inventory.stack, "postgres", "latency", SLOW_DB):
        with pytest.raises(httpx.TimeoutException):
            fragile_inventory.get("/products", timeout=3.5)
    assert not fragile_inventory.logged(DB_TIMEOUT, since), "the fragile shop has no database deadline"


# ---------------------------------------------------------------- NULL in the catalogue

@contextlib.contextmanager
def null_price(inventory: Inventory, sku: str = "sku-5") -> Iterator[None]:
    """A catalogue row with a NULL price for the duration, restored (and unquarantined) after."""
    original = inventory.sql("SELECT price_cents FROM products WHERE sku = %s", [sku])[0][0]
    inventory.sql("UPDATE products SET price_cents = NULL WHERE sku = %s", [sku])
    try:
        yield
    finally:
        inventory.sql("UPDATE products SET price_cents = %s WHERE sku = %s", [original, sku])
        inventory.sql("DELETE FROM quarantine WHERE sku = %s", [sku])


def test_a_null_column_is_quarantined_and_the_rest_served_when_resilient(inventory):
    since = time.time()
    with null_price(inventory):
        listing = inventory.get("/products")
        single = inventory.get("/products/sku-5")
        quarantined = inventory.sql("SELECT reason FROM quarantine WHERE sku = 'sku-5'")
    assert listing.status_code == 200, listing.text
    assert [p["sku"] for p in listing.json()] == ["sku-1", "sku-2", "sku-3", "sku-4"]
    assert single.status_code == 404 and single.json()["reason"] == "quarantined", single.text
    assert quarantined and "price_cents" in quarantined[0][0]
    assert inventory.logged("product_quarantined", since, sku="sku-5")
    assert not inventory.logged(INVENTORY_NULL, since)
    assert "sku-5" in [p["sku"] for p in inventory.get("/products").json()], "a repaired row is served again"


def test_a_null_column_breaks_the_catalogue_when_fragile(fragile_inventory):
    since = time.time()
    with null_price(fragile_inventory):
        listing = fragile_inventory.get("/products")
        single = fragile_inventory.get("/products/sku-5")
    assert listing.status_code == 500 and single.status_code == 500
    assert len(fragile_inventory.logged(INVENTORY_NULL, since)) >= 2, "the manual's line, once per request"


# ---------------------------------------------------------------- broker settings at start

def run_without_broker_settings(mode: str, settle_s: float = 20) -> tuple[docker.models.containers.Container, str]:
    """Starts the service alone from the shop image with no RABBITMQ_* at all; returns the
    container once it exited, or once it logged its start, and everything it printed."""
    client = connect()
    container = client.containers.run(
        Builder(client).image("shop"), ["python3", "-m", "shop", SERVICE], environment={"SUT_MODE": mode},
        detach=True, labels={RUN_LABEL: f"inventory-config-{uuid.uuid4().hex[:6]}"})
    try:
        wait_for(lambda: (container.reload(), container.status)[1] == "exited"
                 or b'"event": "started"' in container.logs(), settle_s, 0.2)
        return container, container.logs().decode(errors="replace")
    except BaseException:
        container.remove(force=True)
        raise


def test_missing_broker_settings_stop_the_resilient_service_naming_them():
    container, output = run_without_broker_settings("resilient")
    try:
        exited, _ = wait_for(lambda: (container.reload(), container.status)[1] == "exited", 10, 0.2)
        code = container.attrs["State"]["ExitCode"]
    finally:
        container.remove(force=True)
    assert exited and code != 0, output
    assert "RABBITMQ_HOST is not set" in output


def test_missing_broker_settings_are_silently_defaulted_when_fragile():
    container, output = run_without_broker_settings("fragile")
    try:
        time.sleep(1)
        container.reload()
        running = container.status == "running"
    finally:
        container.remove(force=True)
    assert running, f"the fragile service should keep running on defaults: {output[-500:]}"
    assert "config_invalid" not in output and '"broker": "localhost:5672"' in output, output[-500:]
