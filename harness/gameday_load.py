"""A game day's load: the system's Locust workload run detached against a kept stack (`chaos load
start` / `chaos load stop`), its answers kept where `chaos down`'s report reads them.

The workload and its checker are the system's own (a LoadSystem, named by its topology's
``load:``; the shop's is scenarios/shop/gameday.py), as exploration takes the system's: the
harness runs the workload with harness.load (bounded in users, rate and time, aimed at the
run's edge on 127.0.0.1 only) and hands the answers to the checker when the report is written.

One load per run at a time, recorded in the state directory:

    load/<run id>.json    the runner's and Locust's tokens (pid:starttime), the settings, the
                          checker's baseline (taken at the first start), the day's earlier loads
    load/<run id>/        Locust's answers (history.jsonl: every start of the day appends), stats, log

The runner (``python -m harness.gameday_load run RUN USERS RATE DURATION_S``) outlives `chaos load
start`; it ends at its duration, on SIGTERM, SIGINT or SIGHUP (`chaos load stop`, `chaos down`, a
person's kill), or when its run is gone. `stop` and the reaper end Locust by its own token too,
so a runner killed with SIGKILL leaves no load behind.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from harness import detached, load_figures, ownership, run_ids, state
from harness.errors import HarnessError
from harness.history import History, op_record
from harness.load import HISTORY_FILE, Load, Workload, check_bounds, history_of
from harness.topology import Topology
from harness.view import StackView

LOADS = "load"  # under the state directory
DEFAULT_USERS, DEFAULT_RATE, DEFAULT_DURATION_S = 5, 2.0, 1800  # a load nobody stops ends within half an hour
START_S = 30.0  # `chaos load start` waits this long for Locust to be running (the runner attaches, mints)
STOP_S = 30.0  # a stop waits this long for the runner and Locust to end before it kills them
LOCUST_GRACE_S = 30.0  # the runner's bound beyond the duration (Locust's stop timeout and summary)
CHECK_RUN_EVERY_S = 5.0  # how often the runner checks that its run still exists
POLL_S = 0.2
ROOT_DEPTH = 4  # how far above the topology file a declared module's package is looked for


class LoadSystem(Protocol):
    """What a game day's load asks of the system under test (the shop's: scenarios/shop/gameday.py)."""

    #: the system's anomaly classes, in its checker's order
    anomaly_order: Sequence[str]

    def workload(self, stack: StackView) -> Workload:
        """The Locust workload its customers run (the locustfile's contract: harness.load)."""
        ...

    def baseline(self, stack: StackView) -> dict[str, Any]:
        """What the checker needs to know from before the load (JSON), e.g. stock totals."""
        ...

    def judge(self, stack: StackView, history: History, baseline: Mapping[str, Any]) -> Mapping[str, str]:
        """Anomaly class -> one line of evidence, read from the outside once the system settled."""
        ...


def declared(topology: Topology) -> LoadSystem:
    """The system's LoadSystem, imported from its topology's ``load:`` (a package beside the
    topology file, or above it, is found without installing it)."""
    if topology.load is None:
        raise HarnessError(f"topology {topology.path} declares no game-day load: add `load: package.module:NAME` "
                           "(a LoadSystem, see harness/gameday_load.py)")
    module_name, _, name = topology.load.partition(":")
    top = module_name.split(".")[0]
    for directory in [topology.path.parent, *topology.path.parents][:ROOT_DEPTH]:
        if (directory / top).is_dir() or (directory / f"{top}.py").is_file():
            if str(directory) not in sys.path:
                sys.path.insert(0, str(directory))
            break
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HarnessError(f"topology {topology.path}: load {topology.load!r} does not import ({exc})") from None
    system = getattr(module, name, None)
    if system is None:
        raise HarnessError(f"topology {topology.path}: load {topology.load!r}: {module_name} has no {name}")
    found: LoadSystem = system
    return found


# ---------------------------------------------------------------- the record

def record_path(run_id: str, root: Path | None = None) -> Path:
    return (root or state.state_dir()) / LOADS / f"{run_ids.valid(run_id)}.json"


def load_dir(run_id: str, root: Path | None = None) -> Path:
    return (root or state.state_dir()) / LOADS / run_ids.valid(run_id)


def read(run_id: str, root: Path | None = None) -> dict[str, Any]:
    """The run's load record ({} when there is none, or it is unreadable)."""
    try:
        found = json.loads(record_path(run_id, root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _update(run_id: str, root: Path | None = None, **fields: Any) -> dict[str, Any]:
    with state.locked(record_path(run_id, root)):
        record = {**read(run_id, root), **fields}
        state.write_whole(record_path(run_id, root), json.dumps(record))
    return record


def summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """One load of the day as the report lists it: its settings, when it ran, Locust's aggregate."""
    return {key: record.get(key) for key in ("users", "rate", "duration_s", "started", "ended", "stats")}


def live_tokens(record: Mapping[str, Any]) -> list[str]:
    """The record's processes (runner, Locust) that still run."""
    return [token for token in (record.get("runner"), record.get("locust"))
            if isinstance(token, str) and ownership.owner_alive(token)]


def recorded_runs(root: Path | None = None) -> list[str]:
    """The runs this state directory has a load record of."""
    directory = (root or state.state_dir()) / LOADS
    return sorted(path.stem for path in directory.glob("*.json") if run_ids.is_run_id(path.stem))


def running_runs(root: Path | None = None) -> list[str]:
    """The runs whose load still runs."""
    return [run_id for run_id in recorded_runs(root) if live_tokens(read(run_id, root))]


# ---------------------------------------------------------------- start, stop, reap

def start(stack: StackView, users: int = DEFAULT_USERS, rate: float = DEFAULT_RATE,
          duration_s: int = DEFAULT_DURATION_S) -> dict[str, Any]:
    """Starts the run's load, detached; returns its record once Locust runs. Refused while the
    run's load still runs; a runner that fails to start Locust is said in one line."""
    check_bounds(users, rate, duration_s)
    system = declared(stack.topology)
    run_id = stack.run_id
    with state.locked(record_path(run_id)):
        before = read(run_id)
        if live_tokens(before):
            raise HarnessError(f"a load already runs on run {run_id} ({before['users']} users x {before['rate']:g}/s, "
                               f"started {time.strftime('%H:%M:%S', time.localtime(before['started']))}): "
                               "`chaos load stop` ends it")
        baseline = before.get("baseline")
        earlier = [*before.get("earlier", []), *([summary(before)] if before.get("started") else [])]
        record = {"run_id": run_id, "users": users, "rate": rate, "duration_s": duration_s, "started": time.time(),
                  "baseline": system.baseline(stack) if baseline is None else baseline, "earlier": earlier,
                  "runner": None, "locust": None, "error": None, "ended": None, "stats": None}
        state.write_whole(record_path(run_id), json.dumps(record))
        pid = detached.spawn_detached("harness.gameday_load", "run", run_id, str(users), f"{rate:g}", str(duration_s))
        record["runner"] = ownership.owner_token(pid)
        state.write_whole(record_path(run_id), json.dumps(record))
    try:
        return _started(run_id)
    except BaseException:  # not started, or Ctrl-C while waiting: nothing of it keeps running
        stop(run_id)
        raise


def _started(run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        record = read(run_id)
        if record.get("error"):
            raise HarnessError(f"the load of run {run_id} did not start: {record['error']}")
        if record.get("locust"):
            return record
        if not live_tokens(record):
            raise HarnessError(f"the load of run {run_id} did not start: its runner ended "
                               f"(see {load_dir(run_id) / 'locust.log'})")
        time.sleep(POLL_S)
    raise HarnessError(f"the load of run {run_id} was not running after {START_S:.0f}s: stopped it")


def _signal(tokens: list[str], signum: int) -> None:
    for token in tokens:
        try:
            os.kill(int(token.split(":")[0]), signum)
        except ProcessLookupError:
            pass


def stop(run_id: str, root: Path | None = None) -> dict[str, Any] | None:
    """Ends the run's load: SIGTERM to its runner (which stops Locust, so Locust writes its
    summary), then, past STOP_S, SIGKILL to what still runs. None when no load ran."""
    record = read(run_id, root)
    alive = live_tokens(record)
    if not alive:
        return None
    _signal(alive[:1], signal.SIGTERM)  # the runner if it lives, else Locust itself
    deadline = time.monotonic() + STOP_S
    while live_tokens(record) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    _signal(live_tokens(record), signal.SIGKILL)
    return _update(run_id, root, ended=read(run_id, root).get("ended") or time.time())


def forget(run_id: str, root: Path | None = None) -> None:
    """Removes the run's load record and answers (once its report holds them, or its run is gone)."""
    record_path(run_id, root).unlink(missing_ok=True)
    record_path(run_id, root).with_suffix(".lock").unlink(missing_ok=True)
    shutil.rmtree(load_dir(run_id, root), ignore_errors=True)


def reap(running: set[str], root: Path | None = None) -> list[str]:
    """Stops and forgets the loads of runs that no longer run (`running`: the runs on the
    daemon); returns them."""
    gone = [run_id for run_id in recorded_runs(root) if run_id not in running]
    for run_id in gone:
        stop(run_id, root)
        forget(run_id, root)
    return gone


# ---------------------------------------------------------------- the runner

def run(run_id: str, users: str, rate: str, duration_s: str) -> None:
    """The detached runner: Locust until its duration, a signal, or the run's end (bounded)."""
    from harness.faults.attach import attach, still_there

    ending = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: ending.set())
    try:
        stack = attach(run_id)
        workload = declared(stack.topology).workload(stack)
        load = Load(stack, workload, users=int(users), rate=float(rate), duration_s=int(duration_s),
                    directory=load_dir(run_id))
        load.__enter__()
    except Exception as exc:  # said to `chaos load start`, which is waiting for it
        _update(run_id, error=f"{type(exc).__name__}: {exc}"[:300])
        raise HarnessError(str(exc)) from None
    assert load.process is not None  # __enter__ started it
    _update(run_id, locust=ownership.owner_token(load.process.pid))
    deadline = time.monotonic() + int(duration_s) + LOCUST_GRACE_S
    there = still_there(run_id, CHECK_RUN_EVERY_S)
    try:
        while load.process.poll() is None and time.monotonic() < deadline and not ending.wait(1.0):
            if not there():
                break  # `chaos down` removed it
    finally:
        load.stop()
        _update(run_id, ended=time.time(), stats=load.stats())


# ---------------------------------------------------------------- what the report reads

def history(run_id: str, root: Path | None = None) -> History:
    return history_of(load_dir(run_id, root) / HISTORY_FILE)


def findings(run_id: str, stack: StackView | None, faults: list[dict[str, Any]],
             problems: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The load's operations (for the report's impact) and its figures: each load of the day
    (settings, times, Locust's aggregate), the ledger
    (the system's checker; None when it could not judge, said in `problems`), SLO figures and
    the impact per fault window. Nothing when no load ran on the run."""
    record = read(run_id)
    if not record:
        return [], {}
    answers = history(run_id)
    ops = [op_record(op) for op in answers.ops]
    ledger: dict[str, Any] | None = None
    if stack is None:
        problems.append("ledger: the stack was gone")
    else:
        try:
            system = declared(stack.topology)
            found = system.judge(stack, answers, record.get("baseline") or {})
            ledger = {"orders": len({op.key for op in answers.ops}), "anomalies": dict(found)}
        except Exception as exc:  # noqa: BLE001  # judging must not lose the report
            problems.append(f"ledger: {type(exc).__name__}: {exc}"[:200])
    loads = [*record.get("earlier", []), summary(record)]
    return ops, {"loads": loads, "ledger": ledger, "slo": load_figures.slo(ops, faults),
                 "impact_per_fault": load_figures.per_fault(ops, faults)}


def ledger_reason(figures: Mapping[str, Any]) -> str | None:
    """The game day's [ledger] reason when the checker found anomalies (None otherwise)."""
    anomalies = (figures.get("ledger") or {}).get("anomalies") or {}
    if not anomalies:
        return None
    return "[ledger] " + "; ".join(f"{kind}: {evidence}" for kind, evidence in anomalies.items())


def main(argv: list[str]) -> int:
    return detached.detached_main(argv, "run", "python -m harness.gameday_load run RUN_ID USERS RATE DURATION_S", run)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
