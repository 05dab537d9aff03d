"""What a finding leaves behind: a replay file (reports/<run>/explore/<anomaly>.json: the seed,
the smallest schedule, the anomaly, its evidence and the shrink steps) and a scenario module a
person can move into scenarios/ (it fails while the bug is there, and passes once it is fixed).

A replay file is read back with the same bounds as a generated schedule, and anything wrong
in it is one line naming the file and the field.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import HarnessError
from harness.explore.schedule import Schedule
from harness.explore.search import Exploration, Finding, Trial

VERSION = 1


class Replay(BaseModel):
    """One finding, as a file."""

    model_config = ConfigDict(extra="forbid")

    version: int = VERSION
    anomaly: str
    evidence: str
    seed: int
    schedule: Schedule
    system: str = Field(description="the System object, as package.module:NAME")
    topology: str | None = None
    sut_disable: list[str] = Field(default_factory=list)
    first: Schedule
    shrinks: list[dict[str, Any]] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


def _trial(trial: Trial) -> dict[str, Any]:
    evidence = trial.judgement.anomalies.get(trial.anomaly, "") if trial.anomaly else ""
    return {"index": trial.index, "phase": trial.phase, "anomaly": trial.anomaly, "evidence": evidence,
            "ended_s": trial.ended_s, "took_s": trial.took_s, "schedule": str(trial.schedule),
            "steps": [step.model_dump(mode="json") for step in trial.schedule.steps],
            "size": list(trial.schedule.size()), "notes": list(trial.judgement.notes)}


def summary(exploration: Exploration, files: list[Path]) -> dict[str, Any]:
    """The whole search as data: explore.json, and the exploring scenario's figures, which the
    report draws (each schedule with its faults as bands and its anomaly as a mark, the shrink
    steps, the smallest schedule)."""
    elapsed = exploration.elapsed_s
    return {"seed": exploration.seed, "budget_s": exploration.budget_s, "elapsed_s": elapsed,
            "started_at": exploration.started_at, "stopped": exploration.stopped,
            "schedules": len(exploration.trials),
            "per_minute": round(60 * len(exploration.trials) / elapsed, 2) if elapsed else None,
            "unconfirmed": [t.index for t in exploration.unconfirmed],
            "trials": [_trial(t) for t in exploration.trials],
            "findings": [{"anomaly": f.anomaly, "first_s": f.first.ended_s, "shrunk_s": f.smallest.ended_s,
                          "smallest": str(f.smallest.schedule), "steps": len(f.smallest.schedule.steps),
                          "shrinks": [t.index for t in f.shrinks], "replay": str(path)}
                         for f, path in zip(exploration.findings(), files)]}


def of(finding: Finding, seed: int, system: str, topology: str | None, sut_disable: list[str]) -> Replay:
    smallest = finding.smallest
    return Replay(anomaly=finding.anomaly, evidence=smallest.judgement.anomalies.get(finding.anomaly, ""),
                  seed=seed, schedule=smallest.schedule, system=system, topology=topology,
                  sut_disable=sut_disable, first=finding.first.schedule,
                  shrinks=[_trial(t) for t in finding.shrinks], notes=list(smallest.judgement.notes))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "finding"


def scenario_module(replay: Replay, replay_file: str) -> str:
    """A scenario that runs the smallest schedule once and fails on its anomaly, through the
    ledger's guard (the one every scenario shares), so it stands with the others in scenarios/."""
    module, _, name = replay.system.partition(":")
    disabled = f" (with --sut-disable {','.join(replay.sut_disable)})" if replay.sut_disable else ""
    steps = textwrap.indent(json.dumps(replay.schedule.model_dump(mode="json"), indent=4), "    ")
    about = "\n".join(textwrap.wrap(f"Smallest schedule: {replay.schedule}. Evidence: {replay.evidence[:400]}", 96))
    return f'''"""Found by `chaos explore --seed {replay.seed}`{disabled}: {replay.anomaly}.

{about}

Replay it with:
    chaos replay {replay_file}
This module fails while the bug is there.
"""

import pytest

from harness.explore.runner import run
from harness.explore.schedule import Schedule
from harness.guards import expect
from {module} import {name} as SYSTEM

SCHEDULE = Schedule.model_validate(
{steps}
)


@pytest.mark.chaos(root_cause=None)
def test_explored_{_slug(replay.anomaly)}(stack, chaos):
    judgement = run(stack, SCHEDULE, SYSTEM, seed={replay.seed}, injector=chaos)
    expect("ledger", {json.dumps(replay.anomaly)} not in judgement.anomalies,
           judgement.anomalies.get({json.dumps(replay.anomaly)}, ""))
'''


def write(directory: Path, exploration: Exploration, system: str, topology: str | None,
          sut_disable: list[str]) -> list[Path]:
    """explore.json (every trial, one line each) and, per finding, its replay file and scenario
    module; returns the replay files."""
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for finding in exploration.findings():
        replay = of(finding, exploration.seed, system, topology, sut_disable)
        path = directory / f"{_slug(finding.anomaly)}.json"
        path.write_text(replay.model_dump_json(indent=2), encoding="utf-8")
        (directory / f"test_explored_{_slug(finding.anomaly)}.py").write_text(
            scenario_module(replay, str(path)), encoding="utf-8")
        files.append(path)
    (directory / "explore.json").write_text(json.dumps(summary(exploration, files), indent=2), encoding="utf-8")
    return files


def load(path: Path) -> Replay:
    """A replay file, or one line saying what is wrong with it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HarnessError(f"can't read replay file {path}: {exc.strerror or exc}") from None
    try:
        return Replay.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(the file)"
        raise HarnessError(f"{path}: {where}: {first['msg']}; `chaos explore` writes replay files") from None
