"""Heals from records act on their own run only, at its addresses now: a recorded container id
or host port that has come to name another run's container is never used, a heal that could not
reach its target keeps its record (and `chaos heal` says so), and the `--for` healer does not
outlive a fault healed elsewhere."""

import os
import secrets
import subprocess
import time

import docker.errors
import pytest

from harness import detached, state
from harness.datastores import connect_database
from harness.faults import registry
from harness.stack import OWNER_LABEL, RUN_LABEL, owner_token
from tests.conftest import BIN, run

pytestmark = pytest.mark.integration

FILL = "/data/.chaos-fill-0ther0un"  # a fill file's name, as the disk fault writes them


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    """This test's own fault records, apart from any other run's (subprocesses inherit it)."""
    monkeypatch.setenv(state.STATE_ENV, str(tmp_path))
    return tmp_path


@pytest.fixture
def other_run(stack):
    """A container of another run (labelled so, owned by this process so a reaper removes it
    if this test dies), holding a file the size of a fill file where the disk fault writes."""
    container = stack.client.containers.run(
        stack.docker_container("alert_sink").image.id, ["600"], entrypoint=["sleep"], detach=True,
        network_mode="none", name=f"chaos-test-other-{secrets.token_hex(3)}",
        labels={RUN_LABEL: f"other-{secrets.token_hex(3)}", OWNER_LABEL: owner_token()})
    try:
        assert container.exec_run(["sh", "-c", f"mkdir -p /data && touch {FILL}"], user="root").exit_code == 0
        yield container
    finally:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass  # removed by a heal that should have refused (the test fails for it)


def _record(stack, fault: str, target: str, undo: dict) -> state.Record:
    record = state.Record(state.new_id(fault, target), stack.run_id, fault, target, {},
                             stack.docker_container("toxiproxy").labels[OWNER_LABEL], undo)
    state.save(record)
    return record


def _chaos(*args: str) -> subprocess.CompletedProcess:
    return run([str(BIN / "chaos"), *args], timeout=180)


def _exists(container, path: str) -> bool:
    return container.exec_run(["test", "-e", path]).exit_code == 0


def test_a_recorded_container_id_of_another_run_is_never_touched(stack, other_run):
    """Catches heals that trust a recorded container id: a disk heal that runs `rm -f` in
    whatever container has the id, and a config heal that removes a "replica" whose id now
    names another run's container."""
    # A disk record as they were written before (with the container's id): healed on the
    # record's own run's node-A, while the other run's file stays.
    disk = _record(stack, "disk.fill", "api_gateway", {"container_id": other_run.id, "path": FILL})
    assert registry.heal(disk) == registry.HEALED
    assert _exists(other_run, FILL), "the heal deleted a file in another run's container"
    # The config fault's replica is kept by id (it is the fault's own): its run label must match.
    replica = _record(stack, "config.missing_env", "api_gateway", {"container_id": other_run.id})
    result = _chaos("heal", replica.id)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"chaos: {replica.id}") and "kept" in line
    assert other_run.labels[RUN_LABEL] in line and stack.run_id in line  # names both runs
    other_run.reload()
    assert other_run.status == "running"
    assert [r.id for r in state.records()] == [replica.id]
    state.delete(replica.id)


def _row(stack, sku: str) -> tuple:
    with connect_database(stack) as conn:
        return conn.execute("SELECT name, price_cents, stock FROM products WHERE sku = %s", [sku]).fetchone()


def _active_kid(stack) -> str:
    with connect_database(stack) as conn:
        return conn.execute("SELECT kid FROM signing_keys WHERE active").fetchone()[0]


def test_a_heal_that_fails_while_the_run_exists_keeps_its_record_and_heals_later_at_the_new_port(stack, chaos):
    """Catches a heal that swallows psycopg.OperationalError and counts the fault as healed
    (its record deleted, the row left corrupt, the rotated key left active), and a heal that
    reuses the database port stored at inject time after Postgres restarted on a new one."""
    before_row = _row(stack, "sku-4")
    before_kid = _active_kid(stack)
    for name, target, setting in (("data.null_fields", "postgres", "sku=sku-4"),
                                  ("auth.key_rotation", "auth_service", "subject=x")):
        result = _chaos("inject", name, "--target", target, "--run", stack.run_id, "--set", setting)
        assert result.returncode == 0, result.stderr
    records = {r.fault: r for r in state.records()}
    port_at_inject = stack.endpoint("postgres").port
    outage = chaos.inject("process.db_outage", "postgres")
    for name in ("data.null_fields", "auth.key_rotation"):
        result = _chaos("heal", name)
        assert result.returncode == 1, result.stdout
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"chaos: {records[name].id}") and "kept" in line
    assert {r.id for r in state.records() if r.fault != "process.db_outage"} == {r.id for r in records.values()}
    outage.heal()  # Postgres back, published anew
    assert stack.endpoint("postgres").port != port_at_inject, "precondition: the engine gave Postgres a new port"
    for name in ("data.null_fields", "auth.key_rotation"):
        result = _chaos("heal", name)
        assert result.returncode == 0 and result.stdout.startswith("healed 1 fault(s)"), result.stderr
    assert state.records() == []
    assert _row(stack, "sku-4") == before_row
    assert _active_kid(stack) == before_kid
    outcomes = [(e["record"], e.get("outcome")) for e in state.journal(stack.run_id)
                if e["action"] == "heal" and e.get("by") == "heal"]
    assert sorted(outcomes) == sorted((r.id, registry.HEALED) for r in records.values())


def _exit_status(pid: int, bound_s: float) -> int | None:
    """The healer's exit status once it exits (it is this process's child), None if it still
    runs after bound_s."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.1)
    return None


def test_the_for_healer_exits_once_its_record_is_healed_elsewhere(tmp_path):
    """Catches a `--for` healer that sleeps out its whole time box (up to a day) after its
    fault was healed by `chaos heal`, a teardown or the reaper."""
    record = state.Record("network.latency-edge_gateway-000000", "run-of-nobody", "network.latency",
                             "edge_gateway", {}, "1:x", {"proxy": "edge_gateway", "toxic": "chaos_latency_downstream"},
                             expires_at=time.time() + 3600)
    state.save(record)
    pid = detached.spawn_healer(record.id, 3600)
    try:
        assert os.waitpid(pid, os.WNOHANG) == (0, 0), "the healer exited while its record was active"
        state.delete(record.id)  # healed elsewhere
        assert _exit_status(pid, 30) == 0, "the healer did not exit after its record was gone"
    finally:
        try:
            if os.waitpid(pid, os.WNOHANG) == (0, 0):
                os.kill(pid, 9)
                os.waitpid(pid, 0)
        except ChildProcessError:
            pass  # exited and reaped above


PLAIN_TOPOLOGY = """\
name: plain
entry: [web]
services:
  web:
    image: python
    port: 8000
    readiness: {http: {path: /health}}
"""


def test_a_heal_from_records_reads_the_runs_topology_not_the_healers(stack, tmp_path):
    """Catches a heal from a record that resolves its service or proxy in the topology active where
    `chaos heal` runs (another system's file, which knows neither rabbitmq nor the payment proxy):
    the heal would fail, or leave the broker paused and the vendor's edge down."""
    for fault, target in (("process.pause", "rabbitmq"), ("network.down", "payment")):
        result = _chaos("inject", fault, "--target", target, "--run", stack.run_id)
        assert result.returncode == 0, result.stderr
    plain = tmp_path / "plain.yaml"
    plain.write_text(PLAIN_TOPOLOGY, encoding="utf-8")
    result = run([str(BIN / "chaos"), "heal", "--all", "--topology", str(plain)], timeout=180)
    assert result.returncode == 0 and result.stdout.startswith("healed 2 fault(s)"), result.stderr
    assert state.records() == []
    assert stack.docker_container("rabbitmq").status == "running"
    assert stack.toxiproxy.get_proxy("payment").enabled


def test_inject_judges_the_target_by_the_runs_topology_not_the_injectors(stack, tmp_path):
    """Catches `chaos inject` judging its target by the topology active where it runs (another
    system's file, with no proxy at all): the shop run's `payment` proxy refused, and a target the
    run does not have answered with that other file's targets instead of the run's."""
    plain = tmp_path / "plain.yaml"
    plain.write_text(PLAIN_TOPOLOGY, encoding="utf-8")
    cut = _chaos("inject", "network.down", "--target", "payment", "--run", stack.run_id, "--topology", str(plain))
    try:
        assert cut.returncode == 0, cut.stderr
        assert not stack.toxiproxy.get_proxy("payment").enabled
    finally:
        assert _chaos("heal", "--all").returncode == 0
    assert state.records() == []
    refused = _chaos("inject", "network.down", "--target", "web", "--run", stack.run_id, "--topology", str(plain))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "can't target 'web': choose one of " in refused.stderr
    assert set(refused.stderr.split("choose one of ")[1].strip().split(", ")) == set(stack.topology.proxies)
    assert state.records() == []  # refused before anything was touched
