"""The shop-level fault families (disk, auth, message, data, config): each lands (its effect is
observed), heals (the effect is gone) and heals twice harmlessly."""

import time

import httpx
import pytest

from harness.datastores import connect_database, queue_depth
from harness.errors import HarnessError
from harness.faults import Chaos
from harness.polling import wait_for

pytestmark = pytest.mark.integration


def _df(stack) -> float:
    out = stack.docker_container("api_gateway").exec_run(["df", "--output=pcent", "/data"]).output.decode()
    return float(out.split()[-1].rstrip("%"))


def _heal_twice(fault) -> None:
    fault.heal()
    fault.heal()


def test_disk_fill_lands_and_heals(stack):
    before = _df(stack)
    fault = Chaos(stack).inject("disk.fill", target="api_gateway", percent=60)
    assert _df(stack) >= 59
    _heal_twice(fault)
    assert _df(stack) <= before + 1


def test_log_flood_lands_and_a_heal_from_its_record_stops_it_and_deletes_its_files(stack):
    """Catches a heal that leaves the flood writing (the service still knows it) or leaves its
    log or its rotated copies on node-A's volume, whether healed by the fault or, as the reaper
    does, from its record alone; and a flood that lands nothing on node-A's volume."""
    fault = Chaos(stack).inject("disk.log_flood", target="api_gateway", total_mib=6, rate_mib_s=2)
    assert fault.files() and fault.progress()["written"] > 0
    type(fault).undo_from(fault.undo_state(), stack)
    assert fault.files() == []
    with pytest.raises(HarnessError, match="does not know the log flood"):
        fault.progress()
    _heal_twice(fault)


def _product(stack, sku):
    with connect_database(stack) as conn:
        return conn.execute("SELECT name, price_cents, stock FROM products WHERE sku = %s", [sku]).fetchone()


def test_null_fields_land_and_the_row_is_restored(stack):
    original = _product(stack, "sku-4")
    fault = Chaos(stack).inject("data.null_fields", target="postgres", sku="sku-4", fields=["name", "stock"])
    assert _product(stack, "sku-4")[0] is None and _product(stack, "sku-4")[2] is None
    _heal_twice(fault)
    assert _product(stack, "sku-4") == original


@pytest.mark.parametrize("name", ["auth.invalid_signature", "auth.expired", "auth.garbage",
                                  "auth.future_dated_token"])
def test_bad_tokens_land_only_as_auth_service_refuses_them(stack, name):
    fault = Chaos(stack).inject(name, target="auth_service")
    assert fault.token and fault.verdict() == 401
    _heal_twice(fault)


def test_a_wrong_audience_token_is_genuine_for_its_own_audience_and_refused_for_the_shop(stack):
    fault = Chaos(stack).inject("auth.wrong_audience", target="auth_service")
    assert fault.last_verdict[0] == 200 and fault.verdict() == 401
    _heal_twice(fault)


def test_a_future_dated_token_within_the_leeway_does_not_land(stack):
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="did not land"):
        Chaos(stack).inject("auth.future_dated_token", target="auth_service", ahead_s=2)


def _clock_offset(stack) -> float:
    return httpx.get(stack.endpoint("auth_service").url + "/health", timeout=5).json()["now"] - time.time()


@pytest.mark.parametrize("skew", [-120, 90])
def test_clock_skew_moves_auth_services_clock_and_heals_from_its_record(stack, skew):
    from harness.faults import CATALOG
    from harness.faults.attach import attach

    fault = Chaos(stack).inject("auth.clock_skew", target="auth_service", skew_s=skew)
    assert abs(_clock_offset(stack) - skew) < 0.5
    state = fault.undo_state()
    CATALOG["auth.clock_skew"].undo_from(state, attach(stack.run_id))  # as another process would, from the record alone
    assert abs(_clock_offset(stack)) < 0.5
    CATALOG["auth.clock_skew"].undo_from(state, attach(stack.run_id))  # twice: harmless
    _heal_twice(fault)
    assert abs(_clock_offset(stack)) < 0.5


def test_tokens_issued_before_a_skew_meet_the_skewed_verifier(stack):
    from scenarios.shop.clients import mint_token

    verify = lambda token: httpx.post(stack.endpoint("auth_service").url + "/verify",  # noqa: E731
                                      json={"token": token}, timeout=5).status_code
    chaos = Chaos(stack)
    token = mint_token(stack, ttl_s=60)
    with chaos.inject("auth.clock_skew", target="auth_service", skew_s=-120):
        assert verify(token) == 401, "a token from two minutes in the verifier's future was accepted"
    with chaos.inject("auth.clock_skew", target="auth_service", skew_s=180):
        assert verify(token) == 401, "a token expired two minutes ago for the verifier was accepted"
    assert verify(token) == 200, "the healed verifier refuses a genuine token"


def test_key_rotation_lands_keeps_old_tokens_valid_and_heals(stack):
    from scenarios.shop.clients import mint_token

    old_token = mint_token(stack)
    fault = Chaos(stack).inject("auth.key_rotation", target="auth_service")
    verify = lambda token: httpx.post(stack.endpoint("auth_service").url + "/verify",  # noqa: E731
                                      json={"token": token}, timeout=5).status_code
    assert verify(old_token) == 200, "a token signed before the rotation must still verify"
    _heal_twice(fault)
    from harness.faults.auth import _active_key

    restored, _ = wait_for(lambda: _active_key(stack)[0] == fault.previous, 5)
    assert restored


def test_messages_are_published_and_dead_lettered(stack):
    broker = stack.endpoint("rabbitmq")
    dlq = "inventory.order-events.dlq"
    before = queue_depth(broker.host, broker.port, dlq) or 0
    fault = Chaos(stack).inject("message.malformed_json", target="rabbitmq", count=2)
    assert fault.published == 2
    depth, _ = wait_for(lambda: (queue_depth(broker.host, broker.port, dlq) or 0) >= before + 2, 10, 0.2)
    assert depth
    _heal_twice(fault)


def test_missing_env_replica_refuses_to_start_and_is_removed_on_heal(stack):
    fault = Chaos(stack).inject("config.missing_env", target="api_gateway", variable="RABBITMQ_USER")
    status, code, output = fault.outcome(settle_s=15)
    assert status == "exited" and code != 0 and "RABBITMQ_USER is not set" in output
    replica = fault.replica.id
    _heal_twice(fault)
    assert not stack.client.containers.list(all=True, filters={"id": replica})


def test_an_unroutable_message_fails_the_inject_in_one_line(stack):
    """No queue is bound for this routing key (the shop binds order.*): published mandatory,
    the broker returns it, and inject fails instead of calling it landed."""
    with pytest.raises(HarnessError, match=r"routed no queue for orders/nobody\.listens"):
        Chaos(stack).inject("message.poison", target="rabbitmq", count=1, routing_key="nobody.listens")


def test_a_message_fault_is_proven_by_what_the_broker_shows(stack):
    fault = Chaos(stack).inject("message.schema_invalid", target="rabbitmq", count=2)
    assert fault.evidence["how"] in ("held", "consumers changed", "taken by a consumer")
    assert set(fault.evidence["after"]) == {"depth", "consumers", "dead"}
