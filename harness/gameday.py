"""A game day's record: what the kept stack went through from `chaos up` to `chaos down`,
written as the same reports a scenario run gets.

`chaos up` starts a detached recorder (``python -m harness.gameday record RUN``) that samples
the stack's health through its edge at 2 Hz into the state directory for as long as the run
exists (bounded: a day). The registry already keeps the run's fault journal (every inject,
landing, heal and guardrail trip, whoever made it: the CLI, a guardrail, a pytest session on
``--stack=external``). `chaos down` turns both, with the alerts the alert receiver got and the
loudest log lines, into reports/<run-id>/: report.json, report.html, timeline.csv and the
incident records, one entry named ``game_day``. When a load ran (`chaos load start`,
harness.gameday_load) its answers are the entry's orders (the impact during the faults) and its
figures hold the system checker's ledger, the SLO figures and the impact per fault window. Its
verdict: passed when no guardrail tripped, the ledger found no anomaly and health was back to
green after the last heal.
"""

from __future__ import annotations

import contextlib
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from harness import detached, gameday_load, guardrails, observe, run_ids, state
from harness.probes import rate
from harness.recovery import fault_windows
from harness.report import run_directory, schema, write_all
from harness.report.json_report import EncodedItems
from harness.view import StackView

RECORD_HZ = 2.0
MAX_RECORD_S = 86400.0
CHECK_RUN_EVERY_S = 5.0  # how often the recorder checks that its run still exists


def samples_path(run_id: str, root: Path | None = None) -> Path:
    """samples/<run id>.jsonl; a run id that is not one (``../x``) never becomes a path."""
    return (root or state.state_dir()) / "samples" / f"{run_ids.valid(run_id)}.jsonl"


def samples(run_id: str, root: Path | None = None) -> list[dict[str, Any]]:
    path = samples_path(run_id, root)
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    try:  # one parse of the whole day, its newlines made commas: a call per line costs as much again
        found = list(json.loads("[" + text.rstrip("\n").replace("\n", ",") + "]"))
        return EncodedItems.of_lines(text, found)  # the report copies the lines, as record wrote them
    except ValueError:  # a line cut short by a kill, or a blank one: skip it, the rest is still good
        pass
    found = []
    lines = text.splitlines()
    for line in lines:
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def record(run_id: str, hz: float = RECORD_HZ, max_s: float = MAX_RECORD_S) -> int:
    """Appends health samples of the run until it is gone (or max_s); returns how many."""
    from harness.faults.attach import attach, still_there
    from harness.probes import every, health_of

    health = health_of(attach(run_id), timeout_s=0.5)
    path = samples_path(run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    written, there = 0, still_there(run_id, CHECK_RUN_EVERY_S)
    with health, path.open("a", encoding="utf-8") as out:
        for sample in every(health, hz, max_s):
            out.write(json.dumps(sample) + "\n")  # json.dumps's separators, as the report's (EncodedItems)
            out.flush()
            written += 1
            if not there():
                break  # `chaos down` removed it
    return written


def logged_services(stack: StackView | None) -> tuple[str, ...]:
    """The services whose log events a game day's report reads: the system's own, those with a
    health URL in the run's topology (not its databases, brokers or Toxiproxy)."""
    if stack is None:
        return ()
    return tuple(name for name, service in stack.topology.services.items() if service.health is not None)


def scenario(run_id: str, stack: StackView | None) -> dict[str, Any]:
    """The game day as one report entry, from its samples, journal, alerts and logs."""
    journal = state.journal(run_id)
    entries = [e for e in journal if e["action"] in ("inject", "landed", "heal")]
    trips = [e for e in journal if e["action"] == "abort"]
    seen = samples(run_id)
    began = min([s["ts"] for s in seen[:1]] + [e["ts"] for e in journal[:1]], default=time.time())
    finished = seen[-1]["ts"] if seen else time.time()
    problems: list[str] = []
    ops, load = gameday_load.findings(run_id, stack, fault_windows(entries), problems)
    observed = observe.entry(stack, window={"started": began, "finished": finished},
                             probe=rate(seen, began, finished), samples=seen, journal=entries, ops=ops,
                             services=logged_services(stack), manual_line=None)
    observed["unobserved"] += problems
    reason = None
    if trips:
        reason = guardrails.reason(trips[-1])
    elif gameday_load.ledger_reason(load):
        reason = gameday_load.ledger_reason(load)
    elif entries and observed["recovered_at"] is None:
        reason = "[not_recovered] health was not back to green, and stable, after the last heal"
    return schema.scenario_entry({
        "name": "game_day", "scenario": "game_day", "mutant": None, "protects": {}, "preconditions": [],
        "nodeid": f"game day {run_id}", "root_cause": None, "runbook": [], "guards": [],
        "outcome": "failed" if reason else "passed", "duration_s": observed["probe"]["wall_s"], "reason": reason,
        "figures": {"faults_injected": sum(e["action"] == "inject" for e in entries), "guardrail_trips": len(trips),
                    **load},
        "guardrail": trip_of(trips[-1]) if trips else None, "recovery_actions": recovery_actions(journal),
        **observed,
    }, "game_day")


RECOVER = "recover"  # the journal's entry of a recovery action (`chaos restart`)
ACTION_FIELDS = ("what", "target", "when", "outcome")


def recovery_actions(journal: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recovery actions the operator took during the day (`chaos restart`), as the entry keeps them."""
    return [{key: e[key] for key in ACTION_FIELDS} for e in journal if e["action"] == RECOVER]


def trip_of(abort: dict[str, Any]) -> dict[str, Any]:
    """A guardrail trip from its journal entry (the watcher's ``abort``): the trip without the journal's action."""
    return {key: value for key, value in abort.items() if key != "action"}


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Python's cycle collector paused for the report: a day's samples are a third of a million
    dicts that live until the report is written and hold no cycles, so the collector's passes
    over them (hundreds, as they are made) find nothing and cost a tenth of the report's time.
    Reference counting still frees everything; the collector runs again afterwards."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def write_report(run_id: str, reports: Path, stack: StackView | None) -> Path | None:
    """reports/<run-id>/ for a recorded game day (None for a run `chaos up` did not start: no
    recording); the samples file goes once the report holds them."""
    if not samples_path(run_id).exists():
        return None
    with _no_cyclic_gc():
        entry = scenario(run_id, stack)
        run = schema.run_block({
            "run_id": run_id, "started": entry["window"]["started"], "finished": entry["window"]["finished"],
            "sut_mode": stack.sut_mode if stack is not None else "unknown", "disabled": None, "stack": "game-day",
            "exit_status": 0 if entry["outcome"] == "passed" else 1})
        run_dir = write_all(run_directory(reports, run_id), run, [entry])
    samples_path(run_id).unlink(missing_ok=True)
    gameday_load.forget(run_id)  # its answers are in the report now
    return run_dir


def main(argv: list[str]) -> int:
    return detached.detached_main(argv, "record", "python -m harness.gameday record RUN_ID", record)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
