"""The vendor's HTTP faults and the process faults against the session's real stack: each
lands (the vendor answers as configured; the container is seen killed, frozen or stopped and
the service stops answering), heals (the service answers again, on whatever port a restart
gave it), and heals twice harmlessly. Every test leaves the stack answering."""

import time
import uuid
from datetime import datetime

import httpx
import pytest

from harness import state, topology
from harness.faults.http import marked_charge
from harness.readiness import ready

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    """This test's own fault records, apart from any other run's."""
    monkeypatch.setenv(state.STATE_ENV, str(tmp_path))
    return tmp_path


def _charge(url: str, key: str | None = None, timeout_s: float = 5.0) -> httpx.Response:
    """A real (unmarked) charge, as the shop would send it."""
    key = key or uuid.uuid4().hex
    return httpx.post(f"{url}/charges", json={"order_id": key, "amount_cents": 100},
                      headers={"Idempotency-Key": key}, timeout=timeout_s)


def _answers(stack, service: str) -> bool:
    endpoint = stack.endpoint(service)
    try:
        return ready(topology.SERVICES[service], endpoint.host, endpoint.port)
    except Exception:
        return False


def _green(stack, service: str) -> bool:
    try:
        answer = httpx.get(stack.endpoint(service).url + "/health", timeout=2)
        return answer.status_code == 200 and answer.json().get("level") == "green"
    except (httpx.HTTPError, ValueError):
        return False


def _settled(stack, shop) -> bool:
    """Within a bounded wait, every service of the shop reports green (its own dependencies
    reconnected through their proxies) and an order goes through: the stack as it was found."""
    services = [name for name, spec in topology.SERVICES.items() if spec.image == "shop"]
    deadline = time.monotonic() + 30
    while not all(_green(stack, name) for name in services) or shop.place_order().status != 201:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)
    return True


# ---------------------------------------------------------------- http

def test_rate_limit_answers_429_with_retry_after_beyond_the_rate(stack, chaos, vendor):
    fault = chaos.inject("http.rate", "payment_gateway", per_s=3, retry_after=2)
    time.sleep(1.1)  # let the landing's marked charges leave the one-second window
    answers = [_charge(vendor.base_url) for _ in range(5)]
    assert [a.status_code for a in answers] == [201, 201, 201, 429, 429]
    assert answers[-1].headers["retry-after"] == "2"
    fault.heal()
    fault.heal()
    assert [_charge(vendor.base_url).status_code for _ in range(5)] == [201] * 5


def test_first_n_fails_the_first_charges_then_answers(stack, chaos, vendor):
    fault = chaos.inject("http.first_n", "payment_gateway", count=2, status=500)
    assert marked_charge(vendor.base_url).status_code == 500  # marked charges do not use up a failure
    key = uuid.uuid4().hex
    assert [_charge(vendor.base_url, key).status_code for _ in range(4)] == [500, 500, 201, 200]
    assert len(vendor.charges()) == 1  # charged once, then replayed
    fault.heal()
    fault.heal()
    assert vendor.fault() is None


def test_slow_body_charges_but_answers_after_the_callers_timeout(stack, chaos, vendor):
    with chaos.inject("http.slow_body", "payment_gateway", delay_ms=2500):
        key = uuid.uuid4().hex
        with pytest.raises(httpx.ReadTimeout):
            _charge(vendor.base_url, key, timeout_s=2.0)  # the shop's payment timeout
        assert key in vendor.charges()  # the vendor did charge: only the answer was late
        began = time.monotonic()
        assert _charge(vendor.base_url, key, timeout_s=5.0).json()["replayed"] is True
        assert time.monotonic() - began >= 2.4
    assert vendor.fault() is None and _charge(vendor.base_url).status_code == 201  # healed: no delay left


def test_malformed_body_answers_200_that_is_not_json(stack, chaos, vendor):
    fault = chaos.inject("http.malformed_body", "payment_gateway")
    answer = _charge(vendor.base_url)
    assert answer.status_code == 200
    with pytest.raises(ValueError):
        answer.json()
    assert len(vendor.charges()) == 1
    fault.heal()
    fault.heal()
    assert _charge(vendor.base_url).json()["replayed"] is False


def test_http_faults_combine_and_heal_one_kind_at_a_time(stack, chaos, vendor):
    slow = chaos.inject("http.slow_body", "payment_gateway", delay_ms=400)
    malformed = chaos.inject("http.malformed_body", "payment_gateway")
    assert set(vendor.http.get("/_control/fault").json()["faults"]) == {"slow_body", "malformed_body"}
    began = time.monotonic()
    assert marked_charge(vendor.base_url).text.startswith("<html>") and time.monotonic() - began >= 0.38
    slow.heal()
    assert set(vendor.http.get("/_control/fault").json()["faults"]) == {"malformed_body"}  # the delay is gone
    assert marked_charge(vendor.base_url).text.startswith("<html>")
    malformed.heal()
    assert marked_charge(vendor.base_url).json()["replayed"] is False


# ---------------------------------------------------------------- process

def test_kill_stops_the_vendor_and_heal_brings_it_back_on_a_new_port(stack, chaos, shop):
    url = stack.endpoint("payment_gateway").url
    fault = chaos.inject("process.kill", "payment_gateway")
    container = stack.docker_container("payment_gateway")
    assert container.status == "exited" and container.attrs["State"]["ExitCode"] == 137  # SIGKILL
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/health", timeout=2)
    fault.heal()
    assert stack.docker_container("payment_gateway").status == "running"
    assert httpx.get(stack.endpoint("payment_gateway").url + "/health", timeout=2).status_code == 200
    fault.heal()
    assert _answers(stack, "payment_gateway") and _settled(stack, shop)


def test_a_signal_that_leaves_postgres_half_stopped_is_healed_by_a_restart(stack, chaos, shop):
    """Catches a heal that leaves a service running but refusing everyone: SIGTERM puts Postgres
    in a smart shutdown that waits for the shop's pooled connections for ever, so the kill never
    lands (it does not exit) and its heal must restart it (seen: every later schedule of an
    exploration unjudged, "the database system is shutting down")."""
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="did not land"):
        chaos.inject("process.kill", "postgres", signal="SIGTERM")
    assert stack.docker_container("postgres").status == "running" and _answers(stack, "postgres")
    assert _settled(stack, shop)


def test_pause_freezes_the_service_until_healed(stack, chaos, shop):
    url = stack.endpoint("auth_service").url
    with chaos.inject("process.pause", "auth_service"):
        assert stack.docker_container("auth_service").status == "paused"
        with pytest.raises(httpx.TimeoutException):
            httpx.get(f"{url}/health", timeout=1)
    assert stack.docker_container("auth_service").status == "running"
    assert httpx.get(stack.endpoint("auth_service").url + "/health", timeout=2).status_code == 200
    assert _settled(stack, shop)


def test_restart_lands_when_the_service_answers_again(stack, chaos, shop):
    before = stack.docker_container("alert_sink").attrs["State"]["StartedAt"]
    fault = chaos.inject("process.restart", "alert_sink", stop_timeout_s=1)
    assert stack.docker_container("alert_sink").attrs["State"]["StartedAt"] != before
    assert _answers(stack, "alert_sink")  # landing already waited for it
    fault.heal()
    fault.heal()
    assert _answers(stack, "alert_sink") and _settled(stack, shop)


@pytest.mark.parametrize(("name", "service"), [("process.broker_outage", "rabbitmq"),
                                               ("process.db_outage", "postgres")])
def test_dependency_outage_stops_it_and_heal_waits_for_its_protocol(stack, chaos, shop, name, service):
    endpoint = stack.endpoint(service)
    def check(host, port):
        return ready(topology.SERVICES[service], host, port)
    fault = chaos.inject(name, service, stop_timeout_s=1)
    assert stack.docker_container(service).status == "exited"
    with pytest.raises(Exception):
        check(endpoint.host, endpoint.port)
    fault.heal()
    assert stack.docker_container(service).status == "running" and _answers(stack, service)
    fault.heal()
    assert _settled(stack, shop)  # the shop reconnects through its proxies by itself


def test_a_broker_outage_opens_its_window_when_amqp_went_quiet_not_when_asked(stack, chaos, shop):
    """The journal's inject time lies between the request and the container's exit: the broker
    answered until it stopped, and the window opens at the first wire check it did not answer."""
    asked = time.time()
    with chaos.inject("process.broker_outage", "rabbitmq", stop_timeout_s=10) as fault:
        finished = stack.docker_container("rabbitmq").attrs["State"]["FinishedAt"]
        (entry,) = [e for e in chaos.journal.entries if e["action"] == "inject"]
        assert fault.evidence == {"stopped_answering": True}
        assert asked < entry["ts"] == fault.started_at
        exited = datetime.fromisoformat(finished[:26].rstrip("Z") + "+00:00").timestamp()
        assert entry["ts"] <= exited + 0.5, "the window opened after the broker had already exited"
    assert _settled(stack, shop)
