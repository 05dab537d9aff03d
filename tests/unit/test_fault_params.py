"""Fault parameters are validated before anything is touched, and the registry's own logic
(expiry, owner, records on disk, the journal) works without an engine."""

import json
import subprocess
import sys
import time

import pytest

from harness import detached, state
from harness.cli import _values
from harness.errors import HarnessError
from harness.faults import CATALOG, check, describe, registry
from harness.faults.base import FaultJournal
from harness.faults.network import toxic_name
from harness.stack import owner_token
from harness.topology import active
from tests.conftest import BIN, ROOT, run
from tests.unit.test_cli import NO_ENGINE, _one_line_exit_2

FAMILIES = {"network": 8, "http": 6, "process": 6}


def test_every_family_is_in_the_catalog_with_described_parameters():
    rows = {row["name"]: row for row in describe()}
    assert set(rows) == set(CATALOG)
    for family, count in FAMILIES.items():
        assert sum(row["family"] == family for row in rows.values()) == count, family
    assert rows["network.latency"]["params"]["latency_ms"] == {"default": 1000, "maximum": 60000,
                                                              "minimum": 0, "type": "integer"}
    assert rows["network.latency"]["params"]["stream"]["enum"] == ["upstream", "downstream"]
    assert rows["process.db_outage"]["targets"] == ["postgres"]
    assert "toxiproxy" not in rows["process.kill"]["targets"]


@pytest.mark.parametrize("name", sorted(name for name, cls in CATALOG.items() if cls.family in FAMILIES))
def test_every_fault_takes_its_defaults_on_every_target(name):
    for target in CATALOG[name].targets_in(active()):
        assert check(name, target).target == target


@pytest.mark.parametrize(("name", "target", "params", "field"), [
    ("network.latency", "edge_gateway", {"latency_ms": "slow"}, "latency_ms"),
    ("network.latency", "edge_gateway", {"latency_ms": 60001}, "latency_ms"),
    ("network.latency", "auth", {"toxicity": 1.5}, "toxicity"),
    ("network.timeout", "payment", {"stream": "sideways"}, "stream"),
    ("network.bandwidth", "postgres", {"rate_kb": 0}, "rate_kb"),
    ("network.slicer", "rabbitmq", {"average_size": 8, "size_variation": 8}, "size_variation"),
    ("network.limit_data", "inventory", {"bytes": -1}, "bytes"),
    ("http.rate", "payment_gateway", {"per_s": 0}, "per_s"),
    ("http.first_n", "payment_gateway", {"status": 418}, "status"),
    ("http.slow_body", "payment_gateway", {"delay_ms": [1]}, "delay_ms"),
    ("process.restart", "auth_service", {"stop_timeout_s": 121}, "stop_timeout_s"),
    ("process.kill", "api_gateway", {"signal": "SIGSTOP"}, "signal"),
])
def test_bad_values_name_the_field(name, target, params, field):
    with pytest.raises(HarnessError, match=f"bad value for {field}"):
        check(name, target, **params)


def test_unknown_parameters_targets_and_faults_are_one_line_errors():
    with pytest.raises(HarnessError, match="has no parameter latency: it takes stream, toxicity, latency_ms"):
        check("network.latency", "edge_gateway", latency=5)
    with pytest.raises(HarnessError, match="can't target 'toxiproxy'"):
        check("process.kill", "toxiproxy")
    with pytest.raises(HarnessError, match="can't target 'payment_gateway'"):
        check("network.down", "payment_gateway")  # network faults target proxies, not services
    with pytest.raises(HarnessError, match="unknown fault 'network.flood'"):
        check("network.flood", "edge_gateway")


def test_toxics_have_stable_prefixed_names():
    assert toxic_name("latency", "downstream") == "chaos_latency_downstream"
    assert check("network.slicer", "auth", stream="upstream").toxic == "chaos_slicer_upstream"


def test_set_values_are_read_as_json_then_validated_by_the_model():
    assert _values(["latency_ms=250", "stream=upstream", "toxicity=0.5", "retry_after=null"]) == {
        "latency_ms": 250, "stream": "upstream", "toxicity": 0.5, "retry_after": None}
    with pytest.raises(HarnessError, match="key=value"):
        _values(["latency_ms"])


def test_cli_rejects_bad_input_before_touching_the_engine(tmp_path):
    env = {**NO_ENGINE, state.STATE_ENV: str(tmp_path)}
    result = run([str(BIN / "chaos"), "inject", "network.latency", "--target", "edge_gateway",
                  "--set", "latency_ms=-5"], env)
    _one_line_exit_2(result)
    assert "latency_ms" in result.stderr
    _one_line_exit_2(run([str(BIN / "chaos"), "inject", "http.rate", "--target", "payment_gateway",
                          "--for", "0"], env))
    _one_line_exit_2(run([str(BIN / "chaos"), "inject", "network.down"], env))  # no --target
    _one_line_exit_2(run([str(BIN / "chaos"), "heal"], env))
    _one_line_exit_2(run([str(BIN / "chaos"), "heal", "no-such-record"], env))
    assert not (tmp_path / "active").exists()  # nothing was recorded, so nothing was injected


def test_cli_status_with_no_faults(tmp_path):
    env = {state.STATE_ENV: str(tmp_path)}
    assert "ACTIVE FAULTS: none" in run([str(BIN / "chaos"), "status"], env).stdout
    assert json.loads(run([str(BIN / "chaos"), "status", "--json"], env).stdout)["faults"] == []


# ---------------------------------------------------------------- the registry's pure parts

def _record(**overrides):
    values = {"id": "network.down-auth-abc123", "run_id": "run-1", "fault": "network.down", "target": "auth",
              "params": {}, "owner": owner_token(), "undo": {"api": "127.0.0.1:1", "proxy": "auth"},
              "injected_at": 100.0}
    return state.Record(**{**values, **overrides})


def _dead_owner() -> str:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    token = owner_token(child.pid)
    child.wait(timeout=10)
    return token


def test_expiry_and_owner_decide_staleness():
    alive = {owner_token(): True}.get
    assert not registry.is_expired(_record(), now=1e12)  # no expiry: never expires
    assert registry.is_expired(_record(expires_at=200.0), now=200.0)
    assert not registry.is_expired(_record(expires_at=200.0), now=199.9)
    assert not registry.is_stale(_record(expires_at=200.0), 150.0, lambda owner: bool(alive(owner)))
    assert registry.is_stale(_record(expires_at=200.0), 250.0, lambda owner: True)
    assert registry.is_stale(_record(owner="1:x"), 150.0, lambda owner: bool(alive(owner)))
    assert _record(expires_at=200.0).left_s(150.0) == 50.0 and _record().left_s(150.0) is None


def test_a_dead_owner_is_seen_as_dead():
    from harness.stack import owner_alive

    assert owner_alive(owner_token())
    assert not owner_alive(_dead_owner())
    assert registry.is_stale(_record(owner=_dead_owner()), time.time(), owner_alive)


def test_records_round_trip_on_disk_and_match_by_id_or_name(tmp_path):
    first, second = _record(), _record(id="network.down-auth-def456", injected_at=50.0, expires_at=99.0)
    state.save(first, tmp_path)
    state.save(second, tmp_path)
    assert [r.id for r in state.records(tmp_path)] == [second.id, first.id]  # oldest first
    assert state.load(first.id, tmp_path) == first
    assert registry.matches(first, "network.down") and registry.matches(first, first.id)
    assert not registry.matches(first, "network.latency")
    (tmp_path / "active" / "broken.json").write_text("{not json")
    assert len(state.records(tmp_path)) == 2  # an unreadable file is skipped, not fatal
    state.delete(first.id, tmp_path)
    state.delete(first.id, tmp_path)  # twice: harmless
    assert [r.id for r in state.records(tmp_path)] == [second.id]


def test_the_recorder_keeps_a_record_while_active_and_journals_every_entry(tmp_path):
    fault = check("network.down", "auth")  # its undo state needs no stack: a proxy's name
    journal = FaultJournal(observers=[registry.Recorder("20270115T080000-00000a", "42:1", tmp_path)])
    fault.journal = journal
    journal.record("inject", fault)
    (record,) = state.records(tmp_path)
    assert (record.run_id, record.fault, record.target, record.owner) == (
        "20270115T080000-00000a", "network.down", "auth", "42:1")
    assert record.undo == {"proxy": "auth"} and fault.record_id == record.id
    journal.record("landed", fault)
    journal.record("heal", fault)
    assert state.records(tmp_path) == [] and fault.record_id is None
    lines = state.journal("20270115T080000-00000a", tmp_path)
    assert [line["action"] for line in lines] == ["inject", "landed", "heal"]
    assert {line["record"] for line in lines} == {record.id}


def test_heal_after_does_nothing_when_the_record_is_already_healed(tmp_path):
    result = subprocess.run([sys.executable, "-m", "harness.faults.registry", "heal-after", "gone-record", "0"],
                            cwd=ROOT, env={state.STATE_ENV: str(tmp_path), "PATH": ""},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    bad = subprocess.run([sys.executable, "-m", "harness.faults.registry", "heal-later"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_time_boxes_are_bounded():
    registry.check_for(None)
    registry.check_for(0.5)
    for bad in (0, -1, detached.MAX_FOR_S + 1):
        with pytest.raises(HarnessError, match="--for must be between"):
            registry.check_for(bad)


def test_faults_that_cannot_be_healed_from_a_record_are_journaled_but_not_recorded(tmp_path):
    from harness.faults.base import Fault
    from harness.faults.base import Params as NoParams

    class LocalOnly(Fault):
        name, family, description, Params = "test.local", "test", "no undo_from", NoParams
        targets_in = classmethod(lambda cls, system: ("x",))

        def _apply(self) -> None: ...

        def _undo(self) -> None: ...

        def _landed(self) -> bool:
            return True

    assert not LocalOnly.recordable()
    assert all(cls.recordable() for cls in CATALOG.values() if cls.family in FAMILIES)
    fault = LocalOnly(
        None, "x", FaultJournal(observers=[registry.Recorder("20270115T080000-00000b", "42:1", tmp_path)])
    )
    fault.inject().heal()
    assert state.records(tmp_path) == []
    lines = state.journal("20270115T080000-00000b", tmp_path)
    assert [line["action"] for line in lines] == ["inject", "landed", "heal"]


def test_a_clock_skew_beyond_an_hour_is_a_one_line_error_and_offsets_are_signed():
    from harness.faults.auth import _offset

    with pytest.raises(HarnessError, match="bad value for skew_s"):
        check("auth.clock_skew", "auth_service", skew_s=3601)
    with pytest.raises(HarnessError, match="bad value for skew_s"):
        check("auth.clock_skew", "auth_service", skew_s=-3601)
    with pytest.raises(HarnessError, match="can't target 'api_gateway'"):
        check("auth.clock_skew", "api_gateway", skew_s=3)
    assert [_offset(s) for s in (-120, 0, 62)] == ["-120", "+0", "+62"]
    assert check("auth.future_dated_token", "auth_service", ahead_s=60).params.ahead_s == 60
    assert "auth.clock_skew" in CATALOG and CATALOG["auth.clock_skew"].recordable()


def test_a_fault_of_another_host_identity_is_judged_by_its_expiry_only():
    """Catches a reaper that judges a record's owner by its own /proc when the record was made
    in another PID namespace sharing the state dir (a CI job in a container): there the owner's
    pid names nothing, so its live fault would be healed under it. Expiry still counts."""
    record = state.Record("network.down-auth-00000a", "20270115T080000-00000a", "network.down", "auth", {},
                             "42:1", {}, expires_at=None, host="ci-job/boot/4026532001")
    dead = lambda owner: False  # noqa: E731  (no such pid here)
    assert not registry.is_stale(record, 0.0, dead, here="laptop/boot/4026531836")
    assert registry.is_stale(record, 0.0, dead, here="ci-job/boot/4026532001")
    record.expires_at = 10.0
    assert registry.is_stale(record, 11.0, dead, here="laptop/boot/4026531836")
    older = state.Record("network.down-auth-00000b", "20270115T080000-00000a", "network.down", "auth", {},
                            "42:1", {})  # written before records named a host: judged by pid, as then
    assert registry.is_stale(older, 0.0, dead, here="laptop/boot/4026531836")


@pytest.mark.parametrize("table", ["orders; DROP TABLE orders", "Orders", "", "x" * 64])
def test_a_table_lock_takes_only_a_plain_table_name(table):
    """Catches a table name that reaches the LOCK statement unchecked (quoted or not, a name the
    shop's schema can't have is refused before anything is touched, in one line)."""
    with pytest.raises(HarnessError, match="fault data.table_lock: bad value for table"):
        check("data.table_lock", "postgres", table=table)
    assert check("data.table_lock", "postgres").params.table == "orders"
