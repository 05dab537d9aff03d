"""Who owns a run, judged safely on a Docker daemon that other hosts, namespaces and checkouts share.

Every object of a run carries labels (Docker labels are immutable after creation):

    chaos-harness.run     the run id
    chaos-harness.owner   ``pid:starttime`` of the owning process (``chaos-up:pid:starttime`` for
                          a stack `chaos up` starts; "compose" for docker-compose's)
    chaos-harness.host    the owner's host identity: boot id, PID namespace and hostname
    chaos-harness.state   the identity of the owner's state directory (its checkout)
    chaos-harness.lease   epoch seconds after which another host may judge the run abandoned

A pid means something only in its own PID namespace on its own boot, so a reaper judges by pid
only the runs of its own host identity; a run of another host identity (a CI job in a container,
a remote DOCKER_HOST client) is stale only once its lease has expired. The lease is an expiry
set at creation (now + ``CHAOS_LEASE_S``, default 6 h), not a heartbeat: labels cannot be
renewed, and an expiry needs no process to keep it alive. A run `chaos up` keeps is marked by a
separate object (a volume carrying ``chaos-harness.kept``) created only once the stack is green;
a kept run is never stale by pid (its starter exits), only by lease from another host. An owner
that is no pid (the compose stack) is never stale: only `chaos down` removes it. A run with no
host or lease label (made before these labels existed, or by hand) is never judged stale
either: the reaper removes only what it can prove abandoned.

The state identity is a random id kept in a file in the state directory, not a hash of its
path: the same path in two containers is two checkouts, a bind-mounted one is one, and the id
survives a reboot (a hash of boot id and path would disown a kept stack after one).

Pure judgements here (fed labels, tested without an engine); nothing of the harness is imported
but its error type.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

from harness.errors import HarnessError

RUN_LABEL = "chaos-harness.run"
OWNER_LABEL = "chaos-harness.owner"
SERVICE_LABEL = "chaos-harness.service"
HOST_LABEL = "chaos-harness.host"
STATE_LABEL = "chaos-harness.state"
LEASE_LABEL = "chaos-harness.lease"
REPLICA_LABEL = "chaos-harness.replica-of"  # on a config fault's replica, naming the service it copies
SUT_MODE_LABEL = "chaos-harness.sut-mode"  # on every container: the build the run started with
TOPOLOGY_LABEL = "chaos-harness.topology"  # on every container: the topology file the run was started from
KEPT_LABEL = "chaos-harness.kept"  # only on the marker volume `chaos up` adds once the stack is green

COMPOSE_RUN = "compose"  # run id and owner of docker-compose.chaos.yml's stack
KEPT_OWNER = "chaos-up"  # the owner of faults injected into a kept stack: no process, so never reaped by pid
LEASE_ENV = "CHAOS_LEASE_S"
DEFAULT_LEASE_S = 6 * 3600.0
STATE_ID_FILE = "state-id"


# ---------------------------------------------------------------- identities

def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as source:
            return source.read().strip()
    except OSError:
        return "?"


def host_identity() -> str:
    """``hostname/boot id/pid namespace``: where a pid names the same process. Two containers
    share a boot id but not a PID namespace; a rebooted machine keeps its hostname only."""
    try:
        namespace = os.readlink("/proc/self/ns/pid").removeprefix("pid:").strip("[]")
    except OSError:
        namespace = "?"
    return f"{socket.gethostname()}/{_read('/proc/sys/kernel/random/boot_id')}/{namespace}"


def state_identity(state_dir: Path, create: bool = False) -> str | None:
    """The id of a state directory (its checkout), read from the file in it; made on first use
    when `create` (a stack start), else None when there is none (no run can be of it yet)."""
    path = Path(state_dir).resolve() / STATE_ID_FILE
    try:
        return path.read_text(encoding="ascii").strip() or None
    except FileNotFoundError:
        if not create:
            return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="ascii") as out:  # two starts at once: one wins, both read it
            out.write(secrets.token_hex(6) + "\n")
    except FileExistsError:
        pass
    except OSError as exc:
        raise HarnessError(f"cannot write the state directory {path.parent} ({exc.strerror}): "
                           "make it writable or point CHAOS_STATE_DIR elsewhere") from None
    return path.read_text(encoding="ascii").strip()


def lease_s(environ: Mapping[str, str] = os.environ) -> float:
    """How long a run of another host identity is presumed alive (``CHAOS_LEASE_S``)."""
    raw = environ.get(LEASE_ENV, "")
    if not raw:
        return DEFAULT_LEASE_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise HarnessError(f"{LEASE_ENV} must be a positive number of seconds, got {raw!r}")
    return value


def run_labels(run_id: str, owner: str, state: str, lease_for_s: float, now: float | None = None) -> dict[str, str]:
    """The labels every object of a run carries."""
    now = time.time() if now is None else now
    return {RUN_LABEL: run_id, OWNER_LABEL: owner, HOST_LABEL: host_identity(), STATE_LABEL: state,
            LEASE_LABEL: f"{now + lease_for_s:.0f}"}


# ---------------------------------------------------------------- owner processes

def _process_start(pid: int) -> str:
    """The kernel's start time of a process, so a reused pid is not mistaken for its owner;
    "?" when /proc does not show it (hidepid, another user)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def owner_token(pid: int | None = None) -> str:
    """``pid:starttime`` of the process that owns a run."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_process_start(pid)}"


def up_owner_token() -> str:
    """The owner label of a stack `chaos up` starts: its own process, behind the kept owner's
    name. This release reads the process in it; releases before the kept mark read the label as
    no process, so they never reap the stack (as they never reaped a kept one)."""
    return f"{KEPT_OWNER}:{owner_token()}"


_PROCESS_TOKEN = re.compile(r"^(?:[a-z-]+:)?(\d+):(\S*)$")  # [name:]pid:starttime


def is_process_token(token: str) -> bool:
    return _PROCESS_TOKEN.match(token) is not None


def owner_alive(token: str) -> bool:
    """Whether the process named by an owner label (of this host identity) still runs. Only a
    missing pid or a different start time proves it dead: a pid that exists but whose start
    time /proc hides (hidepid) counts as alive."""
    named = _PROCESS_TOKEN.match(token)
    if named is None:
        return True  # not a process (a compose stack, a kept stack's faults): only `chaos down` removes it
    pid, start = int(named.group(1)), named.group(2)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = _process_start(pid)
    return start in ("", "?") or now == "?" or now == start


# ---------------------------------------------------------------- runs, judged from their labels

@dataclass(frozen=True)
class Run:
    """A run as its objects' labels describe it."""

    run_id: str
    owner: str = ""
    host: str = ""
    state: str = ""
    lease_until: float | None = None
    kept: bool = False


def runs_from_labels(labels: Iterable[Mapping[str, str]]) -> dict[str, Run]:
    """Each run once, from the labels of all its objects (containers, networks, volumes; the
    kept marker among them)."""
    found: dict[str, dict[str, str]] = {}
    kept: set[str] = set()
    for label in labels:
        run_id = label.get(RUN_LABEL)
        if not run_id:
            continue
        merged = found.setdefault(run_id, {})
        for key, value in label.items():
            merged.setdefault(key, value)
        if label.get(KEPT_LABEL):
            kept.add(run_id)
    runs = {}
    for run_id, label in found.items():
        try:
            lease = float(label[LEASE_LABEL]) if LEASE_LABEL in label else None
        except ValueError:
            lease = None
        runs[run_id] = Run(run_id, label.get(OWNER_LABEL, ""), label.get(HOST_LABEL, ""),
                           label.get(STATE_LABEL, ""), lease, run_id in kept)
    return runs


def is_stale(run: Run, here: str, now: float, alive: Callable[[str], bool] = owner_alive) -> bool:
    """Whether a run is abandoned, as a reaper on host identity `here` can prove it."""
    if not is_process_token(run.owner):
        return False  # compose: only `chaos down` removes it
    if run.host != here:  # another host, or none named (older labels): by its lease, if it has one
        return run.lease_until is not None and now >= run.lease_until
    return not run.kept and not alive(run.owner)


def stale_runs(labels: Iterable[Mapping[str, str]], keep: str | None = None, here: str | None = None,
               now: float | None = None, alive: Callable[[str], bool] = owner_alive) -> set[str]:
    """The runs a reaper on this host identity may remove (but `keep`, its own)."""
    here = host_identity() if here is None else here
    now = time.time() if now is None else now
    return {run.run_id for run in runs_from_labels(labels).values()
            if run.run_id != keep and is_stale(run, here, now, alive)}


def runs_of_state(runs: Iterable[Run], state: str | None) -> set[str]:
    """The runs of one state directory (`chaos down`'s scope without --all); none when it has
    no identity yet (it never started a run)."""
    return {run.run_id for run in runs if state and run.state == state}


@dataclass(frozen=True)
class Candidate:
    """A running stack the CLI could act on when no run is named."""

    run: Run
    created: int  # the engine's creation time (epoch seconds) of its newest container


def default_run(candidates: Iterable[Candidate], state: str | None) -> str | None:
    """The stack a command means when no --run is given: this state directory's kept stack, else
    its newest running one, else the compose stack; None when none of those runs (the caller
    says whether others do)."""
    pool = list(candidates)
    mine = [c for c in pool if state and c.run.state == state]
    for choice in ([c for c in mine if c.run.kept], mine, [c for c in pool if c.run.run_id == COMPOSE_RUN]):
        if choice:
            return max(choice, key=lambda c: c.created).run.run_id
    return None
