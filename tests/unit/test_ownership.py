"""The ownership judgements on synthetic labels: which runs a reaper may remove, which runs
`chaos down` means, which stack a command without --run means."""

import os

import pytest

from harness import ownership
from harness.errors import HarnessError
from harness.ownership import (
    HOST_LABEL,
    KEPT_LABEL,
    LEASE_LABEL,
    OWNER_LABEL,
    RUN_LABEL,
    STATE_LABEL,
    Candidate,
    Run,
    default_run,
    is_stale,
    runs_from_labels,
    runs_of_state,
    stale_runs,
)

HERE, THERE = "box/boot-1/4026531836", "ci-job/boot-1/4026532179"
NOW = 1_000_000.0
ALIVE, DEAD = "100:5", "200:7"
alive = {ALIVE: True, DEAD: False}.__getitem__


def _run(owner=DEAD, host=HERE, lease=NOW + 60, kept=False, state="s1") -> Run:
    return Run("r", owner, host, state, lease, kept)


@pytest.mark.parametrize("run, stale, bug", [
    (_run(owner=DEAD), True, "a SIGKILLed session's stack is never reaped"),
    (_run(owner=ALIVE), False, "a live session's stack is removed by another session's start"),
    (_run(owner=DEAD, host=THERE), False,
     "a run of another PID namespace is judged by a pid that means nothing here: a CI job's start "
     "removes another job's stack mid-scenario"),
    (_run(owner=ALIVE, host=THERE, lease=NOW - 1), True, "a run of another host is never reaped, even abandoned"),
    (_run(owner=DEAD, host=THERE, lease=None), False, "a foreign run without a lease is reaped"),
    (_run(owner=DEAD, kept=True), False, "a kept stack is reaped once `chaos up` (its starter) exits"),
    (_run(owner=DEAD, host=THERE, kept=True, lease=NOW - 1), True, "a foreign kept stack outlives its lease"),
    (_run(owner="compose", lease=None), False, "the docker-compose stack is reaped"),
    (_run(owner=DEAD, host="", lease=None), False,
     "a run without a host label (older labels, made by hand) is judged by a pid of unknown meaning"),
])
def test_staleness(run, stale, bug):
    assert is_stale(run, HERE, NOW, alive) is stale, bug


def test_a_run_is_judged_from_the_labels_of_all_its_objects():
    """Bug caught: the kept mark is its own volume; a reaper that reads only containers (or only
    the first object of a run) takes a kept stack for one whose starter died and removes it."""
    common = {RUN_LABEL: "k", OWNER_LABEL: DEAD, HOST_LABEL: HERE, STATE_LABEL: "s1", LEASE_LABEL: str(NOW + 60)}
    labels = [common, common, {**common, KEPT_LABEL: "1"},
              {RUN_LABEL: "old", OWNER_LABEL: DEAD, HOST_LABEL: HERE},
              {RUN_LABEL: "mine", OWNER_LABEL: DEAD, HOST_LABEL: HERE},
              {"unrelated": "x"}]
    runs = runs_from_labels(labels)
    assert runs["k"] == Run("k", DEAD, HERE, "s1", NOW + 60, kept=True)
    assert stale_runs(labels, keep="mine", here=HERE, now=NOW, alive=alive) == {"old"}


def test_down_means_the_runs_of_this_state_directory():
    """Bug caught: `chaos down` removes other checkouts' kept stacks, live sessions and the
    compose stack."""
    runs = [Run("a", state="s1"), Run("b", state="s2"), Run("compose", "compose"), Run("c", state="s1")]
    assert runs_of_state(runs, "s1") == {"a", "c"}
    assert runs_of_state(runs, None) == set()  # a state dir that never started a run owns none


def _candidate(run_id, state="s1", kept=False, created=0):
    return Candidate(Run(run_id, DEAD, HERE, state, NOW, kept), created)


@pytest.mark.parametrize("candidates, expected, bug", [
    ([_candidate("theirs-kept", state="s2", kept=True, created=3), _candidate("mine", created=1)], "mine",
     "a command without --run acts on the newest kept stack of the whole daemon, someone else's"),
    ([_candidate("mine-new", created=2), _candidate("mine-kept", kept=True, created=1)], "mine-kept",
     "a test session's stack is chosen over the stack a person keeps"),
    ([_candidate("old", created=1), _candidate("new", created=2)], "new", "the oldest of mine is chosen"),
    ([_candidate("theirs", state="s2"), Candidate(Run("compose", "compose"), 0)], "compose",
     "the docker-compose stack is no longer found without --run"),
    ([_candidate("theirs", state="s2")], None, "another checkout's stack is used when this one has none"),
])
def test_default_stack_choice(candidates, expected, bug):
    assert default_run(candidates, "s1") == expected, bug


def test_host_identity_names_boot_and_pid_namespace():
    """Bug caught: an identity without the PID namespace makes a containerised CI job's pids look
    like this host's."""
    host, boot, namespace = ownership.host_identity().split("/")
    assert boot == open("/proc/sys/kernel/random/boot_id").read().strip()
    assert namespace == os.readlink("/proc/self/ns/pid")[5:-1]


def test_state_identity_is_made_once_per_directory(tmp_path):
    """Bug caught: two state directories share an identity (one's `chaos down` removes the
    other's runs), or the identity changes between calls (a checkout disowns its kept stack)."""
    one, other = tmp_path / "one", tmp_path / "other"
    assert ownership.state_identity(one) is None and not one.exists()  # asking creates nothing
    made = ownership.state_identity(one, create=True)
    assert made and ownership.state_identity(one) == made == ownership.state_identity(one, create=True)
    assert ownership.state_identity(other, create=True) not in (None, made)


@pytest.mark.parametrize("raw", ["0", "-5", "soon", "nan"])
def test_a_bad_lease_is_refused(raw):
    """Bug caught: a lease of 0 (or garbage read as 0) makes every run of this host look
    abandoned to a job in another namespace at once."""
    with pytest.raises(HarnessError, match="CHAOS_LEASE_S"):
        ownership.lease_s({"CHAOS_LEASE_S": raw})


def test_labels_carry_owner_host_state_and_lease():
    labels = ownership.run_labels("r", ALIVE, "s1", 60, now=NOW)
    assert labels == {RUN_LABEL: "r", OWNER_LABEL: ALIVE, HOST_LABEL: ownership.host_identity(),
                      STATE_LABEL: "s1", LEASE_LABEL: f"{NOW + 60:.0f}"}
    assert ownership.lease_s({}) == ownership.DEFAULT_LEASE_S


def test_down_all_names_every_run_before_removing_it(capsys):
    """Bug caught: `chaos down --all` removes other people's stacks without a word of whose they
    were; or plain `chaos down` takes runs of other checkouts and the compose stack."""
    import argparse

    from harness.cli import _down_targets

    runs = {"a": Run("a", ALIVE, HERE, "s1"), "b": Run("b", DEAD, THERE, "s2", kept=True),
            "compose": Run("compose", "compose")}
    assert _down_targets(argparse.Namespace(run=None, all=False), runs, "s1") == ["a"]
    assert capsys.readouterr().out == ""
    assert _down_targets(argparse.Namespace(run=None, all=True), runs, "s1") == ["a", "b", "compose"]
    said = capsys.readouterr().out.splitlines()
    assert said[0].startswith("removing every chaos-harness run on this daemon (3)")
    assert said[1:] == [f"  a (this checkout, owner {ALIVE} on {HERE})",
                        f"  b (another checkout, kept, owner {DEAD} on {THERE})",
                        "  compose (compose)"]
