"""Nothing of a run is left behind: after a pass, a failure, Ctrl-C, and (by the next start's
reaper) after a SIGKILL."""

import os
import signal
import subprocess
import sys
import time

import pytest

from harness.engine import connect
from harness.stack import RUN_LABEL, Stack, reap
from tests.conftest import BIN, ROOT

pytestmark = pytest.mark.integration


def _objects(client, run_id):
    selector = {"label": f"{RUN_LABEL}={run_id}"}
    return (len(client.containers.list(all=True, filters=selector))
            + len(client.networks.list(filters=selector)) + len(client.volumes.list(filters=selector)))


def _wait_for_containers(client, run_id, count, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(client.containers.list(filters={"label": f"{RUN_LABEL}={run_id}"})) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} never had {count} containers")


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


def test_ctrl_c_during_a_scenario_leaves_nothing(tmp_path):
    client = connect()
    before = {c.labels[RUN_LABEL] for c in client.containers.list(all=True, filters={"label": RUN_LABEL})}
    child = subprocess.Popen([str(BIN / "pytest"), "scenarios/", "-k", "payment_outage", "-p", "no:cacheprovider"],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        run_id = None
        while run_id is None and time.monotonic() < deadline:
            runs = {c.labels[RUN_LABEL] for c in client.containers.list(filters={"label": RUN_LABEL})} - before
            run_id = next(iter(runs), None)
            time.sleep(0.2)
        assert run_id, "the scenario's stack never appeared"
        _wait_for_containers(client, run_id, 5)
        child.send_signal(signal.SIGINT)
        child.wait(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert _objects(client, run_id) == 0
