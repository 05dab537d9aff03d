"""Load from Locust, run headless in a subprocess (it patches its process with gevent), bounded in
users, rate and time, aimed at the run's edge proxy on 127.0.0.1 only.

The workload is the system's own (a Workload: its locustfile and the environment it needs, e.g.
a token; the shop's is scenarios/shop/workload.py). The harness's contract with a locustfile:
it reads its rate per user from CHAOS_LOAD_RATE and appends each answer to the file named by
CHAOS_LOAD_HISTORY as one JSON line (key, status: 0 for no answer, id, order_status, invoked,
completed), which is read back as history operations (kind `place_order`).

`with Load(stack, workload, users=5, rate=2, duration_s=20) as load:` starts it; on exit it waits for the
end (or stops it), and `load.history()` returns every answer as history operations while
`load.stats()` gives Locust's own aggregate (requests, failures, p50, p99). With `workers=N`
Locust runs distributed: one master and N worker processes (for users who outgrow one core);
the master binds its port on 127.0.0.1 only.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from harness.errors import HarnessError
from harness.history import History, Outcome
from harness.view import StackView

MAX_USERS, MAX_DURATION_S, MAX_WORKERS, MAX_RATE = 200, 3600, 16, 50.0
HISTORY_FILE = "history.jsonl"  # in the load's directory: the answers, one JSON line each


def parse_load(text: str) -> tuple[int, float]:
    """`USERS:RATE` (e.g. `4:2`: four users, two orders a second each), as --load takes it."""
    users, _, rate = text.partition(":")
    try:
        return int(users), float(rate or "2")
    except ValueError:
        raise HarnessError(f"bad --load {text!r}: use USERS:RATE, e.g. 4:2") from None


@dataclass(frozen=True)
class Workload:
    """A system's Locust workload: its locustfile and what its users need in their environment."""

    locustfile: Path
    env: Mapping[str, str] = field(default_factory=dict)


def check_bounds(users: int, rate: float, duration_s: int, workers: int = 0) -> None:
    """The bounds of every load: a typo (`--users 2000`) must not flood the machine."""
    if not (1 <= users <= MAX_USERS and 0 < rate <= MAX_RATE and 1 <= duration_s <= MAX_DURATION_S
            and 0 <= workers <= MAX_WORKERS):
        raise HarnessError(f"load out of bounds: users 1..{MAX_USERS}, rate 0..{MAX_RATE:g}/s per user, "
                           f"duration 1..{MAX_DURATION_S}s, workers 0..{MAX_WORKERS}")


def history_of(path: Path) -> History:
    """A locustfile's answers (one JSON line each, see above) as history operations; a line cut
    short by a kill of Locust is skipped, the rest is still good."""
    history = History()
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        op = history.invoke("place_order", row["key"], {})
        op.invoked = row["invoked"]
        outcome: Outcome = "unknown" if row["status"] == 0 else ("ok" if row["status"] < 300 else "fail")
        body = {"id": row["id"], "status": row["order_status"]} if row["id"] else {}
        history.complete(op, outcome, row["status"] or None, body)
        op.completed = row["completed"]
    return history


class Load:
    def __init__(self, stack: StackView, workload: Workload, users: int = 5, rate: float = 2.0,
                 duration_s: int = 20, workers: int = 0, directory: Path | None = None) -> None:
        check_bounds(users, rate, duration_s, workers)
        self.workers = workers
        self.worker_processes: list[subprocess.Popen[bytes]] = []
        host = stack.edge_url
        if urlparse(host).hostname != "127.0.0.1":
            raise HarnessError(f"load only goes to 127.0.0.1, not {host}")
        self.host, self.users, self.rate, self.duration_s = host, users, rate, duration_s
        self.workload = workload
        # Where Locust's answers and stats go: a fresh temporary directory, or the caller's (a game
        # day's load keeps them in the state directory, where `chaos down`'s report reads them).
        self.dir = directory or Path(tempfile.mkdtemp(prefix="chaos-load-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "Load":
        env = dict(os.environ, **self.workload.env, CHAOS_LOAD_HISTORY=str(self.dir / HISTORY_FILE),
                   CHAOS_LOAD_RATE=str(self.rate))
        locust = [sys.executable, "-m", "locust", "-f", str(self.workload.locustfile), "--loglevel", "WARNING"]
        log = open(self.dir / "locust.log", "w")
        role: list[str] = []
        if self.workers:
            port = _free_port()
            role = ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                    "--expect-workers", str(self.workers)]
            self.worker_processes = [
                subprocess.Popen([*locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
                                 env=env, stdout=subprocess.DEVNULL, stderr=log)
                for _ in range(self.workers)]
        self.process = subprocess.Popen(
            [*locust, *role, "--headless", "--host", self.host, "--users", str(self.users),
             "--spawn-rate", str(self.users), "--run-time", f"{self.duration_s}s", "--stop-timeout", "10",
             "--csv", str(self.dir / "stats"), "--only-summary"],
            env=env, stdout=subprocess.DEVNULL, stderr=log)
        return self

    def wait(self) -> None:
        """Waits for the run to end by itself (bounded: its duration plus the stop timeout)."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout=self.duration_s + 30)
        except subprocess.TimeoutExpired:
            self.stop()

    def stop(self) -> None:
        for process in [self.process, *self.worker_processes]:
            if process and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.wait()
        self.stop()

    def history(self) -> History:
        """Every answer Locust got, as history operations (a client timeout is `unknown`)."""
        return history_of(self.dir / HISTORY_FILE)

    def stats(self) -> dict[str, Any]:
        """Locust's aggregate line: requests, failures, median and 99th percentile (ms). Empty
        when Locust wrote no aggregate, and a figure it did not compute ("N/A") is None, never
        0: a missing p99 must not read as a fast one."""
        path = self.dir / "stats_stats.csv"
        if not path.exists():
            return {}
        rows = {row["Name"]: row for row in csv.DictReader(path.open(encoding="utf-8"))}
        total = rows.get("Aggregated")
        if not total:
            return {}
        return {"requests": int(_number(total.get("Request Count")) or 0),
                "failures": int(_number(total.get("Failure Count")) or 0),
                "p50_ms": _number(total.get("50%")), "p99_ms": _number(total.get("99%")),
                "rps": _number(total.get("Requests/s")), "at": time.time()}


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:  # Locust writes N/A where it has nothing to say
        return None


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
