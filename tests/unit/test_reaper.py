import subprocess
import sys

from harness.stack import OWNER_LABEL, RUN_LABEL, new_run_id, owner_alive, owner_token, stale_runs


def _dead_token() -> str:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    token = owner_token(child.pid)
    child.wait()
    return token


def test_own_process_is_alive():
    assert owner_alive(owner_token())


def test_exited_process_is_dead():
    assert not owner_alive(_dead_token())


def test_reused_pid_with_another_start_time_is_dead():
    pid, _, start = owner_token().partition(":")
    assert not owner_alive(f"{pid}:{int(start) + 12345}")


def test_stale_runs_are_those_whose_owner_is_gone():
    dead = _dead_token()
    labels = [
        {RUN_LABEL: "old", OWNER_LABEL: dead},
        {RUN_LABEL: "old", OWNER_LABEL: dead},
        {RUN_LABEL: "live", OWNER_LABEL: owner_token()},
        {RUN_LABEL: "mine", OWNER_LABEL: dead},
        {RUN_LABEL: "compose", OWNER_LABEL: "compose"},
        {"unrelated": "x"},
    ]
    assert stale_runs(labels, keep="mine") == {"old"}


def test_run_ids_are_unique_and_sortable():
    ids = [new_run_id() for _ in range(50)]
    assert len(set(ids)) == 50
    assert all(len(i.split("-")[0]) == 15 for i in ids)
