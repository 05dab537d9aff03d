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
from harness.errors import HarnessError

if TYPE_CHECKING:
    import docker

    from harness.faults.base import Fault

STATE_ENV = "CHAOS_STATE_DIR"
DEFAULT_STATE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "faults"
MAX_FOR_S = 86400.0


def state_dir() -> Path:
    return Path(os.environ.get(STATE_ENV) or DEFAULT_STATE_DIR)


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

    def left_s(self, now: float) -> float | None:
        return None if self.expires_at is None else self.expires_at - now


# ---------------------------------------------------------------- pure judgements

def is_expired(record: Record, now: float) -> bool:
    return record.expires_at is not None and now >= record.expires_at


def is_stale(record: Record, now: float, alive: Callable[[str], bool]) -> bool:
    """A fault nobody will heal on purpose any more: its owner died, or its time is up."""
    return is_expired(record, now) or not alive(record.owner)


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


def save(record: Record, root: Path | None = None) -> None:
    """Written whole or not at all (temporary file, then rename)."""
    path = _path(record.id, root or state_dir())
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")  # this process's own: two writers never share one
    temporary.write_text(json.dumps(asdict(record), indent=1))
    os.replace(temporary, path)


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
                        self.owner, fault.undo_state(), expires_at=fault.expires_at), self.root)
        append_journal(self.run_id, {**entry, "record": fault.record_id}, self.root)
        if entry["action"] == "heal" and fault.record_id:
            delete(fault.record_id, self.root)
            fault.record_id = None


# ---------------------------------------------------------------- healing from records

def heal(record: Record, root: Path | None = None, how: str = "heal") -> None:
    """Undoes a recorded fault without its original object, then forgets the record."""
    from harness.faults import CATALOG

    if record.fault not in CATALOG:
        raise HarnessError(f"record {record.id} names unknown fault {record.fault!r}")
    CATALOG[record.fault].undo_from(record.undo)
    forget(record, root, how)


def forget(record: Record, root: Path | None = None, how: str = "dropped") -> None:
    append_journal(record.run_id, {"ts": time.time(), "action": "heal", "fault": record.fault,
                                   "target": record.target, "params": record.params,
                                   "record": record.id, "by": how}, root)
    delete(record.id, root)


def heal_all(selected: list[Record] | None = None, root: Path | None = None) -> list[str]:
    """Heals the given records (default: all), newest first; every one is attempted."""
    healed, errors = [], []
    for record in reversed(selected if selected is not None else records(root)):
        try:
            heal(record, root)
            healed.append(record.id)
        except Exception as exc:  # keep healing the rest; report at the end
            errors.append(f"{record.id}: {exc}")
    if errors:
        raise HarnessError("some faults did not heal: " + "; ".join(errors))
    return healed


def _live_runs(client: "docker.DockerClient") -> set[str]:
    from harness.stack import RUN_LABEL

    return {c.labels[RUN_LABEL] for c in client.containers.list(all=True, filters={"label": RUN_LABEL})}


def reap_stale(client: "docker.DockerClient | None" = None, root: Path | None = None,
               now: float | None = None) -> list[str]:
    """Heals records whose owner is dead or whose expiry passed; drops records of runs whose
    containers are gone (nothing left to undo). Returns the ids handled. Meant for stack
    start-up, after the run reaper."""
    from harness.stack import owner_alive

    pending = records(root)
    if not pending:
        return []
    if client is None:
        from harness.engine import connect

        client = connect()
    live, now = _live_runs(client), time.time() if now is None else now
    handled = []
    for record in pending:
        if record.run_id not in live:
            forget(record, root)
        elif is_stale(record, now, owner_alive):
            try:
                heal(record, root, how="reaper")
            except Exception as exc:  # one bad record must not stop a stack from starting
                print(f"[faults] could not heal {record.id}: {exc}", file=sys.stderr)
                continue
        else:
            continue
        handled.append(record.id)
    return handled


# ---------------------------------------------------------------- healing on time

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


def heal_after(record_id: str, seconds: float) -> int:
    """Sleeps, then heals the record if it is still active (healed earlier: nothing to do)."""
    time.sleep(max(0.0, min(seconds, MAX_FOR_S)))
    record = load(record_id)
    if record is None:
        return 0
    heal(record, how="expiry")
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
