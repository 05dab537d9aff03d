"""An exploration in report.html: every schedule it ran drawn on one chart (a row each, its faults
as bands over the schedule's own seconds, its anomaly as a mark), the shrink steps from the
first failing schedule to the smallest, and that smallest schedule step by step.

Drawn from the exploring scenario's figures (harness.explore.replay.summary), which are plain
data, so a report re-rendered later from report.json draws the same page. The same anomalies
are marked on the scenario's health plot at the moment each schedule was judged, under the
fault bands the chaos journal gives it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.report.markup import escaped, svg_text, table

WIDTH, ROW, LEFT, RIGHT, TOP = 1040, 16, 150, 260, 22
MAX_ROWS = 80  # the chart's rows; a longer search says how many more are in explore.json
ANOMALY_COLOR, HELD_COLOR, KEPT_COLOR = "#c62828", "#2e7d32", "#fff8e1"
FAMILY_COLORS = {"network": "#5c6bc0", "http": "#00897b", "process": "#8d6e63", "data": "#f9a825",
                 "message": "#8e24aa", "disk": "#6d4c41", "auth": "#d81b60", "config": "#546e7a"}
OTHER_COLOR = "#78909c"


def _exploration(figures: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    found = (figures or {}).get("exploration")
    return found if isinstance(found, Mapping) and isinstance(found.get("trials"), list) else None


def marks(figures: Mapping[str, Any] | None, t0: float) -> list[tuple[float, str, str]]:
    """(seconds since t0, label, colour) of each schedule that showed an anomaly, when it was judged."""
    found = _exploration(figures)
    if found is None:
        return []
    began = found.get("started_at") or t0
    return [(began + t["ended_s"] - t0, f"#{t['index'] + 1} {t['anomaly']}", ANOMALY_COLOR)
            for t in found["trials"] if t.get("anomaly")]


def _kept(found: Mapping[str, Any]) -> set[int]:
    return {index for finding in found.get("findings", []) for index in finding.get("shrinks", [])}


def chart(found: Mapping[str, Any]) -> str:
    """One row per schedule run: its steps as bands over 0..span, the verdict at the right."""
    trials = found["trials"][:MAX_ROWS]
    span = max([step["start_s"] + step["duration_s"] for t in trials for step in t["steps"]] + [1.0])
    height = TOP + ROW * len(trials) + 8
    inner = WIDTH - LEFT - RIGHT
    kept = _kept(found)

    def x(seconds: float) -> float:
        return float(LEFT + inner * seconds / span)

    parts = [f'<svg class="plot" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img">',
             "<title>explored schedules</title>",
             svg_text(LEFT, 14, f"each schedule run, its faults over the schedule's {span:g} s "
                                "(shaded: kept by the shrinker)", size=12, color="#111")]
    for row, trial in enumerate(trials):
        y = TOP + row * ROW
        if trial["index"] in kept:
            parts.append(f'<rect x="0" y="{y}" width="{WIDTH}" height="{ROW}" fill="{KEPT_COLOR}"/>')
        parts.append(svg_text(LEFT - 6, y + 12, f"#{trial['index'] + 1} {trial['phase']}", "end", 10))
        for lane, step in enumerate(trial["steps"]):
            color = FAMILY_COLORS.get(step["fault"].split(".")[0], OTHER_COLOR)
            x0, x1 = x(step["start_s"]), x(step["start_s"] + step["duration_s"])
            lane_h = (ROW - 4) / max(len(trial["steps"]), 1)
            parts.append(f'<rect x="{x0:.1f}" y="{y + 2 + lane * lane_h:.1f}" width="{max(x1 - x0, 1.5):.1f}" '
                         f'height="{max(lane_h - 1, 1):.1f}" fill="{color}" opacity="0.8">'
                         f"<title>{escaped(_step_text(step))}</title></rect>")
        verdict = trial.get("anomaly") or "held"
        color = ANOMALY_COLOR if trial.get("anomaly") else HELD_COLOR
        if trial.get("anomaly"):
            cx, cy = LEFT + inner + 10, y + ROW / 2
            parts.append(f'<path d="M{cx - 5},{cy} L{cx},{cy - 5} L{cx + 5},{cy} L{cx},{cy + 5} Z" fill="{color}"/>')
        parts.append(svg_text(LEFT + inner + 20, y + 12, f"{verdict} ({trial['took_s']:.0f} s)", size=10, color=color))
    parts.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{height - 8}" stroke="#9e9e9e"/>')
    parts.append(f'<line x1="{LEFT + inner}" x2="{LEFT + inner}" y1="{TOP}" y2="{height - 8}" stroke="#9e9e9e"/>')
    parts.append("</svg>")
    return "".join(parts)


def _step_text(step: Mapping[str, Any]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in sorted(step.get("params", {}).items()))
    return (f"{step['fault']} on {step['target']}{f' ({params})' if params else ''} "
            f"at +{step['start_s']:g}s for {step['duration_s']:g}s")


def _shrinks(by_index: Mapping[int, Mapping[str, Any]], finding: Mapping[str, Any]) -> str:
    rows = []
    for n, index in enumerate(finding.get("shrinks", [])):
        trial = by_index.get(index)
        if trial is None:
            continue
        steps, fault_s, span = trial["size"]
        rows.append((str(n), f"#{index + 1}", escaped("first failing" if n == 0 else "smaller, same anomaly"),
                     escaped(trial["schedule"]), f"{steps} steps, {fault_s:g} fault-s, {span:g} s"))
    return table(("shrink step", "schedule #", "", "schedule", "size"), rows)


def _smallest(by_index: Mapping[int, Mapping[str, Any]], finding: Mapping[str, Any]) -> str:
    shrinks: Sequence[int] = finding.get("shrinks", [])
    last = by_index.get(shrinks[-1]) if shrinks else None
    if last is None:
        return ""
    rows = [(escaped(s["fault"]), escaped(s["target"]), escaped(s.get("params", {})), f"+{s['start_s']:g} s",
             f"{s['duration_s']:g} s") for s in last["steps"]]
    return (table(("fault", "target", "parameters", "starts", "lasts"), rows)
            + f"<p>evidence: {escaped(last.get('evidence') or '', 1000)}</p>")


def section(figures: Mapping[str, Any] | None) -> str:
    """The exploration part of a scenario's section, or nothing for a scenario that did not explore."""
    found = _exploration(figures)
    if found is None:
        return ""
    per_minute = found.get("per_minute")
    parts = [f"<h3>exploration</h3><p>seed {escaped(found.get('seed'))}: {len(found['trials'])} schedules in "
             f"{found.get('elapsed_s', 0):.0f} s ({per_minute if per_minute is not None else 'n/o'} a minute), "
             f"ended: {escaped(found.get('stopped'))}; unconfirmed (failed once, held when run again): "
             f"{', '.join(f'#{i + 1}' for i in found.get('unconfirmed', [])) or 'none'}.</p>"]
    parts.append(f'<div class="plot">{chart(found)}</div>')
    if len(found["trials"]) > MAX_ROWS:
        parts.append(f"<p>{len(found['trials']) - MAX_ROWS} more schedules in explore.json.</p>")
    by_index = {t["index"]: t for t in found["trials"]}
    for finding in found.get("findings", []):
        parts.append(f"<h4>{escaped(finding['anomaly'])}: first at {finding['first_s']:.0f} s, "
                     f"shrunk by {finding['shrunk_s']:.0f} s</h4>")
        parts.append(_shrinks(by_index, finding))
        parts.append("<p>the smallest schedule that still fails for it:</p>" + _smallest(by_index, finding))
        parts.append(f"<p>replay: <code>chaos replay {escaped(finding.get('replay'))}</code></p>")
    if not found.get("findings"):
        parts.append("<p>no schedule failed.</p>")
    return "".join(parts)
