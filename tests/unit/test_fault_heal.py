"""What a fault's record keeps (names, never addresses) and how a heal from records judges and
says its outcomes, without an engine."""

import json
import time
from types import SimpleNamespace

import pytest

from harness import detached
from harness import state as harness_state
from harness.errors import HarnessError
from harness.faults import CATALOG, check, registry
from harness.faults.base import check_run, first_line
from harness.stack import RUN_LABEL
from harness.topology import active
from tests.conftest import BIN, run
from tests.unit.test_cli import NO_ENGINE, _one_line_exit_2

ADDRESSES = {"api", "url", "dsn", "port", "container", "container_id", "health_url"}
# What inject would have set before the record is written, for faults whose undo state is
# empty until they applied something.
APPLIED = {
    "data.null_fields": {"original": {"name": "x", "price_cents": 1, "stock": 2}},
    "auth.clock_skew": {"skewed": True},
    "auth.key_rotation": {"previous": "kid-1"},
}
REQUIRED = {"message.duplicate": {"order_id": "o-1"}, "message.out_of_order": {"order_id": "o-1"}}
# The config fault keeps the id of the replica it made (its own container, checked by run label).
BY_NAME = sorted(name for name, cls in CATALOG.items() if cls.recordable() and cls.family != "config")


@pytest.mark.parametrize("name", BY_NAME)
def test_a_record_keeps_names_not_container_ids_or_host_ports(name):
    """Catches a record that keeps an address (a container id, a published port, a URL or DSN):
    by heal time it can name another run's container or database."""
    fault = check(name, CATALOG[name].targets_in(active())[0], **REQUIRED.get(name, {}))
    for attribute, value in APPLIED.get(name, {}).items():
        setattr(fault, attribute, value)
    state = fault.undo_state()  # no stack in a unit test: building the state must not need one
    assert not set(state) & ADDRESSES, state
    assert "127.0.0.1" not in json.dumps(state)
    if name in APPLIED:
        assert state, "an applied fault recorded nothing to undo"


def _container(run_id):
    return SimpleNamespace(name="chaos-x-gateway", labels={RUN_LABEL: run_id} if run_id else {})


def test_a_container_of_another_run_is_refused_naming_both_runs():
    """Catches a heal that acts on a container whatever run its label names."""
    own = _container("run-a")
    assert check_run(own, "run-a") is own
    for other in ("run-b", None):
        with pytest.raises(HarnessError) as refused:
            check_run(_container(other), "run-a")
        assert f"belongs to run {other}" in str(refused.value) and "run run-a" in str(refused.value)


def test_errors_are_reported_in_one_line():
    """Catches a failed heal reported with psycopg's multi-line message (one line per failure)."""
    assert first_line(RuntimeError("connection failed\nIs the server running?\n")) == "connection failed"
    assert first_line(RuntimeError("")) == "RuntimeError"


def test_the_healer_sleeps_in_slices():
    """Catches a `--for` healer that sleeps its whole time box in one go (it would not see its
    record healed elsewhere), or past its expiry."""
    assert detached.next_wait(3600, 2.0) == 2.0
    assert detached.next_wait(0.5, 2.0) == 0.5
    assert detached.next_wait(-1, 2.0) == 0.0


def _unhealable(tmp_path, n):
    """Records no heal can undo (their fault is not in the catalog): a heal fails before any
    engine is asked."""
    found = [harness_state.Record(f"test.gone-x-00000{i}", "run-x", "test.gone", "x", {}, "1:x", {},
                             injected_at=time.time() + i) for i in range(n)]
    for record in found:
        harness_state.save(record, tmp_path)
    return found


def test_a_failed_heal_keeps_its_record_and_the_rest_are_still_tried(tmp_path):
    """Catches a heal that deletes a record it did not heal, or stops at the first failure."""
    kept = _unhealable(tmp_path, 2)
    report = registry.heal_records(root=tmp_path, client=object())  # never asked: the fault is unknown
    assert (report.healed, report.gone) == ([], [])
    assert [line.split(" ")[-1] for line in report.failed] == ["'test.gone'", "'test.gone'"]
    assert [r.id for r in harness_state.records(tmp_path)] == [r.id for r in kept]
    with pytest.raises(HarnessError, match="some faults did not heal"):
        registry.heal_all(root=tmp_path, client=object())


def test_chaos_heal_without_an_engine_is_one_line_and_keeps_every_record(tmp_path):
    """Catches `chaos heal` with no engine that prints a traceback or a line per record, or
    forgets records it could not heal."""
    kept = _unhealable(tmp_path, 2)
    result = run([str(BIN / "chaos"), "heal", "--all"], {**NO_ENGINE, harness_state.STATE_ENV: str(tmp_path)})
    _one_line_exit_2(result)
    assert len(harness_state.records(tmp_path)) == len(kept)


def test_healed_and_run_gone_are_told_apart():
    """Catches a report that counts records of gone runs as healed."""
    report = registry.HealReport()
    report.add(SimpleNamespace(id="a"), registry.HEALED)
    report.add(SimpleNamespace(id="b"), registry.RUN_GONE)
    assert (report.healed, report.gone) == (["a"], ["b"])


def test_a_replica_is_not_taken_for_its_service():
    """Catches a heal that acts in a config fault's replica (it carries its service's labels)
    and leaves the service itself as the fault made it."""
    from harness.faults.base import REPLICA_LABEL, run_container

    replica = SimpleNamespace(
        name="chaos-x-gateway-replica-1", labels={RUN_LABEL: "run-a", REPLICA_LABEL: "api_gateway"}
    )
    stack = SimpleNamespace(run_id="run-a", docker_container=lambda service: replica)
    with pytest.raises(HarnessError, match="resolved to the replica"):
        run_container(stack, "api_gateway")
    service = _container("run-a")
    assert run_container(SimpleNamespace(run_id="run-a", docker_container=lambda s: service), "api_gateway") is service
