"""The shop's control endpoints ask for the run's secret; an order is its subject's; a session
on a kept stack (--stack=external) reads the vendor, the sink and the DLQ, and wipes nothing."""

import json
import uuid

import httpx
import pika
import pytest

from harness import protections
from harness.datastores import channel, peek, purge
from harness.faults.attach import attach
from harness.topology import control_headers
from scenarios.shop.clients import SinkClient, VendorClient, mint_token
from scenarios.shop.overload import SHAPING_PATH
from tests.conftest import BIN, run

pytestmark = pytest.mark.integration

DLQ = "inventory.order-events.dlq"
# Every control endpoint: (service, method, path, body) asked in a way that changes nothing.
CONTROL = [
    ("auth_service", "POST", "/tokens", {"subject": "control-test", "ttl_s": 60}),
    ("payment_gateway", "GET", "/_control/fault", None),
    ("payment_gateway", "POST", "/_control/fault", {"kind": "status", "status": 503, "duration_s": 0.01}),
    ("payment_gateway", "DELETE", "/_control/fault", None),
    ("payment_gateway", "GET", "/_control/journal", None),
    ("payment_gateway", "GET", "/_control/charges", None),
    ("payment_gateway", "POST", "/_control/reset", None),
    ("alert_sink", "POST", "/_control/smtp", {"delay_ms": 0}),
    ("alert_sink", "POST", "/_control/reset", None),
    ("inventory_service", "POST", "/_control/consumer/heal", None),  # kill shares its gate (one router)
    ("api_gateway", "GET", SHAPING_PATH, None),
    ("api_gateway", "DELETE", SHAPING_PATH, None),  # back to the settings' rate: what it already is
    *[(service, method, protections.CONTROL_PATH, body) for service in protections.services()
      for method, body in (("GET", None), ("PUT", {"disabled": []}))],
]


def _ask(stack, service, method, path, body, headers):
    return httpx.request(method, stack.endpoint(service).url + path, json=body, headers=headers, timeout=5)


@pytest.mark.parametrize("service,method,path,body", CONTROL, ids=[f"{c[0]}:{c[1]}:{c[2]}" for c in CONTROL])
def test_each_control_endpoint_refuses_without_the_runs_secret_and_works_with_it(stack, service, method, path, body):
    """Catches a control endpoint anyone on the loopback can call (mint a token, rotate a key,
    fault or wipe the vendor, wipe the sink, switch a protection off, limit the shop's traffic), one that takes a wrong
    secret, and one that refuses the harness's own (the secret not handed to or read by it)."""
    assert _ask(stack, service, method, path, body, {}).status_code == 401
    wrong = control_headers(stack.control_secret[:-1] + ("x" if stack.control_secret[-1] != "x" else "y"))
    assert _ask(stack, service, method, path, body, wrong).status_code == 403
    assert _ask(stack, service, method, path, body, control_headers(stack.control_secret)).status_code in (200, 201)


def test_key_rotation_refuses_without_the_secret_and_the_harness_rotates_with_it(stack, chaos):
    """Catches POST /keys/rotate open to anyone (it changes which key signs every token), and the
    key-rotation fault not sending the run's secret (it could not inject)."""
    url = stack.endpoint("auth_service").url + "/keys/rotate"
    assert httpx.post(url, timeout=5).status_code == 401
    assert httpx.post(url, headers=control_headers("not-the-secret"), timeout=5).status_code == 403
    with chaos.inject("auth.key_rotation", target="auth_service") as fault:
        assert fault.new


def test_an_attached_stack_reads_the_secret_back_from_the_containers(stack):
    """Catches a process that attaches (`chaos inject`, a reaper, --stack=external) without the
    run's secret: every control call it makes would be refused."""
    attached = attach(stack.run_id)
    assert attached.control_secret == stack.control_secret and len(stack.control_secret) >= 32


def test_another_subjects_order_is_refused(stack, shop):
    """Catches GET /orders/{id} answering any valid token with any order (ids leak through logs,
    mails and receipts): another subject's order must be as unknown to it as a missing one."""
    placed = shop.place_order()
    assert placed.status == 201, placed.body
    order_url = f"{stack.edge_url}/orders/{placed.order_id}"
    other = {"Authorization": f"Bearer {mint_token(stack, subject='someone-else')}"}
    own = {"Authorization": f"Bearer {shop.token}"}
    assert httpx.get(order_url, headers=other, timeout=5).status_code == 404
    mine = httpx.get(order_url, headers=own, timeout=5)
    assert mine.status_code == 200 and mine.json()["id"] == placed.order_id


def test_reads_after_a_mark_see_only_what_came_after_it(stack):
    """Catches a client that reads the whole list (what a scenario on a kept stack must not count
    as its own) or that misses what arrives after its mark."""
    vendor = VendorClient.of(stack)
    try:
        before = _charge(stack, "mark-before-" + uuid.uuid4().hex)
        vendor.mark()
        after = _charge(stack, "mark-after-" + uuid.uuid4().hex)
        assert set(vendor.charges()) == {after} and before not in vendor.charges()
        assert [e["key"] for e in vendor.journal()] == [after]
    finally:
        vendor.close()


def _charge(stack, key: str) -> str:
    response = httpx.post(stack.endpoint("payment_gateway").url + "/charges", json={"order_id": key, "amount_cents": 7},
                          headers={"Idempotency-Key": key}, timeout=5)
    assert response.status_code in (200, 201), response.text
    return key


def test_an_external_session_leaves_the_kept_stacks_vendor_sink_and_dlq_as_they_were(stack, tmp_path):
    """Catches a --stack=external session that resets the vendor (the operator's charges and
    the idempotency table: a later settle would charge again), resets the sink (the game day's
    alerts and mails) or purges the DLQ (the parked messages the manual says to inspect)."""
    key = _charge(stack, "operator-" + uuid.uuid4().hex)
    sink_url = stack.endpoint("alert_sink").url
    marker = "operator alert " + uuid.uuid4().hex
    httpx.post(sink_url + "/hooks/alerts", json={"text": marker, "chaos": {"status": "firing"}},
               timeout=5).raise_for_status()
    broker = stack.endpoint("rabbitmq")
    message_id = "operator-" + uuid.uuid4().hex
    with channel(broker.host, broker.port) as amqp:
        amqp.basic_publish("", DLQ, json.dumps({"operator": True}).encode(),
                           pika.BasicProperties(message_id=message_id, delivery_mode=2))
    try:
        result = run([str(BIN / "pytest"), "scenarios/", "--stack=external", f"--stack-run={stack.run_id}",
                      "-k", "invalid_token or dlq_redrive", "-p", "no:cacheprovider", "-rs",
                      f"--chaos-reports={tmp_path}"], timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        vendor, sink = VendorClient.of(stack), SinkClient.of(stack)
        try:
            assert key in vendor.charges() and key in {e["key"] for e in vendor.journal()}
            assert marker in {a.get("text") for a in sink.alerts()}
        finally:
            vendor.close()
            sink.close()
        replay = httpx.post(stack.endpoint("payment_gateway").url + "/charges",
                            json={"order_id": key, "amount_cents": 7}, headers={"Idempotency-Key": key}, timeout=5)
        assert replay.status_code == 200 and replay.json()["replayed"]  # the idempotency table kept it
        assert message_id in {m.message_id for m in peek(broker.host, broker.port, DLQ)}
        assert "1 passed, 1 skipped" in result.stdout, result.stdout[-2000:]  # the DLQ scenario skips
    finally:
        purge(broker.host, broker.port, DLQ)  # this test's own message, on this test's own stack


def test_another_subject_reusing_an_idempotency_key_gets_neither_the_order_nor_a_resume(stack, shop):
    """Catches a replay that hands another subject's order (its id and status) to whoever sends
    the same Idempotency-Key, or lets them resume it."""
    placed = shop.place_order()
    assert placed.status == 201, placed.body
    other = {"Authorization": f"Bearer {mint_token(stack, subject='someone-else')}", "Idempotency-Key": placed.key}
    answer = httpx.post(
        f"{stack.edge_url}/orders", json={"sku": "sku-1", "amount_cents": 1250}, headers=other, timeout=10
    )
    assert answer.status_code == 409 and placed.order_id not in answer.text
    assert shop.place_order(key=placed.key).body.get("replayed")  # its own subject still gets the replay
