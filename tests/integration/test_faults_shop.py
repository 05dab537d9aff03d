"""The shop-level fault families (disk, auth, message, data, config): each lands (its effect is
observed), heals (the effect is gone) and heals twice harmlessly."""

import time

import httpx
import psycopg
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


def _write_waits(stack) -> bool:
    """Whether a write to orders waits on a lock (given up after a moment), a read going on meanwhile."""
    with connect_database(stack, autocommit=True) as conn:
        conn.execute("SELECT count(*) FROM orders").fetchone()
        conn.execute("SET lock_timeout = '200ms'")
        try:
            conn.execute("UPDATE orders SET updated_at = updated_at WHERE false")
        except psycopg.errors.LockNotAvailable:
            return True
    return False


def test_a_table_lock_makes_writes_wait_reads_go_on_and_heals(stack):
    """Catches a lock that does not hold writes up (no exhausted pool to see), one that stops
    reads too, and a heal that leaves it held."""
    fault = Chaos(stack).inject("data.table_lock", target="postgres", table="orders", hold_s=30)
    assert _write_waits(stack)
    _heal_twice(fault)
    assert not _write_waits(stack)


def test_a_table_lock_outlives_its_client_and_heals_from_its_record(stack):
    """Catches a lock that ends with the injecting process (a `chaos inject` would leave a record
    of a fault that is gone) and a record heal that can't find the session to end."""
    from harness.faults.data import TableLock

    fault = Chaos(stack).inject("data.table_lock", target="postgres", table="orders", hold_s=30)
    fault.holder.close()  # the injecting process gone
    assert _write_waits(stack)
    TableLock.undo_from(fault.undo_state(), stack)
    assert wait_for(lambda: not _write_waits(stack), 5.0)[0]
    fault.active = False


def test_a_table_lock_of_no_such_table_is_one_line(stack):
    """Catches a misspelt table that fails with a traceback, or is taken as locked."""
    with pytest.raises(HarnessError, match="no table 'nope'"):
        Chaos(stack).inject("data.table_lock", target="postgres", table="nope")


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


def _wedged_order(stack):
    """An order placed while inventory_service's consumer is wedged, once its event hangs there."""
    from harness.faults.process import wedge_state
    from harness.history import History
    from scenarios.shop.clients import ShopClient, mint_token

    shop = ShopClient(stack.edge_url, History(), token=mint_token(stack))
    try:
        order = shop.place_order()
    finally:
        shop.close()
    held, _ = wait_for(lambda: wedge_state(stack, "inventory_service")["held"] == 1, 10, 0.1)
    assert order.status == 201 and held, wedge_state(stack, "inventory_service")
    return order.order_id


def _reservation(stack, order_id):
    with connect_database(stack) as conn:
        row = conn.execute("SELECT status FROM reservations WHERE order_id = %s", [order_id]).fetchone()
    return row[0] if row else None


def test_a_consumer_wedge_holds_the_next_event_and_heals_from_its_record(stack):
    """Catches a wedge that does not hold the consumer (the event is acked and the next one
    processed), and a heal that leaves it stuck: released from its record alone, the held
    event is acked and the consumer goes on (a later order's event is consumed)."""
    from harness.faults import CATALOG
    from harness.faults.attach import attach
    from harness.faults.process import wedge_state

    fault = Chaos(stack).inject("process.consumer_wedge", target="inventory_service")
    _wedged_order(stack)
    state = fault.undo_state()
    CATALOG["process.consumer_wedge"].undo_from(state, attach(stack.run_id))
    assert wedge_state(stack, "inventory_service") == {"armed": False, "held": 0, "waiting": 0}
    CATALOG["process.consumer_wedge"].undo_from(state, attach(stack.run_id))  # twice: harmless
    _heal_twice(fault)


def test_restart_service_clears_a_wedge_and_answers_again(stack):
    """Catches a restart that returns before the service answers (or on a port the restart moved),
    and a wedge that outlives the process: after restart_service, the new process is not wedged
    and the held event is redelivered and consumed. An unknown service is one line, nothing done."""
    from harness.faults.process import restart_service, wedge_state

    fault = Chaos(stack).inject("process.consumer_wedge", target="inventory_service")
    order_id = _wedged_order(stack)
    action = restart_service(stack, "inventory_service")
    assert (action.what, action.target, action.outcome) == ("restart", "inventory_service", "restored")
    assert wedge_state(stack, "inventory_service")["armed"] is False
    fault.heal()
    assert _reservation(stack, order_id) == "CONFIRMED"
    with pytest.raises(HarnessError, match="can't restart 'nosuch'"):
        restart_service(stack, "nosuch")


def test_chaos_restart_journals_the_restart_for_the_game_day(stack, tmp_path, monkeypatch, capsys):
    """Catches `chaos restart` restarting without recording it (the game day's report would miss
    the operator's action) or recording a restart that did not restore the service."""
    from harness import cli, gameday, state

    monkeypatch.setenv(state.STATE_ENV, str(tmp_path))
    try:
        assert cli.main(["restart", "inventory_service", "--run", stack.run_id]) == 0
    finally:
        stack.refresh("inventory_service")  # restarted from outside: its published port moved
    assert capsys.readouterr().out.strip().endswith(": restored")
    actions = gameday.recovery_actions(state.journal(stack.run_id))
    assert [(a["what"], a["target"], a["outcome"]) for a in actions] == [("restart", "inventory_service", "restored")]


def _consumers(stack) -> int | None:
    from harness.faults.message import consumers_now

    return consumers_now(stack)


def test_consumer_kill_ends_only_the_consumer_and_its_record_restarts_it(stack):
    """Catches a kill that takes the whole service down (inventory must keep answering), one the
    broker does not show (a consumer still attached), and a heal that relies on the supervisor:
    with consumer_supervisor off only the heal (here from the record alone, as the reaper does)
    brings a consumer back."""
    from harness import protections
    from harness.faults import CATALOG
    from harness.faults.attach import attach

    inventory = stack.endpoint("inventory_service").url
    protections.switch(stack, ["consumer_supervisor"])
    try:
        fault = Chaos(stack).inject("message.consumer_kill", target="inventory_service", down_s=0)
        assert _consumers(stack) == 0
        assert httpx.get(inventory + "/health", timeout=5).status_code == 200
        stays_dead, _ = wait_for(lambda: _consumers(stack) != 0, 2.0, 0.25)
        assert not stays_dead  # nobody restarts it with the supervisor off
        state = fault.undo_state()
        CATALOG["message.consumer_kill"].undo_from(state, attach(stack.run_id))
        back, _ = wait_for(lambda: (_consumers(stack) or 0) >= 1, 20.0, 0.25)
        assert back
        CATALOG["message.consumer_kill"].undo_from(state, attach(stack.run_id))  # twice: harmless
        _heal_twice(fault)
        assert _consumers(stack) == 1
    finally:
        protections.switch(stack, [])
