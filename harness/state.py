"""The state directory: where a checkout keeps what must outlive the process that wrote it.

``.cache/faults/`` in the repository, or ``$CHAOS_STATE_DIR``. It has an identity (the runs it
starts carry it in their labels, so `chaos down` and attach know their own), one JSON file per
active fault (the fault registry's records, harness.faults.registry) and an append-only JSONL
journal per run of every inject, landing, heal and guardrail trip. Everything here is plain
files: any process of the checkout (the CLI, a detached healer, a watcher) reads them back.

    state-id                    this directory's identity (harness.ownership.state_identity)
    active/<record id>.json     one per active fault
    journal/<run id>.jsonl      every journal entry of the run's faults
    load/<run id>.json          a game day's load (harness.gameday_load)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from harness import ownership, run_ids

STATE_ENV = "CHAOS_STATE_DIR"
DEFAULT_STATE_DIR = Path(__file__).resolve().parents[1] / ".cache" / "faults"


def state_dir() -> Path:
    return Path(os.environ.get(STATE_ENV) or DEFAULT_STATE_DIR)


def state_identity(create: bool = False) -> str | None:
    """This state directory's (checkout's) identity, as its runs' labels carry it
    (harness.ownership.state_identity; made on first use when `create`)."""
    return ownership.state_identity(state_dir(), create=create)


def write_whole(path: Path, text: str) -> None:
    """A state file written whole or not at all (temporary file, then rename), its directory
    made first. The temporary name is this process's own: two writers never share one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[Path]:
    """`path` with its lock file (path.lock) held: one process at a time reads and changes it
    (released on exit, also by a kill)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield path


# ---------------------------------------------------------------- fault records

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


def _active(root: Path) -> Path:
    return root / "active"


def _path(record_id: str, root: Path) -> Path:
    return _active(root) / f"{record_id}.json"


def new_id(fault: str, target: str) -> str:
    return f"{fault}-{target}-{secrets.token_hex(3)}"


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


# ---------------------------------------------------------------- the run journal

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
