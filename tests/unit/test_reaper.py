import subprocess
import sys

from harness.stack import new_run_id, owner_alive, owner_token


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


def test_a_live_pid_whose_start_time_proc_hides_is_alive(monkeypatch):
    """Bug caught: under /proc hidepid another user's live owner has no readable start time, and
    a reaper that compares "?" with the label's start time removes that user's running stack."""
    from harness import ownership

    token = owner_token()
    monkeypatch.setattr(ownership, "_process_start", lambda pid: "?")
    assert owner_alive(token)


def test_run_ids_are_unique_and_sortable():
    ids = [new_run_id() for _ in range(50)]
    assert len(set(ids)) == 50
    assert all(len(i.split("-")[0]) == 15 for i in ids)


def test_a_chaos_up_owner_names_its_process():
    """Bug caught: the owner label of a stack `chaos up` starts reads as no process, so a start
    killed half-way is never reaped (or, read as a bare pid by older reapers, a kept stack is
    reaped once `chaos up` exits: the name in front keeps those away)."""
    from harness.ownership import KEPT_OWNER, up_owner_token

    token = up_owner_token()
    assert token.startswith(f"{KEPT_OWNER}:") and not token.partition(":")[0].isdigit()
    assert owner_alive(token)
    assert not owner_alive(f"{KEPT_OWNER}:{_dead_token()}")
