"""report.json (the whole run) and one <scenario>.json per scenario, in a versioned schema.

The schema (harness.report.schema, described in reports/README.md) holds each scenario's
verdict and its timeline's findings (fault windows, TTD/TTR, health, order impact, alerts, log
lines); the raw timeline (probe samples, order operations, fault journal) goes only into the
per-scenario file, so report.json stays small enough to read and every other report can be
rebuilt from the per-scenario files. A document that does not fit the schema is not written.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from harness.report import schema
from harness.report.schema import RAW as RAW  # re-exported: the writers and readers take them from here
from harness.report.schema import SCHEMA_VERSION as SCHEMA_VERSION

COMPACT = json.JSONEncoder(default=str)  # one for every item: json.dumps(default=) makes one per call


class EncodedItems(list):  # type: ignore[type-arg]
    """A list of items that also holds their compact encoding, one item a line, as read from a
    JSON-lines file written with COMPACT's separators (the game-day recorder's samples file):
    _dump copies those lines instead of encoding a day of samples again (half a second). Made
    only by of_lines, which checks the lines against the items; not to be changed after, or
    the lines would no longer be the items."""

    lines: str

    @classmethod
    def of_lines(cls, text: str, items: list[Any]) -> list[Any]:
        """items with text's lines kept, when there is one line per item and the first and last
        are as COMPACT encodes their items (a file from another writer, say with other
        separators, fails that and its items are encoded again); else items as they are."""
        body = text.rstrip("\n")
        if not (items and body.count("\n") + 1 == len(items)
                and body.partition("\n")[0] == COMPACT.encode(items[0])
                and body.rpartition("\n")[2] == COMPACT.encode(items[-1])):
            return items
        encoded = cls(items)
        encoded.lines = body
        return encoded


def _items(values: list[Any], separator: str) -> str:
    """Each of values compact-encoded, joined by separator. A list of dicts (a day's samples)
    is encoded in one call of json's C encoder, which puts "}, {" between its items, and that
    is replaced by "}" + separator + "{": 173,000 separate calls cost a second, mostly in
    json's per-call set-up. The replacement is exact only when "}, {" occurs nowhere else (a
    nested list of dicts, or a string holding those four characters, also has it): counted
    first, and any other list is encoded item by item. ("}, {" cannot overlap itself, so the
    count is of distinct occurrences: the len - 1 between items plus those inside items.)"""
    if isinstance(values, EncodedItems):
        return values.lines.replace("\n", separator)
    if all(type(value) is dict for value in values):
        text = COMPACT.encode(values)[1:-1]
        if text.count("}, {") == len(values) - 1:
            return text.replace("}, {", "}" + separator + "{")
    return separator.join(map(COMPACT.encode, values))


def _dump(path: Path, document: dict[str, Any]) -> None:
    """Indented for reading, but the raw timeline's lists one compact item per line: indented,
    a day's samples go through json's pure-Python encoder (seconds per hundred thousand) and
    the file is four times the size; per line they are C-encoded and still grep-able."""
    raw = document.get(RAW)
    head = json.dumps({k: v for k, v in document.items() if k != RAW}, indent=2, default=str)
    with path.open("w", encoding="utf-8") as out:
        if not isinstance(raw, dict):
            out.write(head + "\n")
            return
        out.write((head[:-2] + ",\n" if head != "{}" else "{\n") + f"  {json.dumps(RAW)}: {{")
        for n, (key, value) in enumerate(raw.items()):
            out.write(("," if n else "") + f"\n    {json.dumps(key)}: ")
            if isinstance(value, list) and value:
                out.write("[\n      " + _items(value, ",\n      ") + "\n    ]")
            else:
                out.write(COMPACT.encode(value))
        out.write("\n  }\n}\n")


def write(run_dir: Path, run: dict[str, Any], scenarios: list[dict[str, Any]]) -> Path:
    """Writes the run's JSON files and points <reports>/latest at the run directory; a run or
    scenario that does not fit the schema is refused (ReportSchemaError) before anything is written."""
    document, entries = schema.report(run, scenarios)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "report.json"
    _dump(path, document)
    for entry in entries:
        _dump(run_dir / f"{entry['name']}.json",
              {"schema_version": SCHEMA_VERSION, "run_id": document["run"]["run_id"], **entry})
    point_latest(run_dir)
    return path


def point_latest(run_dir: Path) -> None:
    """<reports>/latest -> run_dir, swapped atomically through a link named for this process
    and call: two sessions finishing at once each rename their own, and latest always names a
    complete run (whichever renamed last)."""
    tmp = run_dir.parent / f".latest.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    os.symlink(run_dir.name, tmp)
    try:
        os.replace(tmp, run_dir.parent / "latest")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read(run_dir: Path) -> dict[str, Any]:
    """report.json of a run directory (raises OSError / ValueError when absent or damaged)."""
    report: dict[str, Any] = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    return report


def seconds(value: float | None) -> str:
    """A duration for people: '1.23 s', or 'n/o' (not observed)."""
    return "n/o" if value is None else f"{value:.2f} s"


def summary_rows(scenarios: list[dict[str, Any]], reason_chars: int = 100) -> list[dict[str, str]]:
    """One row per scenario (scenario, verdict, TTD, TTR, reason): the table both the CLI and
    report.html put first. Reasons keep their first line only."""
    def reason(text: str | None) -> str:
        first = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
        return first if len(first) <= reason_chars else first[:reason_chars - 1] + "…"

    return [{"scenario": s["name"], "verdict": s.get("outcome", "?"), "ttd": seconds(s.get("ttd_s")),
             "ttr": seconds(s.get("ttr_s")), "reason": reason(s.get("reason"))} for s in scenarios]


def time_under_fault(run: dict[str, Any], scenarios: list[dict[str, Any]]) -> dict[str, float | None]:
    """The run's length next to the time some fault was active (every scenario's fault windows,
    merged where they overlap; one still open ends with its scenario), and their ratio: what a run
    spends besides injecting (stacks, baselines, recovery, judging). None where it is not known."""
    spans = sorted((w["start"], w["end"] or (s.get("window") or {}).get("finished") or w["start"])
                   for s in scenarios for w in s.get("faults") or [] if w.get("start") is not None)
    merged: list[list[float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    faults_s = sum(end - start for start, end in merged)
    run_s = run["finished"] - run["started"] if run.get("finished") and run.get("started") else None
    return {"run_s": run_s, "faults_s": faults_s,
            "ratio": run_s / faults_s if run_s is not None and faults_s > 0 else None}


def under_fault_line(run: dict[str, Any], scenarios: list[dict[str, Any]]) -> str:
    """The same for people: '1204 s, faults active 510 s of it (ratio 2.36)'."""
    figures = time_under_fault(run, scenarios)
    if figures["run_s"] is None:
        return "not known (the run did not finish)"
    ratio = "no fault injected" if figures["ratio"] is None else f"ratio {figures['ratio']:.2f}"
    return f"{figures['run_s']:.0f} s, faults active {figures['faults_s']:.0f} s of it ({ratio})"


JST = timezone(timedelta(hours=9), "JST")
STAMPS = {  # how a moment is written, by purpose
    "utc": lambda t: t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC",
    "jst": lambda t: t.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " JST",
    "iso": lambda t: t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    "clock": lambda t: t.astimezone(timezone.utc).strftime("%H:%M:%S.%f")[:-3],
}


def iso_stamps(times: list[float]) -> list[str]:
    """stamp(ts, "iso") of every ts, for a day of CSV rows: datetime's rounding to the
    microsecond kept, then cut to the millisecond as stamp does, but no datetime per sample.
    The date is made once per day and the time of day by arithmetic (epoch time has no leap
    seconds: a UTC day is 86400 s), each whole second once: a strftime per second was a
    quarter of the CSV's time."""
    days: dict[int, str] = {}
    seconds: dict[int, str] = {}
    out = []
    for ts in times:
        frac, whole = math.modf(ts)
        micros = round(frac * 1e6)
        second = int(whole) + (micros >= 1_000_000) - (micros < 0)
        micros %= 1_000_000
        if second not in seconds:
            day, of_day = divmod(second, 86400)
            if day not in days:
                days[day] = datetime.fromtimestamp(day * 86400, timezone.utc).strftime("%Y-%m-%d")
            hours, rest = divmod(of_day, 3600)
            seconds[second] = f"{days[day]}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
        out.append(f"{seconds[second]}.{micros // 1000:03d}Z")
    return out


def stamp(ts: float | None, style: str = "utc") -> str:
    """An epoch time for people: 'utc', 'jst', 'iso' (for CSV) or 'clock' (UTC time of day)."""
    return "n/o" if ts is None else STAMPS[style](datetime.fromtimestamp(ts, timezone.utc))
