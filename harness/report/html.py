"""report.html: the run as one self-contained page that opens offline from file://.

Plots are inline SVG drawn here (no script, no font, no stylesheet fetched from anywhere), so
the page works on an air-gapped laptop and in a CI artefact viewer alike. Per scenario: the
verdict and its reason, TTD/TTR, the scenario's own figures, and over time the health score
and, when the scenario kept an order history, order latency and error rate, with the fault
windows shaded and labelled on every plot so cause and effect line up vertically.
"""

from __future__ import annotations

import html as markup
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from harness import recovery
from harness.report import exploration, load_section
from harness.report.incident import LANGUAGES, filename, prescription_verdicts, slug
from harness.report.json_report import RAW, SCHEMA_VERSION, seconds, stamp, summary_rows, under_fault_line
from harness.report.markup import escaped as _e
from harness.report.markup import svg_text as _text
from harness.report.markup import table as _table
from harness.runbook import ROOT_CAUSES

WIDTH, HEIGHT = 1040, 210
LEFT, RIGHT, TOP, BOTTOM = 58, 14, 24, 26
# The health bands of the RabbitMQ-configuration incident.
LEVEL_BANDS = ((90, 100, "#e8f5e9"), (70, 90, "#fffde7"), (50, 70, "#fff3e0"), (0, 50, "#ffebee"))
OUTCOME_COLORS = {"ok": "#1565c0", "fail": "#c62828", "unknown": "#6d4c41", "pending": "#9e9e9e"}
VERDICT_COLORS = {"passed": "#2e7d32", "failed": "#c62828", "skipped": "#757575"}
# A matrix cell: a kill is the guard doing its job (green); a survivor is an unguarded protection.
CELL_COLORS = {"killed": "#c8e6c9", "survived": "#ffcdd2", "wrong": "#ffe0b2"}
X_STEPS = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200)
MAX_X_TICKS = 12
MARK_ROWS = 4
NICE = (1.0, 2.0, 2.5, 5.0, 10.0)
ERROR_BIN_S = 1.0
EDGE_ACTIONS = ("inject", "landed", "heal")  # journal moments a plot must show exactly, however thinned


@dataclass(frozen=True)
class Series:
    """One thing drawn in a plot: `kind` picks the drawing (see DRAW); points are (t, value)."""

    label: str
    points: list[tuple[float, float | None]]  # None: a gap in a step line
    color: str
    kind: str = "step"
    width: float = 0.0  # bars: their width in t


@dataclass(frozen=True)
class Axes:
    """Maps (seconds since the scenario started, value) to SVG coordinates."""

    t_end: float
    y_max: float

    def x(self, t: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * min(max(t, 0.0), self.t_end) / self.t_end

    def y(self, value: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - min(max(value, 0.0), self.y_max) / self.y_max)


def _step(axes: Axes, s: Series) -> str:
    """Held values: a health score is true until the next sample says otherwise. A None value
    (no answer) breaks the line, so a silent stretch is never drawn as the last known score."""
    runs: list[list[str]] = [[]]
    for (t, v), (t_next, _) in zip(s.points, s.points[1:] + [(s.points[-1][0], None)]):
        if v is None:
            runs.append([])
            continue
        runs[-1] += [f"{axes.x(t):.1f},{axes.y(v):.1f}", f"{axes.x(t_next):.1f},{axes.y(v):.1f}"]
    return "".join(f'<polyline fill="none" stroke="{s.color}" stroke-width="1.8" points="{" ".join(run)}"/>'
                   for run in runs if run)


def _dots(axes: Axes, s: Series) -> str:
    return "".join(f'<circle cx="{axes.x(t):.1f}" cy="{axes.y(v):.1f}" r="2.6" fill="{s.color}"/>'
                   for t, v in s.points if v is not None)


def _bars(axes: Axes, s: Series) -> str:
    width = max(axes.x(s.width) - axes.x(0), 1.0)
    return "".join(f'<rect x="{axes.x(t):.1f}" y="{axes.y(v):.1f}" width="{width - 1:.1f}" '
                   f'height="{axes.y(0) - axes.y(v):.1f}" fill="{s.color}" opacity="0.8"/>'
                   for t, v in s.points if v is not None)


DRAW: dict[str, Callable[[Axes, Series], str]] = {"step": _step, "dots": _dots, "bars": _bars}


def _x_ticks(axes: Axes) -> str:
    step = next((s for s in X_STEPS if axes.t_end / s <= MAX_X_TICKS), X_STEPS[-1])
    ticks = [i * step for i in range(int(axes.t_end // step) + 1)][: MAX_X_TICKS + 1]
    return "".join(f'<line x1="{axes.x(t):.1f}" x2="{axes.x(t):.1f}" y1="{HEIGHT - BOTTOM}" y2="{HEIGHT - BOTTOM + 4}" '
                   f'stroke="#666"/>' + _text(axes.x(t), HEIGHT - 8, f"{t:g}s", "middle", 10) for t in ticks)


def _y_ticks(axes: Axes, unit: str) -> str:
    values = [axes.y_max * i / 4 for i in range(5)]
    return "".join(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{axes.y(v):.1f}" y2="{axes.y(v):.1f}" '
                   f'stroke="#e0e0e0"/>'
                   + _text(LEFT - 6, axes.y(v) + 4, f"{v:.3g}{unit}", "end", 10) for v in values)


def plot(title: str, unit: str, y_max: float, t_end: float, series: list[Series], windows: list[dict[str, Any]],
         marks: Sequence[tuple[float, str, str]] = (), bands: Sequence[tuple[float, float, str]] = (),
         empty: str = "nothing recorded") -> str:
    """One SVG plot over t in [0, t_end]: bands, fault windows (shaded, labelled), series, marks
    (vertical lines such as 'detected'), axes and a legend."""
    axes = Axes(max(t_end, 1.0), max(y_max, 1e-6))
    parts = [f'<svg class="plot" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img">',
             f"<title>{markup.escape(title)}</title>"]
    parts += [f'<rect x="{LEFT}" y="{axes.y(high):.1f}" width="{WIDTH - LEFT - RIGHT}" '
              f'height="{axes.y(low) - axes.y(high):.1f}" fill="{color}"/>' for low, high, color in bands]
    parts.append(_y_ticks(axes, unit))
    for row, window in enumerate(windows):  # labels staggered like the marks: faults often start together
        x0, x1 = axes.x(window["start"]), axes.x(window["end"] if window["end"] is not None else axes.t_end)
        parts.append(f'<rect class="fault" x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 1.5):.1f}" '
                     f'height="{HEIGHT - TOP - BOTTOM}" fill="#78909c" opacity="0.28"/>')
        parts.append(_text(x0 + 3, TOP + 22 + 12 * (row % MARK_ROWS), f"{window['fault']} @ {window['target']}",
                           size=10, color="#37474f"))
    parts += [DRAW[s.kind](axes, s) for s in series if s.points]
    for row, (t, label, color) in enumerate(sorted(marks)):  # labels staggered: close marks stay legible
        parts.append(f'<line x1="{axes.x(t):.1f}" x2="{axes.x(t):.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" '
                     f'stroke="{color}" stroke-dasharray="4 3" stroke-width="1.4"/>')
        parts.append(_text(axes.x(t) + 3, HEIGHT - BOTTOM - 5 - 12 * (row % MARK_ROWS), label, size=10, color=color))
    if not any(v is not None for s in series for _, v in s.points):
        parts.append(_text(WIDTH / 2, HEIGHT / 2, empty, "middle", 13, "#757575"))
    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{HEIGHT - TOP - BOTTOM}" '
                 f'fill="none" stroke="#9e9e9e"/>')
    parts.append(_x_ticks(axes))
    parts.append(_text(LEFT, 15, title, size=12, color="#111"))
    legend_x: float = WIDTH - RIGHT
    for s in reversed(series):
        parts.append(_text(legend_x, 15, s.label, "end", 11, s.color))
        legend_x -= 9 + 6.5 * len(s.label)
    parts.append("</svg>")
    return "".join(parts)


def nice(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above value: readable axis tops."""
    power: float = 10 ** math.floor(math.log10(max(value, 1e-3)))
    return next(step * power for step in NICE if step * power >= value)


def _relative(scenario: dict[str, Any]) -> tuple[float, float]:
    """(t0, t_end): the scenario's clock starts with its probe (or its first event)."""
    raw = scenario.get(RAW, {})
    times = [s["ts"] for s in raw.get("samples", [])] + [op["invoked"] for op in raw.get("ops", [])]
    times += [op["completed"] for op in raw.get("ops", []) if op["completed"]]
    window = scenario.get("window", {})
    t0 = window.get("started") or min(times, default=0.0)
    end = max([window.get("finished") or t0] + times)
    return t0, end - t0


def _shifted(windows: list[dict[str, Any]], t0: float) -> list[dict[str, Any]]:
    return [{**w, "start": w["start"] - t0, "end": None if w["end"] is None else w["end"] - t0} for w in windows]


def plots(scenario: dict[str, Any]) -> list[str]:
    """The scenario's SVG plots: health always, latency and error rate when it kept a history."""
    raw, (t0, t_end) = scenario.get(RAW, {}), _relative(scenario)
    windows = _shifted(scenario.get("faults", []), t0)
    samples, ops = raw.get("samples", []), raw.get("ops", [])
    marks = [(scenario[key] - t0, label, color) for key, label, color in
             (("detected_at", "detected", "#ad1457"), ("recovered_at", "recovered", "#2e7d32")) if scenario.get(key)]
    marks += [(a["ts"] - t0, f"alert {a['chaos'].get('status')}", "#6a1b9a") for a in scenario.get("alerts", [])]
    marks += exploration.marks(scenario.get("figures"), t0)
    edges = [e["ts"] for e in raw.get("journal", []) if e.get("action") in EDGE_ACTIONS]
    drawn = recovery.downsample(samples, edges)  # a day of samples, drawn as the eye sees it
    health = [Series("score", [(s["ts"] - t0, s["score"]) for s in drawn], "#1565c0"),
              Series("no answer", [(s["ts"] - t0, 0.0) for s in drawn if s["score"] is None], "#616161", "dots")]
    hz = scenario.get("probe", {}).get("hz", 0)
    thinned = f"; {len(drawn)} of {len(samples)} samples drawn" if len(drawn) < len(samples) else ""
    out = [plot(f"system health score (GET /health/system, {hz:g} Hz{thinned})", "", 100, t_end, health, windows, marks,
                LEVEL_BANDS, "no probe samples (the scenario did not reach its probe)")]
    if not ops:
        return out
    latency = [Series(outcome, [(op["invoked"] - t0, op["latency_s"]) for op in ops
                                if op["outcome"] == outcome and op["latency_s"] is not None], color, "dots")
               for outcome, color in OUTCOME_COLORS.items()]
    top = nice(max((op["latency_s"] or 0 for op in ops), default=1.0) * 1.05)
    errors: list[tuple[float, float | None]] = [
        (start - t0, 100 * share) for start, _, share in recovery.error_rate(ops, ERROR_BIN_S, t0)
    ]
    out.append(plot("order latency (s), by outcome", "s", top, t_end, latency, windows))
    out.append(plot(f"order error rate (failed or unanswered, per {ERROR_BIN_S:g} s)", "%", 100, t_end,
                    [Series("error rate", errors, "#c62828", "bars", ERROR_BIN_S)], windows))
    return out


def _verdict(outcome: str) -> str:
    return f'<span class="verdict" style="background:{VERDICT_COLORS.get(outcome, "#757575")}">{_e(outcome)}</span>'


def anchor(name: str) -> str:
    return "s-" + slug(name)


def _score(score: Any) -> str:
    return "no answer" if score is None else str(score)


def _key_figures(s: dict[str, Any]) -> list[tuple[str, str]]:
    probe, health = s.get("probe", {}), s.get("health", {})
    during = s.get("impact", {}).get("during_fault", {})
    worst = health.get("worst") or {}
    alerts = [a["chaos"].get("status") for a in s.get("alerts", [])]
    logs = s.get("logs", {})
    return [("time to detect (TTD)", seconds(s.get("ttd_s"))), ("time to recover (TTR)", seconds(s.get("ttr_s"))),
            ("duration", seconds(s.get("duration_s"))),
            ("worst health", f"{_score(worst.get('score', 'n/o'))} ({worst.get('level', 'n/o')})"),
            ("probe", f"{probe.get('samples', 0)} samples at {probe.get('hz', 0)} Hz, {probe.get('errors', 0)} "
                      f"unanswered, {probe.get('cpu_percent', 0)} % of one core"),
            ("orders during the fault", f"{during.get('orders', 0)}: {during.get('accepted', 0)} accepted, "
                                        f"{during.get('failed', 0)} failed, {during.get('unknown', 0)} unanswered"),
            ("alerts", f"{alerts.count('firing')} firing, {alerts.count('resolved')} resolved"),
            ("the manual's log line",
             f"{logs.get('manual_count', 0)} × {logs.get('manual_line') or '(none for this cause)'}"),
            ("guardrail", _guardrail(s.get("guardrail")))]


def _guardrail(trip: dict[str, Any] | None) -> str:
    if not trip:
        return "not tripped"
    return (f"TRIPPED at {stamp(trip['ts'])}: {trip['condition']} (observed {trip['observed']}); "
            f"healed {', '.join(trip.get('healed', [])) or 'nothing'}")


def _prescriptions(s: dict[str, Any]) -> str:
    """'fallback verified, retry_with_backoff violated': the marker's claims judged by the
    scenario's guards that ran (harness.report.incident.prescription_verdicts)."""
    verdicts = prescription_verdicts(list(s.get("runbook", [])), list(s.get("guards") or []))
    return ", ".join(f"{p} {verdict}" for p, verdict in verdicts) or "-"


def section(s: dict[str, Any]) -> str:
    """One scenario: verdict, reason, key figures, faults, alerts, plots, own figures, links."""
    t0, _ = _relative(s)
    cause = ROOT_CAUSES.get(s.get("root_cause") or "")
    parts = [f'<section id="{anchor(s["name"])}"><h2>{_e(s["name"])} {_verdict(s.get("outcome", "?"))}</h2>',
             f'<p class="cause">root cause: <b>{_e(cause.title if cause else s.get("root_cause"))}</b> '
             f'· prescriptions its guards prove, as they came out in this run: {_e(_prescriptions(s))}</p>']
    if s.get("reason"):
        parts.append(f'<pre class="reason">{_e(s["reason"], 2000)}</pre>')
    parts.append(_table(("figure", "value"), [(_e(k), _e(v)) for k, v in _key_figures(s)], "figures"))
    faults = [(_e(w["fault"]), _e(w["target"]), _e(w.get("params", {})),
               f"{stamp(w['start'], 'clock')} (+{w['start'] - t0:.2f}s)",
               stamp(w["end"], "clock") if w["end"] else "still active",
               seconds(None if w["end"] is None else w["end"] - w["start"])) for w in s.get("faults", [])]
    if faults:
        parts.append(_table(("fault", "target", "parameters", "injected (UTC)", "healed (UTC)", "length"), faults))
    alerts = [(f"{stamp(a['ts'], 'clock')} (+{a['ts'] - t0:.2f}s)", _e(a["chaos"].get("status")),
               _e(a["chaos"].get("who")), _e(a["chaos"].get("what"))) for a in s.get("alerts", [])]
    if alerts:
        parts.append(_table(("alert received (UTC)", "status", "who", "what"), alerts))
    parts += [f'<div class="plot">{svg}</div>' for svg in plots(s)]
    parts.append(exploration.section(s.get("figures")))
    load = load_section.section(s.get("figures"))
    parts.append(load)
    drawn = {"exploration", *(load_section.KEYS if load else ())}
    own = {k: v for k, v in (s.get("figures") or {}).items() if k not in drawn}  # drawn above, whole
    if own:
        parts.append("<details><summary>the scenario's own figures</summary>"
                     + _table(("name", "value"), [(_e(k), _e(v)) for k, v in own.items()]) + "</details>")
    links = " · ".join(f'<a href="{filename(s["name"], lang)}">incident record ({lang})</a>' for lang in LANGUAGES)
    parts.append(f'<p class="links">{links} · <a href="{markup.escape(s["name"])}.json">{_e(s["name"])}.json</a></p>')
    return "".join(parts) + "</section>"


STYLE = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#212121;max-width:1100px}
table{border-collapse:collapse;margin:8px 0 14px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f5f5f5}.verdict{color:#fff;border-radius:4px;padding:1px 8px;font-size:13px}
pre.reason{background:#fff3f3;border-left:4px solid #c62828;padding:8px;white-space:pre-wrap}
section{border-top:2px solid #eee;margin-top:24px}svg.plot{max-width:100%;height:auto;display:block;margin:6px 0}
.cause,.links{color:#555}
"""


def matrix_section(summary: dict[str, Any]) -> str:
    """The mutation matrix: rows protections, columns scenarios, each cell its verdict and the
    guard that failed; then what does not hold."""
    from harness import matrix

    columns, rows = matrix.table(summary)
    body = []
    for name, cells in rows:
        tds = []
        for scenario in columns:
            cell = cells.get(scenario)
            if cell is None:
                tds.append("<td></td>")
                continue
            tip = _e(cell.get("reason") or "", 300)
            label = cell["verdict"] + (f"<br><small>[{_e(cell['guard'])}]</small>" if cell.get("guard") else "")
            tds.append(f'<td style="background:{CELL_COLORS[cell["verdict"]]}" title="{tip}">{label}</td>')
        body.append(f"<tr><th>{_e(name)}</th>{''.join(tds)}</tr>")
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    counts = ", ".join(f"{n} {v}" for v, n in summary["counts"].items())
    notes = [f"not killed: {', '.join(summary['unkilled_protections'])}" if summary["unkilled_protections"] else "",
             f"guards no protection killed: {', '.join(summary['unproven_guards'])}"
             if summary["complete"] and summary["unproven_guards"] else ""]
    verdict = "the matrix holds" if summary["holds"] else "the matrix does NOT hold"
    return "".join(
        [
            "<h2>mutation matrix</h2>",
            f"<p>each protection turned off on its own, the scenarios whose guards name it run: {counts}. "
            "killed: failed on a guard of that protection; survived: passed without it; wrong: failed for another "
            f"reason. <b>{verdict}</b>.</p>",
            *[f"<p>{_e(n)}</p>" for n in notes if n],
            f'<table class="matrix"><thead><tr><th>protection</th>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>',
        ]
    )


def render(run: dict[str, Any], scenarios: list[dict[str, Any]]) -> str:
    """The whole page: run facts, a summary table linking to each scenario, then the scenarios."""
    rows = [(f'<a href="#{anchor(r["scenario"])}">{_e(r["scenario"])}</a>', _verdict(r["verdict"]), _e(r["ttd"]),
             _e(r["ttr"]), _e(r["reason"])) for r in summary_rows(scenarios)]
    facts = [("run", run.get("run_id")), ("SUT mode", run.get("sut_mode")),
             ("protections off", ", ".join(run.get("disabled") or []) or "none"),
             ("started", f"{stamp(run.get('started'))} / {stamp(run.get('started'), 'jst')}"),
             ("finished", stamp(run.get("finished"))), ("time under fault", under_fault_line(run, scenarios)),
             ("exit status", run.get("exit_status")),
             ("report schema", SCHEMA_VERSION)]
    return "\n".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>chaos run {_e(run.get('run_id'))}</title><style>{STYLE}</style></head><body>",
        f"<h1>chaos run {_e(run.get('run_id'))}</h1>",
        _table(("", ""), [(_e(k), _e(v)) for k, v in facts], "facts"),
        *([matrix_section(run["matrix"])] if run.get("matrix") else []),
        "<h2>summary</h2>", _table(("scenario", "verdict", "TTD", "TTR", "reason"), rows, "summary"),
        "<p>TTD: first injection to the first non-green probe sample or firing alert. TTR: last heal to the first "
        "sample back to green that stays green for 1 s. n/o: not observed.</p>",
        *[section(s) for s in scenarios], "</body></html>"])


def write(run_dir: Path, run: dict[str, Any], scenarios: list[dict[str, Any]]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "report.html"
    path.write_text(render(run, scenarios), encoding="utf-8")
    return path
