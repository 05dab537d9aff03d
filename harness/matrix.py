"""The mutation matrix: each protection turned off on its own, the scenarios that guard it run,
and each cell judged by which guard failed.

Mutation testing measures a suite by the bugs it kills; here the bugs are protections of the
shop switched off (harness.protections), and the suite is scenarios/. A scenario's marker says
which protections each of its guards protects (`protects={"fallback_202": "fallback"}`), and
which of its checks are preconditions (the fault did what it should: no protection can make
it fail, and when it fails the cell proves nothing). A cell is

- killed:   the scenario failed on a guard that names the disabled protection;
- survived: the scenario passed with the protection off (its guards cannot see it go);
- wrong:    it failed for another reason (another guard, a precondition, an error).

The matrix holds when every protection is killed somewhere and every guard that names a
protection was killed by at least one: then no protection is unguarded, and no guard is one
that cannot fail. Only plain data here (report records in, a summary out), so it is judged the
same way in the plugin, in `chaos matrix` and in unit tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

VERDICTS = ("killed", "survived", "wrong")


def protected(protects: Mapping[str, str | Iterable[str]] | None) -> dict[str, tuple[str, ...]]:
    """A marker's protects= as guard tag -> protection names (a single name may stand alone)."""
    return {tag: (names,) if isinstance(names, str) else tuple(names) for tag, names in (protects or {}).items()}


def guarding(protects: Mapping[str, tuple[str, ...]]) -> list[str]:
    """The protections a scenario's guards name, once each, in declaration order."""
    return list(dict.fromkeys(name for names in protects.values() for name in names))


def failed_guard(record: Mapping[str, Any]) -> str | None:
    """The tag of the guard that failed the scenario: the last one that ran and did not hold."""
    failed = [g["tag"] for g in record.get("guards") or [] if not g.get("held")]
    return failed[-1] if failed else None


def judge(record: Mapping[str, Any]) -> dict[str, Any]:
    """One cell from a scenario's report record (which carries its mutant and its protects=)."""
    protection = record["mutant"]
    guard = failed_guard(record)
    protects = {tag: tuple(names) for tag, names in (record.get("protects") or {}).items()}
    if record.get("outcome") == "passed":
        verdict = "survived"
    elif guard is not None and protection in protects.get(guard, ()) and not record.get("guardrail"):
        verdict = "killed"
    else:
        verdict = "wrong"
    return {"protection": protection, "scenario": record["scenario"], "verdict": verdict, "guard": guard,
            "reason": None if verdict == "survived" else (record.get("reason") or "")[:300],
            "duration_s": record.get("duration_s")}


def summarise(records: Iterable[Mapping[str, Any]], protections: Iterable[str],
              declared: Mapping[str, Mapping[str, Iterable[str]]], complete: bool = True) -> dict[str, Any]:
    """The matrix of a run's report records (see aggregate)."""
    return aggregate([judge(record) for record in records if record.get("mutant")], protections, declared, complete)


def merge(parts: Iterable[Mapping[str, Any]], protections: Iterable[str], complete: bool = True) -> dict[str, Any]:
    """One matrix from the summaries of runs that each took some of the protections (workers)."""
    parts = list(parts)
    declared = {scenario: protects for part in parts for scenario, protects in part["declared"].items()}
    return aggregate([cell for part in parts for cell in part["cells"]], protections, declared, complete)


def aggregate(cells: list[dict[str, Any]], protections: Iterable[str],
              declared: Mapping[str, Mapping[str, Iterable[str]]], complete: bool = True) -> dict[str, Any]:
    """The matrix: its cells, per protection whether (and by what) it was killed, per guard of
    scenarios/ which protections killed it, and whether the whole holds.

    `declared` is every scenario's protects= (scenario -> tag -> names), run or not: a guard of
    a scenario no cell ran is as unproven as one that survived. `complete` is False when only
    some protections were asked for; then only those must be killed, and guards are reported
    but not required."""
    wanted = list(protections)
    by_protection = {
        name: sorted({c["scenario"] for c in cells if c["protection"] == name and c["verdict"] == "killed"})
        for name in wanted
    }
    guards: dict[str, dict[str, Any]] = {}
    for scenario, protects in declared.items():
        for tag, names in protects.items():
            killers = sorted({c["protection"] for c in cells if c["scenario"] == scenario and c["guard"] == tag
                              and c["verdict"] == "killed"})
            guards[f"{scenario}[{tag}]"] = {"scenario": scenario, "guard": tag, "protects": list(names),
                                            "killed_by": killers}
    unkilled = [name for name, killers in by_protection.items() if not killers]
    unproven = [key for key, g in guards.items() if not g["killed_by"]]
    holds = not unkilled and (not complete or not unproven) and bool(cells)
    return {"cells": cells, "protections": {name: {"killed_by": by_protection[name]} for name in wanted},
            "guards": guards, "unkilled_protections": unkilled, "unproven_guards": unproven,
            "counts": {v: sum(1 for c in cells if c["verdict"] == v) for v in VERDICTS},
            "complete": complete, "holds": holds,
            "declared": {scenario: {tag: list(names) for tag, names in protects.items()}
                         for scenario, protects in declared.items()}}


def table(summary: Mapping[str, Any]) -> tuple[list[str], list[tuple[str, dict[str, dict[str, Any]]]]]:
    """Columns (scenarios, in the order their cells ran) and rows (protection -> cells by scenario)."""
    columns = list(dict.fromkeys(c["scenario"] for c in summary["cells"]))
    rows = [(name, {c["scenario"]: c for c in summary["cells"] if c["protection"] == name})
            for name in summary["protections"]]
    return columns, rows
