"""Safe on a shared daemon: a run is removed only by its own checkout, or once it is provably
abandoned (its owner dead on this host identity, or its lease expired from another).

Real daemon, real processes: `chaos up` SIGKILLed mid-start, a kept stack of another state
directory, two pytest sessions at once with one in its own PID namespace. Never `chaos down
--all` here: other people's stacks share this daemon.
"""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from harness import gameday, ownership
from harness import state as harness_state
from harness.engine import connect
from harness.faults.attach import attach
from harness.stack import RUN_LABEL, daemon_labels
from tests.conftest import BIN, ROOT, run

pytestmark = pytest.mark.integration

CHAOS = str(BIN / "chaos")
QUICK_SCENARIO = "inventory_null"  # one of the shortest scenarios: the sessions' stacks are what is tested


def _env(state: Path) -> dict[str, str]:
    return {harness_state.STATE_ENV: str(state)}


def _objects(client, run_id: str) -> int:
    selector = {"label": f"{RUN_LABEL}={run_id}"}
    return (len(client.containers.list(all=True, sparse=True, filters=selector))
            + len(client.networks.list(filters=selector)) + len(client.volumes.list(filters=selector)))


def _containers(client, run_id: str) -> int:
    return len(client.containers.list(all=True, sparse=True, filters={"label": f"{RUN_LABEL}={run_id}"}))


def _run_of(client, state: Path, containers: int, timeout_s: float = 120, process=None) -> str:
    """The run a process with this state directory is starting, once it has `containers`
    containers (bounded; fails early when the process ended)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process is None or process.poll() is None, f"the process ended ({process.returncode}) before its stack"
        runs = ownership.runs_of_state(ownership.runs_from_labels(daemon_labels(client)).values(),
                                       ownership.state_identity(state))
        found = [r for r in runs if _containers(client, r) >= containers]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no run of {state} with {containers} containers within {timeout_s}s")


def _toxics(stack, proxy: str) -> list[dict]:
    return httpx.get(f"{stack.endpoint('toxiproxy').url}/proxies/{proxy}/toxics", timeout=5).json()


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory):
    """A kept stack of another checkout (its own state directory), started by a `chaos up` that
    follows one SIGKILLed half-way through its start. Removed at the end by its own checkout."""
    state = tmp_path_factory.mktemp("elsewhere-state")
    client = connect()
    first = subprocess.Popen([CHAOS, "up"], cwd=ROOT, env={**os.environ, **_env(state)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        half = _run_of(client, state, containers=2, process=first)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    half_objects = _objects(client, half)
    second = run([CHAOS, "up"], env=_env(state), timeout=300)
    up = re.search(r"^up: run (\S+)", second.stdout, re.M)
    try:
        yield {"state": state, "half": half, "half_objects": half_objects, "up": second,
               "run_id": up.group(1) if up else None, "client": client}
    finally:
        run([CHAOS, "heal", "--all"], env=_env(state))
        run([CHAOS, "down", "--reports", str(tmp_path_factory.mktemp("reports"))], env=_env(state))


def test_up_after_a_killed_up_removes_the_half_stack_and_starts_clean(elsewhere):
    """Bug caught: a `chaos up` killed mid-start leaves a stack owned by no live process that
    nothing reaps, and the next `chaos up` reports it as "already up"."""
    client, up = elsewhere["client"], elsewhere["up"]
    assert elsewhere["half_objects"] >= 2  # the kill left a half stack behind...
    assert up.returncode == 0, up.stderr
    assert elsewhere["run_id"] not in (None, elsewhere["half"]), up.stdout  # ...the next up started anew
    assert f"left by run {elsewhere['half']}" in up.stderr  # ...after reaping it
    assert _objects(client, elsewhere["half"]) == 0


def test_a_kept_stack_of_another_checkout_survives_down_and_heal_all_here(elsewhere, tmp_path):
    """Bugs caught: `chaos down` without --run removes every chaos-harness run on the daemon
    (another checkout's kept stack among them); `chaos heal --all` heals faults other checkouts
    injected; a command without --run picks another checkout's kept stack."""
    client, run_id, here = elsewhere["client"], elsewhere["run_id"], tmp_path / "here-state"
    assert run_id, elsewhere["up"].stdout
    injected = run([CHAOS, "inject", "network.latency", "--target", "payment", "--set", "latency_ms=300"],
                   env=_env(elsewhere["state"]))
    assert injected.returncode == 0, injected.stderr
    kept = attach(run_id, client)
    objects = _objects(client, run_id)

    healed = run([CHAOS, "heal", "--all"], env=_env(here))
    assert healed.returncode == 0 and healed.stdout.startswith("healed 0 fault"), healed.stdout + healed.stderr
    assert len(_toxics(kept, "payment")) == 1
    assert [r.run_id for r in harness_state.records(elsewhere["state"])] == [run_id]

    down = run([CHAOS, "down", "--reports", str(tmp_path / "reports")], env=_env(here))
    assert down.returncode == 0, down.stderr
    assert _objects(client, run_id) == objects
    assert len(_toxics(attach(run_id, client), "payment")) == 1

    status = run([CHAOS, "status", "--json"], env=_env(here))
    assert status.returncode == 0, status.stderr
    assert (json.loads(status.stdout).get("run") or {}).get("run_id") != run_id


def test_down_removes_the_stack_even_when_the_game_day_report_cannot_be_written(elsewhere, tmp_path):
    """Bug caught: a torn journal line makes writing the game-day report raise, and `chaos down`
    removes nothing (the kept stack stays up with no word of why). Last in this module: it
    removes the module's stack."""
    client, run_id, state = elsewhere["client"], elsewhere["run_id"], elsewhere["state"]
    assert run_id, elsewhere["up"].stdout
    deadline = time.monotonic() + 30
    while not gameday.samples_path(run_id, state).exists():  # the recorder `chaos up` started
        assert time.monotonic() < deadline, "the game-day recorder wrote no samples"
        time.sleep(0.2)
    journal = state / "journal" / f"{run_id}.jsonl"
    journal.parent.mkdir(parents=True, exist_ok=True)
    with journal.open("a", encoding="utf-8") as out:
        out.write('{"ts": 1, "action": "inj')  # a line cut short by a kill
    down = run([CHAOS, "down", "--reports", str(tmp_path / "reports")], env=_env(state))
    assert down.returncode == 1, down.stdout + down.stderr
    lines = [line for line in down.stderr.splitlines() if line.startswith("chaos:")]
    assert len(lines) == 1 and "game-day report" in lines[0] and "Traceback" not in down.stderr, down.stderr
    assert f"removed 1 run(s): {run_id}" in down.stdout
    assert _objects(client, run_id) == 0


def test_two_sessions_one_in_its_own_pid_namespace_leave_each_other_alone(tmp_path):
    """Bug caught: the reaper judges every run by pid:starttime, and a pid of another PID
    namespace means nothing here: the namespaced session's start removes the other session's
    stack mid-start, and this namespace's reaper judges the namespaced session's stack
    abandoned. Each CI job has its own checkout, so each session its own state directory."""
    client = connect()

    def session(name: str, prefix: tuple[str, ...] = ()) -> tuple[subprocess.Popen, Path]:
        state, reports = tmp_path / name / "state", tmp_path / name / "reports"
        command = [*prefix, str(BIN / "pytest"), "scenarios/", "-k", QUICK_SCENARIO, "-q",
                   "-p", "no:cacheprovider", f"--chaos-reports={reports}"]
        log = open(tmp_path / f"{name}.log", "wb")
        return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **_env(state)}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True), state

    outer, outer_state = session("outer")
    inner = None
    try:
        outer_run = _run_of(client, outer_state, containers=2, process=outer)
        inner, inner_state = session("inner", ("unshare", "--pid", "--fork", "--mount-proc"))
        inner_run = _run_of(client, inner_state, containers=2, process=inner)
        # The namespaced session's start has reaped by now (before its first container)...
        assert _objects(client, outer_run) > 0
        # ...and this namespace's reaper would not take the namespaced session's stack.
        assert inner_run not in ownership.stale_runs(daemon_labels(client))
        assert outer.wait(timeout=300) == 0, (tmp_path / "outer.log").read_text()[-3000:]
        assert inner.wait(timeout=300) == 0, (tmp_path / "inner.log").read_text()[-3000:]
    finally:
        for process in (outer, inner):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)  # a session removes its own stack on Ctrl-C
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    assert _objects(client, outer_run) == 0 and _objects(client, inner_run) == 0
