"""The fault registry: active faults on disk, so a fault outlives neither its owner nor its expiry.

Every injected fault is one record in the state directory (harness.state) until it is healed:
which run, fault, target and parameters, when, until when, which process owns it, and its undo
state (everything needed to heal it without the original object). So a fault whose process was
SIGKILLed can still be healed: by `chaos heal --all`, by the reaper when a stack is started
(``reap_stale``, called by `chaos up` and the pytest plugin), or on time by the detached
``heal-after`` process that ``--for`` starts (harness.detached). Each run's journal (in the state
directory too) gets every inject, landing and heal.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from harness import detached, state
from harness.errors import HarnessError, first_line
from harness.ownership import RUN_LABEL, host_identity, owner_alive
from harness.state import Record

if TYPE_CHECKING:
    import docker

    from harness.faults.base import Fault


def check_for(for_s: float | None) -> None:
    """A time box is positive and at most a day (the healer's sleep is bounded by it)."""
    if for_s is not None and not 0 < for_s <= detached.MAX_FOR_S:
        raise HarnessError(f"--for must be between 0 and {detached.MAX_FOR_S:.0f} seconds, got {for_s:g}")


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
            fault.record_id = state.new_id(fault.name, fault.target)
            state.save(Record(fault.record_id, self.run_id, fault.name, fault.target, fault.params.model_dump(),
                        self.owner, fault.undo_state(), expires_at=fault.expires_at,
                        host=host_identity()), self.root)
        state.append_journal(self.run_id, {**entry, "record": fault.record_id}, self.root)
        if entry["action"] == "heal" and fault.record_id:
            state.delete(fault.record_id, self.root)
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
    # Here, not at the top: the families and the engine's clients load only when a record heals
    # (an injector's Recorder and `chaos status` need neither).
    from harness.faults.attach import attach
    from harness.faults.catalog import CATALOG

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
    state.append_journal(record.run_id, {"ts": time.time(), "action": "heal", "fault": record.fault,
                                   "target": record.target, "params": record.params,
                                   "record": record.id, "by": how, "outcome": outcome}, root)
    state.delete(record.id, root)


def heal_records(selected: list[Record] | None = None, root: Path | None = None, how: str = "heal",
                 client: "docker.DockerClient | None" = None) -> HealReport:
    """Heals the given records (default: all), newest first; every one is attempted and each
    outcome said in the report (failed ones are kept on disk). No engine: one HarnessError
    before any record is tried."""
    report = HealReport()
    pending = selected if selected is not None else state.records(root)
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
    heal is printed and kept. harness.reaper runs it before a stack starts, after the run reaper."""
    pending = state.records(root)
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

def heal_on_expiry(record_id: str, seconds: str) -> int:
    """The `--for` healer's work (harness.detached.spawn_healer starts its process): heals the
    record when the time box ends, unless something healed it first."""
    return detached.heal_after(record_id, float(seconds), lambda record: heal(record, how="expiry"))


def main(argv: list[str]) -> int:
    usage = f"python -m {detached.HEALER_MODULE} heal-after RECORD_ID SECONDS"
    return detached.detached_main(argv, "heal-after", usage, heal_on_expiry)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
