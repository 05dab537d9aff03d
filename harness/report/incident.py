"""incident-<scenario>.ja.md / .en.md: the incident record in the incident-record format, filled from the run.

The incident-record format records every incident under six headings (現象, 復旧対応, 障害時間, 原因, 影響範囲,
再発防止策). A game day should leave the same record a real outage would, so the people who
read real ones can read these, written from what the run itself saw: probe samples, answers,
alerts and log lines, the fault journal, the order history, the manual (harness.runbook), the
scenario's guards as they ran (a prescription is verified only by its guards that held) and
the scenario's verdict. Both languages come from one set of builders over phrase tables.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

from harness.escape import markdown as md
from harness.recovery import RECOVERY_STABLE_S
from harness.report.json_report import RAW, seconds, stamp
from harness.runbook import ROOT_CAUSES, RootCause, Step, verdict

LANGUAGES = ("ja", "en")
FIELDS = ("symptoms", "recovery", "duration", "cause", "impact", "prevention")
HEADINGS = {
    "ja": {"title": "障害報告", "symptoms": "現象", "recovery": "復旧対応", "duration": "障害時間", "cause": "原因",
           "impact": "影響範囲", "prevention": "再発防止策"},
    "en": {"title": "Incident report", "symptoms": "Symptoms", "recovery": "Recovery actions", "duration": "Duration",
           "cause": "Cause", "impact": "Impact", "prevention": "Prevention"},
}
PHRASES = {
    "en": {
        "meta": "Run `{run}`, scenario `{name}` ({mode} shop), verdict: **{verdict}**. "
        "Written from the run's own data.",
        "probe": "Health probe (GET /health/system, {hz} Hz): {samples} samples, {errors} unanswered; worst score "
        "during the fault {score} ({level}) at {at}.",
        "probe_none": "No health probe samples were recorded.",
        "at_start": "Health when the scenario started: {score} ({level}) at {at}.",
        "levels": "Share of the fault period's samples per level: {levels}.",
        "breaker": "Payment circuit breaker states seen: {states}.",
        "disk": "Highest disk use on node-A: {disk} %.",
        "answers": "Answers to orders during the fault: {statuses}; latency median {p50}, max {max}.",
        "answers_none": "No order was placed during the fault.",
        "alert": "{at}: alert **{status}** from {who}: {what}",
        "alerts_none": "No alert was received.",
        "log_line": 'The manual\'s log line "{line}" was logged {count} time(s), first at {at}.',
        "log_line_absent": 'The manual\'s log line "{line}" was not logged.',
        "loud": "Loudest warnings and errors: {events}.",
        "failed": "The scenario failed: {reason}",
        "passed": "Every assertion of the scenario held.",
        "heal": "{at}: healed `{fault}` on {target}.",
        "no_heal": "No fault was healed.",
        "action": "{at}: recovery action `{what}` on {target}: {outcome}.",
        "restored": "service restored (it answers again)",
        "green": "Health back to green and stable at {at}, {ttr} after the last heal.",
        "not_green": "Health was not seen back to green (stable for {stable} s) after the last heal.",
        "recovery_alert": "{at}: recovery alert: {what}",
        "first_response": "First response the manual prescribes ({source}):",
        "step": "`{id}`: {text}",
        "performed": " (performed: {did}; seen: {saw})",
        "window": "`{fault}` on {target}: {start} → {end} ({length}).",
        "open": "still active at the end",
        "ttd": "Time to detect (first injection → first non-green sample or firing alert): {ttd}.",
        "ttr": "Time to recover (last heal → green for {stable} s): {ttr}.",
        "no_fault": "No fault was injected.",
        "injected": "Injected fault `{fault}` on {target}, parameters {params}.",
        "root_cause": "Root cause in the manual ({source}): {title}.",
        "manual_line": 'Its log line in the manual: "{line}"',
        "unknown_cause": "Root cause `{cause}` is not in the manual.",
        "no_cause": "No root cause of the manual was named: the faults were injected by hand (a game day).",
        "during": "During the fault (first injection until recovery): {orders} orders: {accepted} accepted, "
        "{failed} failed, {unknown} without an answer.",
        "whole": "Whole scenario: {orders} orders: {accepted} accepted, {failed} failed, {unknown} without an answer.",
        "no_history": "The scenario kept no order history.",
        "degraded": "Services whose health dropped below green (lowest score): {services}.",
        "not_degraded": "No service's health dropped below green in the answers the probe got.",
        "unanswered": "The health endpoint did not answer {errors} of {samples} probes during the fault: the whole "
        "system was unobservable then.",
        "named": "Services the manual names for this cause: {services}.",
        "verified": "Verified by this run: ",
        "violated": "Violated (failed at {guard}): ",
        "unproven": "Not proven by this run (it failed at {guard}): ",
        "not_run": "Not proven by this run (no guard of it ran): ",
        "uncovered": "Not covered by this scenario: ",
        "none": "none",
        "when": "{utc} / {jst}",
        "no_answer": "no answer",
    },
    "ja": {
        "meta": "実行 `{run}`、シナリオ `{name}`（{mode} 版のショップ）、判定: **{verdict}**。"
                "本記録は実行時のデータから作成。",
        "probe": "ヘルスプローブ（GET /health/system、{hz} Hz）: サンプル {samples} 件、無応答 {errors} 件。"
        "障害中の最低スコア {score}（{level}）、時刻 {at}。",
        "probe_none": "ヘルスプローブのサンプルは記録されていない。",
        "at_start": "シナリオ開始時のヘルス: {score}（{level}）、時刻 {at}。",
        "levels": "障害期間中のレベル別サンプル割合: {levels}。",
        "breaker": "決済サーキットブレーカーの状態: {states}。",
        "disk": "node-A のディスク使用率の最大値: {disk} %。",
        "answers": "障害中の注文への応答: {statuses}。レイテンシ中央値 {p50}、最大 {max}。",
        "answers_none": "障害中に注文はなかった。",
        "alert": "{at}: アラート **{status}**（{who}）: {what}",
        "alerts_none": "アラートは受信されなかった。",
        "log_line": "マニュアルのログ行「{line}」が {count} 回出力された（初回 {at}）。",
        "log_line_absent": "マニュアルのログ行「{line}」は出力されなかった。",
        "loud": "多かった警告・エラー: {events}。",
        "failed": "シナリオは失敗した: {reason}",
        "passed": "シナリオのすべての検証が成立した。",
        "heal": "{at}: `{fault}`（{target}）を復旧（heal）。",
        "no_heal": "復旧（heal）した障害はない。",
        "action": "{at}: 復旧操作 `{what}`（{target}）: {outcome}。",
        "restored": "サービス復旧（再び応答）",
        "green": "{at} にヘルスが green に戻り安定した（最後の heal から {ttr}）。",
        "not_green": "最後の heal の後、ヘルスが green（{stable} 秒継続）に戻ったことは確認できなかった。",
        "recovery_alert": "{at}: 復旧アラート: {what}",
        "first_response": "マニュアルの初動対応（{source}）:",
        "step": "`{id}`: {text}",
        "performed": "（実施: {did}。結果: {saw}）",
        "window": "`{fault}`（{target}）: {start} → {end}（{length}）。",
        "open": "終了時点でも継続中",
        "ttd": "検知までの時間 TTD（最初の注入 → 最初の非 green サンプルまたは firing アラート）: {ttd}。",
        "ttr": "復旧までの時間 TTR（最後の heal → {stable} 秒継続する green）: {ttr}。",
        "no_fault": "障害は注入されなかった。",
        "injected": "注入した障害: `{fault}`（対象 {target}、パラメータ {params}）。",
        "root_cause": "マニュアル上の根本原因（{source}）: {title}。",
        "manual_line": "マニュアルのログ行: 「{line}」。",
        "unknown_cause": "根本原因 `{cause}` はマニュアルにない。",
        "no_cause": "マニュアルの根本原因は指定されていない。障害は手動で注入された（ゲームデイ）。",
        "during": "障害中（最初の注入から復旧まで）: 注文 {orders} 件、受付 {accepted} 件、失敗 {failed} 件、"
        "応答なし {unknown} 件。",
        "whole": "シナリオ全体: 注文 {orders} 件、受付 {accepted} 件、失敗 {failed} 件、応答なし {unknown} 件。",
        "no_history": "このシナリオは注文履歴を記録していない。",
        "degraded": "ヘルスが green を下回ったサービス（最低スコア）: {services}。",
        "not_degraded": "プローブが得た応答では、ヘルスが green を下回ったサービスはない。",
        "unanswered": "障害中、ヘルスエンドポイントは {samples} 回中 {errors} 回応答しなかった"
                      "（その間システム全体が観測不能）。",
        "named": "マニュアルがこの原因で挙げるサービス: {services}。",
        "verified": "この実行で検証済み: ",
        "violated": "違反（{guard} で失敗）: ",
        "unproven": "この実行では未証明（{guard} で失敗）: ",
        "not_run": "この実行では未証明（検証が実行されなかった）: ",
        "uncovered": "このシナリオの対象外: ",
        "none": "なし",
        "when": "{jst} / {utc}",
        "no_answer": "応答なし",
    },
}
GUARD = re.compile(r"\[([a-z0-9_]+)\]")


def slug(name: str) -> str:
    """A file-name-safe form of a scenario name (parametrised ids carry brackets)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "scenario"


def filename(name: str, lang: str) -> str:
    return f"incident-{slug(name)}.{lang}.md"


def _when(ts: float | None, p: dict[str, str]) -> str:
    """A moment in both zones (the monitoring guide's alerts say UTC and JST), the reader's own zone first."""
    return "n/o" if ts is None else p["when"].format(utc=stamp(ts), jst=stamp(ts, "jst"))


def _step_text(step: Step, lang: str) -> str:
    return step.text_ja if lang == "ja" else step.text


def _score(score: int | None, p: dict[str, str]) -> str:
    return p["no_answer"] if score is None else str(score)


def _statuses(mapping: dict[str, int], p: dict[str, str]) -> str:
    """'202 ×12, 503 ×2, no answer ×1' from {status: count} (status 0: no answer)."""
    return ", ".join(f"{p['no_answer'] if key == '0' else md(key)} ×{count}" for key, count in mapping.items())


def prescription_verdicts(prescriptions: list[str], guards: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(prescription, verified | violated | unproven) for what the scenario's guards declare,
    judged only from its guards that ran (the `guards` records: tag, prescription, held):
    verified when a guard of it ran and every one that ran held, violated when one failed,
    unproven when none ran (the scenario stopped before it). The marker alone proves nothing."""
    return [(p, verdict([bool(g.get("held")) for g in guards if g.get("prescription") == p])) for p in prescriptions]


Doc = dict[str, Any]  # a scenario or run entry of the report (schema 2)
Phrases = dict[str, str]  # one language's PHRASES
Builder = Callable[[Doc, Doc, RootCause | None, Phrases, str], list[str]]


def symptoms(s: Doc, run: Doc, cause: RootCause | None, p: Phrases, lang: str) -> list[str]:
    probe, health = s.get("probe", {}), s.get("health", {})
    worst = health.get("worst")
    lines = [p["probe"].format(hz=probe.get("hz", 0), samples=probe.get("samples", 0), errors=probe.get("errors", 0),
                               score=_score(worst["score"], p), level=md(worst["level"]), at=_when(worst["ts"], p))
             if worst else p["probe_none"]]
    at_start = health.get("at_start")
    if at_start:
        lines.append(p["at_start"].format(score=_score(at_start["score"], p), level=md(at_start["level"]),
                                          at=_when(at_start["ts"], p)))
    total = sum(health.get("levels", {}).values())
    if total:
        lines.append(p["levels"].format(levels=", ".join(
            f"{md(level)} {100 * n / total:.0f} %" for level, n in health["levels"].items())))
    if health.get("breaker_states"):
        lines.append(p["breaker"].format(states=md(", ".join(health["breaker_states"]))))
    if health.get("disk_used_percent_max") is not None:
        lines.append(p["disk"].format(disk=health["disk_used_percent_max"]))
    during = s.get("impact", {}).get("during_fault", {})
    lines.append(p["answers"].format(statuses=_statuses(during["statuses"], p), p50=seconds(during["latency_p50_s"]),
                                     max=seconds(during["latency_max_s"]))
                 if during.get("orders") else p["answers_none"])
    alerts = s.get("alerts", [])
    lines += [p["alert"].format(at=_when(a["ts"], p), **{k: md(a["chaos"].get(k)) for k in ("status", "who", "what")})
              for a in alerts] or [p["alerts_none"]]
    logs = s.get("logs", {})
    if logs.get("manual_line"):
        key = "log_line" if logs.get("manual_count") else "log_line_absent"
        lines.append(p[key].format(line=md(logs["manual_line"]), count=logs.get("manual_count"),
                                   at=_when(logs.get("manual_first"), p)))
    if logs.get("loudest"):
        lines.append(p["loud"].format(events="; ".join(f"{md(e['service'])} \"{md(e['event'])}\" ×{e['count']}"
                                                         for e in logs["loudest"])))
    reason = ((s.get("reason") or "").strip() or str(s.get("outcome"))).splitlines()[0][:500]
    return lines + [p["passed"] if s.get("outcome") == "passed" else p["failed"].format(reason=md(reason))]


def _action(action: Doc, p: Phrases) -> str:
    """A recovery action (a restart) as the record tells it, in time order with the heals."""
    outcome = p["restored"] if action["outcome"] == "restored" else md(action["outcome"])
    return p["action"].format(at=_when(action["when"], p), what=md(action["what"]), target=md(action["target"]),
                              outcome=outcome)


def recovery(s: Doc, run: Doc, cause: RootCause | None, p: Phrases, lang: str) -> list[str]:
    """The heals and the recovery actions (restarts) in the order they happened, whether and when
    health was back, the recovery alerts, and the manual's first response."""
    heals = [e for e in s.get(RAW, {}).get("journal", []) if e["action"] == "heal"]
    taken = sorted([(e["ts"], p["heal"].format(at=_when(e["ts"], p), fault=md(e["fault"]), target=md(e["target"])))
                    for e in heals] + [(a["when"], _action(a, p)) for a in s.get("recovery_actions", [])],
                   key=lambda pair: pair[0])
    lines = [line for _, line in taken] + ([] if heals else [p["no_heal"]])
    if heals:
        lines.append(p["green"].format(at=_when(s["recovered_at"], p), ttr=seconds(s.get("ttr_s")))
                     if s.get("recovered_at") else p["not_green"].format(stable=f"{RECOVERY_STABLE_S:g}"))
    lines += [p["recovery_alert"].format(at=_when(a["ts"], p), what=md(a["chaos"].get("what")))
              for a in s.get("alerts", []) if a["chaos"].get("status") == "resolved"]
    if cause and cause.first_response:
        # The steps the scenario performed say what was done and seen (scenario_record's
        # "first_responses"); the others are listed as the manual prescribes them.
        done = {r["step"]: r for r in (s.get("figures") or {}).get("first_responses", [])}
        lines.append(p["first_response"].format(source=cause.source))
        lines += ["  - " + p["step"].format(id=step.id, text=_step_text(step, lang))
                  + (p["performed"].format(did=md(done[step.id]["did"]), saw=md(done[step.id]["saw"]))
                     if step.id in done else "") for step in cause.first_response]
    return lines


def duration(s: Doc, run: Doc, cause: RootCause | None, p: Phrases, lang: str) -> list[str]:
    lines = [p["window"].format(fault=md(w["fault"]), target=md(w["target"]), start=_when(w["start"], p),
                                end=_when(w["end"], p) if w["end"] else p["open"],
                                length=seconds(None if w["end"] is None else w["end"] - w["start"]))
             for w in s.get("faults", [])] or [p["no_fault"]]
    return lines + [p["ttd"].format(ttd=seconds(s.get("ttd_s"))),
                    p["ttr"].format(ttr=seconds(s.get("ttr_s")), stable=f"{RECOVERY_STABLE_S:g}")]


def cause_of(s: Doc, run: Doc, cause: RootCause | None, p: Phrases, lang: str) -> list[str]:
    lines = [p["injected"].format(fault=md(w["fault"]), target=md(w["target"]),
                                  params=md(json.dumps(w.get("params", {}), ensure_ascii=False)))
             for w in s.get("faults", [])] or [p["no_fault"]]
    if cause is None:
        return lines + [
            p["unknown_cause"].format(cause=md(s.get("root_cause"))) if s.get("root_cause") else p["no_cause"]
        ]
    lines.append(p["root_cause"].format(source=cause.source, title=cause.title_ja if lang == "ja" else cause.title))
    return lines + ([p["manual_line"].format(line=cause.log_line)] if cause.log_line else [])


def impact(s: Doc, run: Doc, cause: RootCause | None, p: Phrases, lang: str) -> list[str]:
    figures = s.get("impact", {})
    whole = figures.get("whole_scenario", {})
    lines = ([p["during"].format(**figures["during_fault"]), p["whole"].format(**whole)]
             if whole.get("orders") else [p["no_history"]])
    health = s.get("health", {})
    below = health.get("services_below_green", {})
    lines.append(p["degraded"].format(services=", ".join(f"{md(name)} ({score})" for name, score in below.items()))
                 if below else p["not_degraded"])
    if health.get("errors"):
        lines.append(p["unanswered"].format(errors=health["errors"], samples=health.get("samples")))
    return lines + ([p["named"].format(services=", ".join(cause.services))] if cause else [])


def prevention(s: Doc, run: Doc, cause: RootCause | None, p: Phrases, lang: str) -> list[str]:
    steps = {step.id: step for step in cause.steps} if cause else {}
    declared = list(s.get("runbook", []))
    ran = list(s.get("guards") or [])
    failed = [g["tag"] for g in ran if not g.get("held")]  # a failing guard ends the scenario: one at most
    match = GUARD.search(s.get("reason") or "")
    guard = f"[{md(failed[0])}]" if failed else match.group(0) if match else str(s.get("outcome"))

    def line(key: str, pid: str) -> str:
        text = _step_text(steps[pid], lang) if pid in steps else md(pid)
        return p[key].format(guard=guard) + p["step"].format(id=md(pid), text=text)

    def key(verdict_of: str) -> str:  # unproven: the scenario failed before the guard, or the guard never ran
        return "not_run" if verdict_of == "unproven" and s.get("outcome") == "passed" else verdict_of

    lines = [line(key(verdict_of), pid) for pid, verdict_of in prescription_verdicts(declared, ran)]
    lines += [line("uncovered", step.id) for step in (cause.prescriptions if cause else ()) if step.id not in declared]
    return lines or [p["none"]]


BUILDERS: dict[str, Builder] = {"symptoms": symptoms, "recovery": recovery, "duration": duration, "cause": cause_of,
                                "impact": impact, "prevention": prevention}


def fields(scenario: dict[str, Any], run: dict[str, Any], lang: str) -> dict[str, list[str]]:
    """The six fields of the incident-record format for one scenario, in one language, as lines of text."""
    cause = ROOT_CAUSES.get(scenario.get("root_cause") or "")
    return {name: BUILDERS[name](scenario, run, cause, PHRASES[lang], lang) for name in FIELDS}


def render(scenario: dict[str, Any], run: dict[str, Any], lang: str) -> str:
    headings, p = HEADINGS[lang], PHRASES[lang]
    out = [f"# {headings['title']}: {md(scenario['name'])}", "",
           p["meta"].format(run=md(run.get("run_id")), name=md(scenario["name"]), mode=md(run.get("sut_mode", "?")),
                            verdict=md(scenario.get("outcome", "?"))), ""]
    for name, lines in fields(scenario, run, lang).items():
        out += [f"## {headings[name]}", "", *(line if line.startswith("  - ") else f"- {line}" for line in lines), ""]
    return "\n".join(out)


def write(run_dir: Path, run: dict[str, Any], scenarios: list[dict[str, Any]]) -> Path:
    """Both languages for every scenario; returns the run directory."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for scenario in scenarios:
        for lang in LANGUAGES:
            (run_dir / filename(scenario["name"], lang)).write_text(render(scenario, run, lang), encoding="utf-8")
    return run_dir
