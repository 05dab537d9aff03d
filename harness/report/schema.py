"""report.json as types: the run block and one scenario entry, which every writer builds through.

Three writers fill a run's report: the pytest plugin (one entry per scenario), the game-day
recorder (`chaos down`: one entry named game_day) and `chaos matrix` (the workers' entries under
its own run block). Each builds its entries with scenario_entry and its run block with run_block,
and json_report refuses a document that does not fit (one line naming the field), so a key one
writer renames or forgets is caught where it is written, not by a reader that finds it missing
the morning after. The readers (html, incident, csv, `chaos report`) read the written dicts by
these models' field names.

Schema 3 is schema 2 (reports/README.md) with every field of an entry filled by every writer:
a game day's entry now has scenario, mutant, protects and preconditions, its run block disabled
(null: a kept stack does not record which protections were off), and its guardrail trip no
longer carries the journal's "action" key. An entry lists the recovery actions taken during the
scenario (recovery_actions: a restart of a service; empty when none was). Models forbid unknown keys and coerce nothing
(strict: a count written as "3" is an error, not 3); an int where seconds are expected is
accepted as seconds.

What the system under test said (alert texts, log events) is kept as it came (JsonValue): an
adopted system's alert with a number for `who` is a fact to report, not a reason to lose the
report. The raw timeline (`timeline`: samples, ops, journal; only in <scenario>.json) is
checked for its shape only: a game day holds a third of a million items, and typing each costs
seconds where the rest of the report takes a fraction of one; observe.entry makes it for
every writer alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError, model_validator

from harness.errors import HarnessError

SCHEMA_VERSION = 3
RAW = "timeline"  # the per-scenario-only key holding samples, ops and journal entries
RAW_PARTS = ("samples", "ops", "journal")

# The default of a field a part may lack: never validated, and never written (parts are dumped
# with exclude_unset), so an entry either has the field as typed or has no such key.
UNWRITTEN: Any = None
Seconds = float  # epoch seconds, or a duration in seconds (an int is taken as seconds too)
Measure = int | float  # a figure kept as measured: 0 stays 0, 0.5 stays 0.5


class ReportSchemaError(HarnessError):
    """A report document that does not fit this schema: which field, and what is wrong with it."""


class Part(BaseModel):
    """Every part of a report: no key the schema does not name, no type coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Run(Part):
    """The run block: one pytest session, one `chaos matrix`, or one game day (up to down)."""

    run_id: str
    started: Seconds
    finished: Seconds
    sut_mode: str  # resilient | fragile for the shop; "unknown" for a game day whose stack is gone
    disabled: list[str] | None  # the protections off for the whole run; null when not known (game day)
    stack: Literal["containers", "external", "game-day"]
    exit_status: int
    workers: int = UNWRITTEN  # `chaos matrix` only: the sessions it split the protections between
    matrix: dict[str, Any] = UNWRITTEN  # --matrix and `chaos matrix` only: harness.matrix's summary


class Guard(Part):
    """One guard (harness.guards.expect) as it ran."""

    tag: str
    prescription: str | None
    held: bool


class Trip(Part):
    """A guardrail's trip: its stop condition held while faults were active, and every fault was healed."""

    condition: str
    ts: Seconds
    held_since: Seconds
    observed: Measure | None
    level: str
    healed: list[str]
    error: str = UNWRITTEN  # only when healing failed: what it said


class Window(Part):
    """When the probe ran."""

    started: Seconds
    finished: Seconds | None


class ProbeStats(Part):
    """The probe's rate and its own CPU cost (% of one core over its running time)."""

    samples: int
    errors: int
    hz: float
    cpu_s: float | None
    cpu_percent: float | None
    wall_s: float


class FaultWindow(Part):
    """One injection; end null if it was never healed."""

    fault: str
    target: str | None
    params: dict[str, Any]
    start: Seconds
    end: Seconds | None


class Moment(Part):
    ts: Seconds
    score: int | None
    level: str


class Health(Part):
    """What the probe saw over the fault period, and the scenario's first sample."""

    samples: int
    errors: int
    levels: dict[str, int]
    worst: Moment | None
    at_start: Moment | None
    breaker_states: list[str]
    disk_used_percent_max: Measure | None
    services_below_green: dict[str, int]


class OrderCounts(Part):
    orders: int
    accepted: int
    failed: int
    unknown: int
    statuses: dict[str, int]  # "<HTTP status>", or "0" for no answer: count
    latency_p50_s: float | None
    latency_max_s: float | None


class Impact(Part):
    during_fault: OrderCounts
    whole_scenario: OrderCounts


class AlertFields(Part):
    """An alert's 5W1H as the sink received them (observe.ALERT_FIELDS; null when absent)."""

    status: JsonValue
    severity: JsonValue
    who: JsonValue
    where: JsonValue
    what: JsonValue
    when_utc: JsonValue
    when_jst: JsonValue


class Alert(Part):
    ts: Seconds
    chaos: AlertFields


class LoudLine(Part):
    service: JsonValue
    event: JsonValue
    count: int


class Logs(Part):
    """The manual's log line for the root cause, and the commonest warnings and errors."""

    manual_line: str | None
    manual_count: int
    manual_first: Seconds | None
    loudest: list[LoudLine]


class RecoveryAction(Part):
    """An action taken to restore service (harness.faults.process.restart_service): what was done,
    to which service, when it was asked for, and how it came out ("restored", or what went wrong)."""

    what: str
    target: str
    when: Seconds
    outcome: str


# The findings of the entry's timeline (recovery.findings and observe.entry): an entry has all of
# them or none (it failed in setup before its probe ran).
FINDINGS = ("window", "probe", "unobserved", "faults", "detected_at", "recovered_at", "ttd_s", "ttr_s",
                   "health", "impact", "alerts", "logs")


class ScenarioEntry(Part):
    """One scenario's entry in report.json (its <scenario>.json adds run_id and the raw timeline)."""

    name: str  # with its parameters, e.g. NAME[PARAM-VALUE]
    scenario: str  # without them
    mutant: str | None  # the protection a matrix cell turned off
    protects: dict[str, list[str]]  # guard tag -> the protections it guards (the marker's protects=)
    preconditions: list[str]  # guard tags that only prove the fault took effect
    nodeid: str
    root_cause: str | None
    runbook: list[str]  # the prescriptions its guards claim to prove
    guards: list[Guard]
    outcome: Literal["passed", "failed", "skipped"]
    duration_s: Seconds
    reason: str | None  # starts with the [guard] (or [guardrail]) that failed it
    figures: dict[str, Any]  # the scenario's own (scenario_record), as it wrote them
    guardrail: Trip | None
    recovery_actions: list[RecoveryAction]  # in the order they were taken; empty when none was
    window: Window = UNWRITTEN
    probe: ProbeStats = UNWRITTEN
    unobserved: list[str] = UNWRITTEN  # what could not be read after the scenario
    faults: list[FaultWindow] = UNWRITTEN
    detected_at: Seconds | None = UNWRITTEN
    recovered_at: Seconds | None = UNWRITTEN
    ttd_s: Seconds | None = UNWRITTEN
    ttr_s: Seconds | None = UNWRITTEN
    health: Health = UNWRITTEN
    impact: Impact = UNWRITTEN
    alerts: list[Alert] = UNWRITTEN
    logs: Logs = UNWRITTEN

    @model_validator(mode="after")
    def _all_findings_or_none(self) -> ScenarioEntry:
        present = [name for name in FINDINGS if name in self.model_fields_set]
        missing = [name for name in FINDINGS if name not in self.model_fields_set]
        if present and missing:
            raise ValueError(f"{missing[0]}: missing (an entry with {present[0]} has every finding of its timeline: "
                             f"{', '.join(FINDINGS)})")
        return self


class Report(Part):
    """report.json."""

    schema_version: Literal[3]
    run: Run
    scenarios: list[ScenarioEntry]


def _where(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a path: ('scenarios', 0, 'health', 'worst') -> scenarios[0].health.worst."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def problem(exc: ValidationError, what: str) -> str:
    """The first of a validation's errors in one line: which field, what is wrong, what it got."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = ".".join(p for p in (what, _where(tuple(first["loc"]))) if p)
    message = str(first["msg"]).removeprefix("Value error, ")
    got = "" if first["type"] in ("missing", "value_error") else f" (got {first['input']!r:.80})"
    more = f"; and {len(errors) - 1} more" if len(errors) > 1 else ""
    return " ".join(f"{where}: {message}{got}{more}".split())


def _checked(model: type[Part], fields: Mapping[str, Any], what: str) -> dict[str, Any]:
    try:
        document: dict[str, Any] = model.model_validate(dict(fields)).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise ReportSchemaError(f"report schema {SCHEMA_VERSION}: {problem(exc, what)}") from None
    return document


def raw_timeline(raw: Any, what: str = RAW) -> dict[str, list[Any]]:
    """The raw timeline as it is (its lists untouched: the game day's samples keep their lines,
    json_report.EncodedItems), once it is a dict of exactly samples, ops and journal, each a list."""
    if not isinstance(raw, dict) or sorted(raw) != sorted(RAW_PARTS):
        keys = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise ReportSchemaError(f"report schema {SCHEMA_VERSION}: {what}: should hold {', '.join(RAW_PARTS)} "
                                f"(got {keys})")
    for part in RAW_PARTS:
        if not isinstance(raw[part], list):
            raise ReportSchemaError(f"report schema {SCHEMA_VERSION}: {what}.{part}: should be a list "
                                    f"(got {type(raw[part]).__name__})")
    return raw


def scenario_entry(fields: Mapping[str, Any], what: str = "scenario") -> dict[str, Any]:
    """A scenario's entry as the reports keep it, from its fields (the raw timeline, if any,
    under RAW); raises ReportSchemaError naming the first field that does not fit."""
    entry = _checked(ScenarioEntry, {k: v for k, v in fields.items() if k != RAW}, what)
    if RAW in fields:
        entry[RAW] = raw_timeline(fields[RAW], f"{what}.{RAW}")
    return entry


def run_block(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A run block as report.json keeps it; raises ReportSchemaError naming the field that does not fit."""
    return _checked(Run, fields, "run")


def report(run: Mapping[str, Any], scenarios: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """report.json's document (raw timelines left out) and each scenario's entry with its raw
    timeline, for <scenario>.json; raises ReportSchemaError for the first field that does not fit."""
    entries = [scenario_entry(s, f"scenarios[{n}]") for n, s in enumerate(scenarios)]
    summary = [{k: v for k, v in entry.items() if k != RAW} for entry in entries]
    document = _checked(Report, {"schema_version": SCHEMA_VERSION, "run": run, "scenarios": summary}, "")
    return document, entries
