"""Active faults on disk, so a fault outlives neither its owner nor its expiry.

Every injected fault is one JSON file under the state directory (``.cache/faults/`` in the
repository, or ``$CHAOS_STATE_DIR``) until it is healed: which run, fault, target and
parameters, when, until when, which process owns it, and its undo state (everything needed to
heal it without the original object). So a fault whose process was SIGKILLed can still be
healed: by `chaos heal --all`, by the reaper at the next stack start (``reap_stale``), or on
time by the detached ``heal-after`` process that ``--for`` starts. Each run also gets an
append-only JSONL journal of every inject, landing and heal.

    active/<record id>.json     one per active fault
    journal/<run id>.jsonl      every journal entry of the run's faults
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from harness import run_ids
from harness.errors import HarnessError, first_line
from harness import ownership
from harness.ownership import RUN_LABEL, host_identity, owner_alive

if TYPE_CHECKING:
    import docker

    from harness.faults.base import Fault

STATE_ENV = "CHAOS_STATE_DIR"
DEFAULT_STATE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "faults"
MAX_FOR_S = 86400.0


def state_dir() -> Path:
    return Path(os.environ.get(STATE_ENV) or DEFAULT_STATE_DIR)


def state_identity(create: bool = False) -> str | None:
    """This state directory's (checkout's) identity, as its runs' labels carry it
    (harness.ownership.state_identity; made on first use when `create`)."""
    return ownership.state_identity(state_dir(), create=create)


def check_for(for_s: float | None) -> None:
    """A time box is positive and at most a day (the healer's sleep is bounded by it)."""
    if for_s is not None and not 0 < for_s <= MAX_FOR_S:
        raise HarnessError(f"--for must be between 0 and {MAX_FOR_S:.0f} seconds, got {for_s:g}")


@dataclass
class Record:
    """One active fault, as written to disk."""

    id: str
    run_id: str
    fault: str
    target: str
    params: dict[str, Any]
    owner: str  # owner token (pid:starttime) of the process whose lifetime the fault shares
    undo: dict[str, Any]
    injected_at: float = field(default_factory=time.time)
    expires_at: float | None = None
    # Where the owner's pid means that process (harness.ownership.host_identity): a state dir
    # shared between PID namespaces must not judge one's owner by the other's /proc.
    host: str = ""

    def left_s(self, now: float) -> float | None:
        return None if self.expires_at is None else self.expires_at - now


# ---------------------------------------------------------------- pure judgements

def is_expired(record: Record, now: float) -> bool:
    return record.expires_at is not None and now >= record.expires_at


def is_stale(record: Record, now: float, alive: Callable[[str], bool], here: str = "") -> bool:
    """A fault nobody will heal on purpose any more: its owner died, or its time is up. The
    owner is judged by pid only on its own host identity (`here`); from another, only the
    expiry counts (records from before hosts were kept say none: judged by pid as then)."""
    foreign = bool(record.host and here and record.host != here)
    return is_expired(record, now) or (not foreign and not alive(record.owner))


def matches(record: Record, name: str) -> bool:
    """`chaos heal NAME`: a record id, or a fault name meaning every record of it."""
    return name in (record.id, record.fault)


# ---------------------------------------------------------------- files

def _active(root: Path) -> Path:
    return root / "active"


def _path(record_id: str, root: Path) -> Path:
    return _active(root) / f"{record_id}.json"


def new_id(fault: str, target: str) -> str:
    return f"{fault}-{target}-{secrets.token_hex(3)}"


def write_whole(path: Path, text: str) -> None:
    """A state file written whole or not at all (temporary file, then rename), its directory
    made first. The temporary name is this process's own: two writers never share one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def save(record: Record, root: Path | None = None) -> None:
    write_whole(_path(record.id, root or state_dir()), json.dumps(asdict(record), indent=1))


def load(record_id: str, root: Path | None = None) -> Record | None:
    try:
        return Record(**json.loads(_path(record_id, root or state_dir()).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def records(root: Path | None = None) -> list[Record]:
    """Every active record, oldest first (unreadable files are skipped)."""
    folder = _active(root or state_dir())
    found = [load(path.stem, folder.parent) for path in folder.glob("*.json")] if folder.is_dir() else []
    return sorted((r for r in found if r is not None), key=lambda r: r.injected_at)


def delete(record_id: str, root: Path | None = None) -> None:
    _path(record_id, root or state_dir()).unlink(missing_ok=True)


def journal_path(run_id: str, root: Path | None = None) -> Path:
    """journal/<run id>.jsonl; a run id that is not one (``../x``) never becomes a path."""
    return (root or state_dir()) / "journal" / f"{run_ids.valid(run_id)}.jsonl"


def append_journal(run_id: str, entry: dict[str, Any], root: Path | None = None) -> None:
    path = journal_path(run_id, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(entry, default=str) + "\n")


def journal(run_id: str, root: Path | None = None) -> list[dict[str, Any]]:
    path = journal_path(run_id, root)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# ---------------------------------------------------------------- recording from a journal

@dataclass
class Recorder:
    """A FaultJournal observer: every entry in the run's JSONL; for faults another process can
    heal (Fault.recordable), a record from inject until heal."""

    run_id: str
    owner: str
    root: Path | None = None

    def __call__(self, entry: dict[str, Any], fault: "Fault") -> None:
        if entry["action"] == "inject" and fault.recordable():
            fault.record_id = new_id(fault.name, fault.target)
            save(Record(fault.record_id, self.run_id, fault.name, fault.target, fault.params.model_dump(),
                        self.owner, fault.undo_state(), expires_at=fault.expires_at,
                        host=host_identity()), self.root)
        append_journal(self.run_id, {**entry, "record": fault.record_id}, self.root)
        if entry["action"] == "heal" and fault.record_id:
            delete(fault.record_id, self.root)
            fault.record_id = None


# ---------------------------------------------------------------- healing from records

HEALED, RUN_GONE = "healed", "run gone"  # the outcomes of a record heal that forget the record


@dataclass
class HealReport:
    """What a heal of several records did: record ids healed, ids forgotten because their run
    is gone (nothing left to undo), and one line per record that failed (those are kept)."""

    healed: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def add(self, record: Record, outcome: str) -> None:
        (self.healed if outcome == HEALED else self.gone).append(record.id)


def heal(record: Record, root: Path | None = None, how: str = "heal",
         client: "docker.DockerClient | None" = None) -> str:
    """Undoes a recorded fault on its own run's containers (attached by the run label, ports
    read now), then forgets the record: HEALED. A run with no container left has nothing to
    undo: the record is forgotten, RUN_GONE. Anything else raises HarnessError and keeps the
    record, so a heal that did not happen (a database that did not answer) is never counted."""
    from harness.faults import CATALOG
    from harness.faults.attach import attach

    if record.fault not in CATALOG:
        raise HarnessError(f"record {record.id} names unknown fault {record.fault!r}")
    client = _engine(client)
    try:
        if record.run_id not in _live_runs(client):
            forget(record, root, how, outcome=RUN_GONE)
            return RUN_GONE
        CATALOG[record.fault].undo_from(record.undo, attach(record.run_id, client))
    except Exception as exc:
        raise HarnessError(f"{record.id} (run {record.run_id}) did not heal, its record is kept: "
                           f"{first_line(exc)}") from exc
    forget(record, root, how)
    return HEALED


def forget(record: Record, root: Path | None = None, how: str = "dropped", outcome: str = HEALED) -> None:
    """The record's heal in the run's journal (with what it was: healed, or run gone), then
    the record deleted."""
    append_journal(record.run_id, {"ts": time.time(), "action": "heal", "fault": record.fault,
                                   "target": record.target, "params": record.params,
                                   "record": record.id, "by": how, "outcome": outcome}, root)
    delete(record.id, root)


def heal_records(selected: list[Record] | None = None, root: Path | None = None, how: str = "heal",
                 client: "docker.DockerClient | None" = None) -> HealReport:
    """Heals the given records (default: all), newest first; every one is attempted and each
    outcome said in the report (failed ones are kept on disk). No engine: one HarnessError
    before any record is tried."""
    report = HealReport()
    pending = selected if selected is not None else records(root)
    if pending:
        client = _engine(client)
    for record in reversed(pending):
        try:
            report.add(record, heal(record, root, how, client))
        except HarnessError as exc:  # keep healing the rest; report at the end
            report.failed.append(str(exc))
    return report


def heal_all(selected: list[Record] | None = None, root: Path | None = None,
             client: "docker.DockerClient | None" = None) -> list[str]:
    """heal_records for callers that stop on any failure: the ids healed or forgotten, or one
    HarnessError naming every record that did not heal (those are kept)."""
    report = heal_records(selected, root, client=client)
    if report.failed:
        raise HarnessError("some faults did not heal: " + "; ".join(report.failed))
    return report.healed + report.gone


def _engine(client: "docker.DockerClient | None") -> "docker.DockerClient":
    """The client given, or one to the engine (HarnessError in one line when there is none)."""
    if client is not None:
        return client
    from harness.engine import connect

    return connect()


def _live_runs(client: "docker.DockerClient") -> set[str]:
    """Runs with a container left, in any state (a stopped one still holds what a fault did).
    Containers removed while they are listed (on a shared engine, any run's) are skipped."""
    listed = client.containers.list(all=True, filters={"label": RUN_LABEL}, ignore_removed=True)
    return {c.labels[RUN_LABEL] for c in listed}


def reap_stale(client: "docker.DockerClient | None" = None, root: Path | None = None,
               now: float | None = None) -> list[str]:
    """Heals records whose owner is dead or whose expiry passed; forgets records of runs whose
    containers are gone (nothing left to undo). Returns the ids handled; one that fails to
    heal is printed and kept. Meant for stack start-up, after the run reaper."""
    pending = records(root)
    if not pending:
        return []
    client = _engine(client)
    live, now = _live_runs(client), time.time() if now is None else now
    here = host_identity()
    due = [r for r in pending if r.run_id not in live or is_stale(r, now, owner_alive, here)]
    report = heal_records(due, root, how="reaper", client=client)
    for line in report.failed:  # one bad record must not stop a stack from starting
        print(f"[faults] could not heal {line}", file=sys.stderr)
    return report.healed + report.gone


# ---------------------------------------------------------------- healing on time

HEALER_SLICE_S = 2.0  # how often the `--for` healer looks whether its record was healed already


def spawn_detached(module: str, *args: str, root: Path | None = None) -> int:
    """``python -m module args`` in its own session, sharing this state directory: it outlives
    this process (and a Ctrl-C or SIGKILL of it). Used by the `--for` healer and guardrails."""
    env = dict(os.environ, **{STATE_ENV: str(root or state_dir())})
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, env=env)
    return process.pid


def spawn_healer(record_id: str, seconds: float, root: Path | None = None) -> int:
    """A detached process that heals the record after `seconds`, whatever happens to this one."""
    return spawn_detached("harness.faults.registry", "heal-after", record_id, f"{seconds:.3f}", root=root)


def next_wait(left_s: float, slice_s: float = HEALER_SLICE_S) -> float:
    """How long the healer sleeps before it looks again: a slice, or what is left if less."""
    return max(0.0, min(slice_s, left_s))


def heal_after(record_id: str, seconds: float, slice_s: float = HEALER_SLICE_S) -> int:
    """Heals the record after `seconds` if it is still active. It looks every `slice_s` and
    exits as soon as the record is gone (healed by `chaos heal`, a teardown or the reaper), so
    no healer outlives its fault asleep. Bounded: at most MAX_FOR_S, in slices."""
    deadline = time.monotonic() + max(0.0, min(seconds, MAX_FOR_S))
    for _ in range(int(MAX_FOR_S / slice_s) + 2):
        record = load(record_id)
        if record is None:
            return 0
        left = deadline - time.monotonic()
        if left <= 0:
            heal(record, how="expiry")
            return 0
        time.sleep(next_wait(left, slice_s))
    return 0


def detached_main(argv: list[str], command: str, usage: str, action: Callable[..., object]) -> int:
    """The entry point of a detached helper (``command ARG...``): exit 2 with one line on bad input."""
    arity = usage.count(" ") - usage.split().index(command)
    if len(argv) != arity + 1 or argv[0] != command:
        print(f"usage: {usage}", file=sys.stderr)
        return 2
    try:
        action(*argv[1:])
    except (HarnessError, ValueError) as exc:
        print(f"chaos: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str]) -> int:
    return detached_main(argv, "heal-after", "python -m harness.faults.registry heal-after RECORD_ID SECONDS",
                         lambda record_id, seconds: heal_after(record_id, float(seconds)))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
