"""Nothing of a run is left behind: after a pass, a failure, Ctrl-C, SIGINT then SIGTERM (a CI
cancel), SIGTERM to `chaos run`, and (by the next start's reaper) after a SIGKILL. A test finds
its session's run by that session's own state directory, never by what else runs on the daemon."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.engine import connect
from harness.stack import RUN_LABEL, Stack, reap
from tests.conftest import BIN, ROOT

pytestmark = pytest.mark.integration


def _objects(client, run_id):
    selector = {"label": f"{RUN_LABEL}={run_id}"}
    return (len(client.containers.list(all=True, filters=selector))
            + len(client.networks.list(filters=selector)) + len(client.volumes.list(filters=selector)))


def test_nothing_left_after_a_failure_inside_the_block():
    client = connect()
    with pytest.raises(RuntimeError):
        with Stack() as stack:
            run_id = stack.run_id
            assert _objects(client, run_id) >= 6
            raise RuntimeError("scenario failed")
    assert _objects(client, run_id) == 0


SCRIPT = """
import sys, time
from harness.stack import Stack
stack = Stack(run_id=sys.argv[1]).start()
print("up", flush=True)
time.sleep(600)
"""


def test_sigkill_leftovers_are_reaped_by_the_next_start():
    client = connect()
    run_id = "killed-" + str(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", SCRIPT, run_id], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert child.stdout.readline().strip() == "up"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert _objects(client, run_id) >= 6  # SIGKILL left the whole stack behind...
    assert run_id in reap(client)  # ...and the start-up reaper removes it
    assert _objects(client, run_id) == 0


def _run_with_a_fault(state, child, timeout_s=150):
    """The run of the session `child` once it has injected its first fault: found by its own
    state directory's journal, never by what else runs on the (shared) daemon."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = sorted((state / "journal").glob("*.jsonl")) if (state / "journal").is_dir() else []
        if found:
            return found[0].stem
        assert child.poll() is None, f"the session ended (exit {child.returncode}) before injecting a fault"
        assert time.monotonic() < deadline, f"no fault injected within {timeout_s}s"
        time.sleep(0.1)


def test_ctrl_c_during_a_scenario_leaves_nothing(tmp_path):
    client = connect()
    state = tmp_path / "state"
    child = subprocess.Popen([str(BIN / "pytest"), "scenarios/", "-k", "payment_outage", "-p", "no:cacheprovider",
                              f"--chaos-reports={tmp_path / 'reports'}"], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "CHAOS_STATE_DIR": str(state)})
    try:
        run_id = _run_with_a_fault(state, child)
        child.send_signal(signal.SIGINT)
        child.wait(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert _objects(client, run_id) == 0


# A session of one test over the plugin's fixtures, with a fault whose heal waits at a gate the
# outer test opens: a heal that is still running when the signals come, for as long as needed.
GATED_SESSION = '''
import os, pathlib, time
from harness.faults import CATALOG
from harness.faults.network import Latency

DIR = pathlib.Path(os.environ["TEARDOWN_DIR"])


def _wait_for(path, timeout_s):
    deadline = time.monotonic() + timeout_s
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


class GatedHeal(Latency):
    """network.latency whose heal first waits (bounded) for the outer test's gate."""
    name = "test.gated_heal"

    def _undo(self):
        (DIR / "healing").touch()
        _wait_for(DIR / "gate", 60)
        super()._undo()


CATALOG[GatedHeal.name] = GatedHeal


def test_interrupted(stack, chaos):
    (DIR / "run").write_text(stack.run_id)
    chaos.inject("test.gated_heal", "payment", latency_ms=300)
    (DIR / "injected").touch()
    if os.environ["WHEN"] == "body":
        _wait_for(DIR / "gate", 120)  # the signals come while the fault is active
'''


def _wait_for_file(path, child, timeout_s=150):
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert child.poll() is None, f"the session ended (exit {child.returncode}) before {path.name}"
        assert time.monotonic() < deadline, f"no {path.name} within {timeout_s}s"
        time.sleep(0.1)


def _interrupt_twice(tmp_path, when, *options):
    """Runs GATED_SESSION, and once its fault's heal has begun (`heal`) or the fault is active
    (`body`), sends SIGINT and 1 s later SIGTERM, as a CI cancel does; then opens the gate.
    Returns the session's exit code, stderr, run id and state directory."""
    (tmp_path / "test_gated.py").write_text(GATED_SESSION)
    state = tmp_path / "state"
    err = tmp_path / "stderr"
    with open(err, "wb") as stderr:
        child = subprocess.Popen(
            [str(BIN / "pytest"), str(tmp_path / "test_gated.py"), "-q", "-p", "no:cacheprovider",
             f"--rootdir={tmp_path}", *options], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
            env={**os.environ, "TEARDOWN_DIR": str(tmp_path), "WHEN": when, "CHAOS_STATE_DIR": str(state)})
    try:
        _wait_for_file(tmp_path / ("healing" if when == "heal" else "injected"), child)
        child.send_signal(signal.SIGINT)
        time.sleep(1)  # the stimulus as CI sends it (7.5 s there), not a wait for a condition
        child.send_signal(signal.SIGTERM)
        (tmp_path / "gate").touch()
        code = child.wait(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    run_id = (tmp_path / "run").read_text()
    return code, err.read_text(errors="replace"), run_id, state


def _journal(state, run_id):
    from harness import state as harness_state

    path = state / "journal" / f"{run_id}.jsonl"
    actions = [json.loads(line)["action"] for line in path.read_text().splitlines()]
    return actions, harness_state.records(state)


@pytest.mark.parametrize("when", ["heal", "body"])
def test_sigint_then_sigterm_leave_nothing_of_an_owned_stack(tmp_path, when):
    """SIGINT then SIGTERM 1 s later, during the chaos fixture's heal (`heal`) or while the fault
    is active (`body`). Catches: the second signal raised inside the heal or the stack's removal
    (objects left), the heal of a fault on a stack about to be removed still run after an
    interrupt (`body`: the removal waits for it), a skipped heal not in the journal or its record
    left active, and an interrupted session that does not exit 130."""
    client = connect()
    code, stderr, run_id, state = _interrupt_twice(tmp_path, when)
    assert code == 130, stderr[-2000:]
    assert "SIGTERM noted: teardown in progress" in stderr
    assert _objects(client, run_id) == 0
    actions, active = _journal(state, run_id)
    assert active == []  # no fault recorded as active
    # during the heal: it finishes (the toxic was gone before the stack); on an active fault: skipped
    assert actions[-1] == ("heal" if when == "heal" else "heal_skipped"), actions


@pytest.mark.parametrize("when", ["heal", "body"])
def test_sigint_then_sigterm_leave_no_toxic_on_an_external_stack(tmp_path, when):
    """With --stack=external the heals always run, signals or not, and the stack stays. Catches
    a heal cut short by the second signal (`heal`: a toxic left on someone else's stack), heals
    skipped on an interrupt (`body`) on a stack the session does not remove, and an external
    stack removed."""
    import httpx

    client = connect()
    with Stack() as external:
        code, stderr, run_id, state = _interrupt_twice(tmp_path, when, "--stack=external",
                                                       f"--stack-run={external.run_id}")
        assert code == 130, stderr[-2000:]
        assert run_id == external.run_id
        proxies = httpx.get(f"{external.endpoint('toxiproxy').url}/proxies", timeout=5).json()
        assert {name: p["toxics"] for name, p in proxies.items() if p["toxics"]} == {}
        assert _objects(client, run_id) >= 6  # not the session's to remove
        actions, active = _journal(state, run_id)
        assert actions[-1] == "heal" and active == []


def test_chaos_run_passes_sigterm_to_its_pytest(tmp_path):
    """`chaos run` SIGTERMed (only it, not its process group, as a supervisor does): catches a
    CLI that dies on SIGTERM without passing it on (its pytest goes on, the stack stays until the
    scenario ends), one that does not wait for its pytest, and a wrong exit code (143)."""
    code, stderr, run_id = _sigterm_cli(tmp_path, "run", "payment_outage")
    assert code == 143, stderr[-2000:]
    assert _objects(connect(), run_id) == 0


def _sigterm_cli(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """`chaos ARGS` (its own state dir, reports in tmp_path) SIGTERMed alone once its scenario
    has a fault active: its exit code, its stderr and the run its pytest started."""
    state = tmp_path / "state"
    with open(tmp_path / "stderr", "wb") as stderr:
        child = subprocess.Popen([str(BIN / "chaos"), *args, f"--reports={tmp_path}"], cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=stderr,
                                 env={**os.environ, "CHAOS_STATE_DIR": str(state)})
    try:
        run_id = _run_with_a_fault(state, child)
        child.send_signal(signal.SIGTERM)
        code = child.wait(timeout=150)
    finally:
        if child.poll() is None:
            child.kill()
    return code, (tmp_path / "stderr").read_text(errors="replace"), run_id


INTERRUPTED_START = """
import sys
from harness import signals
from harness.stack import Stack
signals.install()  # as the plugin and the CLI do
try:
    Stack(run_id=sys.argv[1]).__enter__()
except KeyboardInterrupt:
    sys.exit(signals.exit_code())
print("up", flush=True)
"""


def test_sigint_then_sigterm_during_the_start_leave_nothing(tmp_path):
    """SIGINT once the first containers exist (the start threads busy with a wave), SIGTERM 1 s
    later. Catches an interrupted start that waits for the wave to be ready before removing,
    a second signal that cuts the removal short, and start threads that go on creating
    containers after the run was removed."""
    from harness.stack import new_run_id

    client = connect()
    run_id = new_run_id()
    child = subprocess.Popen([sys.executable, "-c", INTERRUPTED_START, run_id], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env={**os.environ, "CHAOS_STATE_DIR": str(tmp_path / "state")})
    try:
        deadline = time.monotonic() + 120
        while not client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"}):
            assert child.poll() is None and time.monotonic() < deadline, "the start made no container"
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        time.sleep(1)  # the stimulus as CI sends it, not a wait for a condition
        child.send_signal(signal.SIGTERM)
        code = child.wait(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert code == 130 and child.stdout.read() == ""  # interrupted, never up
    assert _objects(client, run_id) == 0


def test_chaos_matrix_passes_sigterm_to_its_workers(tmp_path):
    """`chaos matrix` SIGTERMed alone while its worker runs a cell with a fault: catches workers
    that are not told (they run on, their stacks stay), a CLI that does not wait for their
    teardown, and a wrong exit code (143)."""
    code, stderr, run_id = _sigterm_cli(tmp_path, "matrix", "--protection=retry", "--workers=1")
    assert code == 143, stderr[-2000:]
    assert _objects(connect(), run_id) == 0
