"""The operations manual and the incidents (duplicate notifications, RabbitMQ configuration) as data.

Each root cause carries its log line (verbatim), where it shows, the first-response steps and
the permanent fixes, each with a stable id. Scenarios declare which root cause they exercise and
which prescription each of their guards proves (`@pytest.mark.chaos(root_cause=...,
guards={tag: step id or None})`). The coverage table (`chaos runbook`) takes the scenarios and
the claims from those markers, so a root cause without a scenario is visible at once; but a
claim is only a claim: a prescription counts as verified when a guard that proves it ran and
held in the run being judged (the `guards` records of its report.json), and never from a
marker alone.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.guards import table as guard_table


@dataclass(frozen=True)
class Step:
    id: str
    text: str
    text_ja: str  # the same step in the manual's own language (the Japanese incident record reads it)


@dataclass(frozen=True)
class RootCause:
    id: str
    title: str
    title_ja: str
    log_line: str | None
    services: tuple[str, ...]
    first_response: tuple[Step, ...]
    prescriptions: tuple[Step, ...]
    source: str = "operations manual"

    @property
    def steps(self) -> tuple[Step, ...]:
        """Every step a guard may prove: the permanent fixes, then the first responses."""
        return self.prescriptions + self.first_response


ROOT_CAUSES: dict[str, RootCause] = {
    rc.id: rc
    for rc in (
        RootCause(
            "payment_gateway_outage", "External payment gateway outage or slowdown",
            "外部依存サービス（決済ゲートウェイ）の障害またはパフォーマンス低下",
            "Payment gateway API returned 503 Service Unavailable.",
            ("api_gateway", "payment_gateway"),
            (Step("check_vendor_status", "Check the vendor's status page; wait or switch",
                  "ベンダーのステータスページを確認し、待つか切り替える"),
             Step("triage_alerts", "Triage alerts by severity; find affected services and users",
                  "アラートを重要度で仕分け、影響するサービスと利用者を特定する")),
            (Step("retry_with_backoff", "Retry external calls with exponential backoff",
                  "外部呼び出しを指数バックオフで再試行する"),
             Step("circuit_breaker", "Stop calling a failing vendor with a circuit breaker",
                  "障害中のベンダーへの呼び出しをサーキットブレーカーで止める"),
             Step("fallback", "Fall back: accept the order as PAYMENT_PENDING instead of failing",
                  "フォールバック: 注文を失敗させず PAYMENT_PENDING として受け付ける"),
             Step("exactly_once_settlement", "Settle pending orders exactly once after recovery",
                  "復旧後、保留中の注文をちょうど一度だけ決済する"),
             Step("honour_retry_after", "Keep within the vendor's rate limit: after a 429, no call before its "
                  "Retry-After, orders accepted meanwhile and settled once afterwards",
                  "決済代行のレートリミットに抵触しない: 429 を受けたら Retry-After までは呼び出さず、"
                  "その間の注文は受け付けて後で一度だけ決済する"),
             Step("give_up_after_refusals", "Back off per order and stop retrying one the vendor keeps refusing: "
                  "FAILED, stock released, an alert",
                  "決済代行に拒否され続ける注文は注文ごとに間隔を空けて再試行し、"
                  "上限で FAILED にして在庫を戻し通知する"),
             Step("alert_on_recovery", "Alert on failure and on recovery (the monitoring notes)",
                  "障害時だけでなく復旧時にもアラートを送る（監視の運用ノートより）"),
             Step("multi_vendor", "Multi-vendor: a second payment provider to switch to when one fails",
                  "複数の決済ゲートウェイプロバイダーを導入し、障害時に切り替えられるようにする"))),
        RootCause(
            "database_bottleneck", "Database bottleneck or connection problems",
            "データベースのボトルネックまたは接続問題",
            "Database connection timed out.",
            ("api_gateway", "auth_service", "inventory_service", "postgres"),
            (Step("check_db_metrics", "Check connections, slow queries, resource use",
                  "接続数、スロークエリ、リソース使用量を確認する"),
             Step("tune_pool", "Review connection pool limits and timeouts",
                  "コネクションプールの上限とタイムアウトを見直す")),
            (Step("pool_timeouts", "Bounded pool, connect and statement timeouts: 503 + Retry-After, no hung worker",
                  "プール・接続・ステートメントのタイムアウトを設け、503 + Retry-After を返しワーカーを固まらせない"),
             Step("recover_without_restart", "Recover by itself when the database is back",
                  "データベースが戻れば再起動なしで自動復旧する"),
             Step("no_partial_writes", "Write nothing half-way during an outage",
                  "障害中に中途半端な書き込みをしない"),
             Step("alert_on_recovery", "Alert when the database stops answering, and when it answers again "
                                       "(the monitoring notes)",
                  "障害時だけでなく復旧時にもアラートを送る（監視の運用ノートより）"))),
        RootCause(
            "inventory_null_pointer", "Application bug: null values in inventory data",
            "アプリケーションコードのバグまたは予期せぬ状態",
            "Unexpected null pointer exception in inventory service.",
            ("inventory_service", "api_gateway"),
            (Step("restart_service", "Restart the affected instance, with care",
                  "影響のあるインスタンスを慎重に再起動する"),),
            (Step("null_safe_handling", "Null checks: quarantine the bad record, serve the rest",
                  "null チェック: 不正なレコードを隔離し、残りは提供する"),
             Step("no_500_to_clients", "No internal error reaches the customer",
                  "内部エラーを利用者に返さない"))),
        RootCause(
            "malformed_messages", "Message queue: malformed JSON and schema mismatch",
            "メッセージキューおよびデータ処理の不整合",
            "Failed to process message from queue: malformed JSON.",
            ("inventory_service", "api_gateway"),
            (Step("inspect_dlq", "Check the dead-letter queue; re-drive after the fix",
                  "デッドレターキューを確認し、修正後に再投入する"),),
            (Step("schema_validation", "Validate every message against a JSON Schema",
                  "すべてのメッセージを JSON Schema で検証する"),
             Step("dead_letter_queue", "Isolate what can't be processed in a DLQ with the reason",
                  "処理できないメッセージを理由付きで DLQ に隔離する"),
             Step("idempotent_consumer", "Process each message once, even when delivered twice",
                  "二重配信されても各メッセージを一度だけ処理する"))),
        RootCause(
            "disk_full_node_a", "Infrastructure: disk space exhausted on node-A",
            "インフラストラクチャリソースの枯渇",
            "Disk space is critically low on server node-A.",
            ("api_gateway",),
            (Step("df_check", "Check node-A's disk (df -h)",
                  "node-A のディスクを確認する（df -h）"),
             Step("clean_disk", "Delete temporary files, old logs and caches",
                  "一時ファイル、古いログ、キャッシュを削除する")),
            (Step("disk_alert", "Alert at >= 90 % used, before writes fail",
                  "書き込みが失敗する前、使用率 90 % 以上でアラートを出す"),
             Step("shed_writes", "Shed writes cleanly while reads are served",
                  "読み取りを提供しつつ書き込みをきれいに制限する"),
             Step("alert_on_recovery", "Alert again when space is back",
                  "障害時だけでなく復旧時にもアラートを送る（監視の運用ノートより）"),
             Step("log_rotation", "Rotate and archive logs automatically, so they never exhaust the disk",
                  "ログファイルの適切なローテーションとアーカイブを自動化し、ディスク容量の枯渇を防ぐ"))),
        RootCause(
            "invalid_token", "Service-to-service authentication failures",
            "サービス間認証/認可の問題",
            "User authentication failed: invalid token.",
            ("inventory_service", "api_gateway", "auth_service"),
            (Step("check_auth_service", "Check auth_service health, latency and errors",
                  "auth_service のヘルス、レイテンシ、エラーを確認する"),),
            (Step("reject_invalid_tokens", "Reject invalid tokens with 401, no side effect",
                  "不正なトークンを 401 で拒否し、副作用を起こさない"),
             Step("fail_closed", "Fail closed when auth is unreachable",
                  "認証に到達できないときは拒否側に倒す（fail closed）"),
             Step("clock_skew_leeway", "Tolerate small clock skew; keep clocks in sync",
                  "小さな時刻ずれは許容し、時刻を同期しておく"))),
        RootCause(
            "timeout_mismatch", "Load balancer timeout shorter than the work: duplicate notifications",
            "LBタイムアウトが処理時間より短く、リトライで通知が重複",
            None, ("api_gateway", "payment_gateway", "inventory_service"),
            (Step("check_duplicates", "Count notifications per order",
                  "注文ごとの通知数を数える"),),
            (Step("timeouts_aligned", "Caller timeouts longer than the work they wait for",
                  "呼び出し側のタイムアウトを待つ処理より長くする"),
             Step("idempotency_keys", "Idempotency keys end to end: one charge, one mail per order",
                  "冪等キーを端から端まで通す: 注文ごとに課金一回、メール一通")),
            source="duplicate-notification incident"),
        RootCause(
            "rabbitmq_config_missing", "RabbitMQ settings missing: workers silently used defaults",
            "RabbitMQ設定の欠落によりワーカーが既定値で動作",
            None, ("api_gateway", "inventory_service", "rabbitmq"),
            (Step("check_env", "Check RABBITMQ_* in the deployment",
                  "デプロイの RABBITMQ_* 設定を確認する"),),
            (Step("config_validation", "Refuse to start without RABBITMQ_*, naming the variable",
                  "RABBITMQ_* がなければ変数名を示して起動を拒否する"),
             Step("broker_monitoring", "Health score shows the broker connection",
                  "ヘルススコアにブローカー接続を含める"),
             Step("worker_auto_recovery", "Consumers reconnect after a broker outage, and a dead or wedged "
                  "consumer is restarted by its supervisor, each recovery counted",
                  "ブローカー障害の後コンシューマが再接続し、停止・停滞したコンシューマは自動で再起動され、復旧が記録される"),
             Step("consumer_alert", "The broker monitor alerts when a queue has had no consumer for 5 s, "
                  "and again when one is back",
                  "ブローカー監視が 5 秒間コンシューマのいないキューをアラートし、戻れば復旧を通知する"),
             Step("outbox", "Events kept in an outbox while the broker is away",
                  "ブローカー不在の間、イベントをアウトボックスに保持する")),
            source="RabbitMQ-configuration incident"),
        RootCause(
            "database_crash", "The database crashes with orders just acknowledged",
            "受付直後の注文を抱えたデータベースのクラッシュ",
            None, ("postgres", "api_gateway", "inventory_service"),
            (),
            (Step("durable_commit", "Acknowledge an order only once its commit is in the write-ahead log, so a "
                  "crash loses none", "コミットが WAL に書かれてから注文を受け付け、クラッシュで一件も失わない"),),
            source="exploration"),
        RootCause(
            "storm", "Several faults at once under load", "負荷下での複合障害",
            None, ("api_gateway", "inventory_service", "payment_gateway", "rabbitmq"),
            (Step("shed_traffic", "Limit traffic or switch features off to cut load",
                  "トラフィックを制限するか機能を止めて負荷を下げる"),),
            (Step("zero_lost", "No accepted order is lost",
                  "受け付けた注文を一件も失わない"),
             Step("zero_duplicated", "No order is charged or notified twice",
                  "注文を二重に課金・通知しない"),
             Step("slo_under_faults", "Customers are still served within the SLO",
                  "障害中も SLO 内で利用者に応える")),
            source="design"),
    )
}



def log_line(root_cause: str) -> str:
    """The manual's log line of a root cause, verbatim: what a scenario looks for in the shop's
    logs (read from here, so no scenario keeps a copy that could drift from the manual)."""
    line = ROOT_CAUSES[root_cause].log_line
    if line is None:
        raise KeyError(f"root cause {root_cause} has no log line in the manual")
    return line


SCENARIOS_DIR = Path(__file__).resolve().parent.parent / "scenarios"


def declared(scenarios_dir: Path = SCENARIOS_DIR) -> dict[str, list[tuple[str, dict[str, str | None]]]]:
    """root cause -> [(scenario, {guard tag: prescription id or None})] read from the scenarios'
    chaos markers (`guards=`; the shared guards of harness.guards.COMMON are not repeated here).
    A scenario marked `root_cause=None` (exploration's) belongs to no root cause and is left out.

    Read from the source (not by importing), so the table is printed without a stack or pytest.
    """
    found: dict[str, list[tuple[str, dict[str, str | None]]]] = {}
    for path in sorted(scenarios_dir.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and ast.unparse(decorator.func).endswith("mark.chaos"):
                    kwargs = {k.arg: ast.literal_eval(k.value) for k in decorator.keywords}
                    if "root_cause" in kwargs and kwargs["root_cause"] is None:
                        continue  # of no root cause of the manual: an exploring or explored scenario
                    found.setdefault(kwargs.get("root_cause", "?"), []).append(
                        (node.name.removeprefix("test_"), dict(kwargs.get("guards") or {})))
    return found


def guard_results(report: Mapping[str, Any] | None) -> dict[str, dict[str, list[tuple[str, str, bool]]]]:
    """root cause -> prescription -> [(scenario, guard tag, held)] for every guard that ran in the
    run's report.json and proves a prescription. A report without guard records (no report, or
    one written before scenarios recorded their guards) gives nothing."""
    found: dict[str, dict[str, list[tuple[str, str, bool]]]] = {}
    for scenario in (report or {}).get("scenarios", []):
        for guard in scenario.get("guards") or []:
            if guard.get("prescription"):
                found.setdefault(scenario.get("root_cause") or "?", {}).setdefault(guard["prescription"], []).append(
                    (scenario.get("name", "?"), guard.get("tag", "?"), bool(guard.get("held"))))
    return found


def verdict(held: list[bool]) -> str:
    """A prescription's verdict from how its guards that ran came out: verified (at least one
    ran and every one held), violated (one failed) or unproven (none ran)."""
    if not held:
        return "unproven"
    return "verified" if all(held) else "violated"


def coverage(report: Mapping[str, Any] | None = None, scenarios_dir: Path = SCENARIOS_DIR) -> list[dict[str, Any]]:
    """One row per root cause: its scenarios and the prescriptions their guards claim (from the
    markers); of the manual's steps, those verified by guards that ran and held in `report` (a
    run's report.json; without one nothing is verified), those violated there (a guard of it
    failed; listed with the failing scenario and guard) and all the others, unverified; and
    claimed ids the root cause does not have (unknown)."""
    by_cause = declared(scenarios_dir)
    ran = guard_results(report)
    rows = []
    for rc in ROOT_CAUSES.values():
        scenarios = by_cause.get(rc.id, [])
        claimed = sorted({p for _, table in scenarios for p in guard_table(table).values() if p is not None})
        known = [s.id for s in rc.steps]
        results = ran.get(rc.id, {})
        verdicts = {p: verdict([held for _, _, held in results.get(p, [])]) for p in known}
        rows.append({"root_cause": rc.id, "source": rc.source, "log_line": rc.log_line,
                     "scenarios": [name for name, _ in scenarios], "declared": claimed,
                     "verified": [p for p in known if verdicts[p] == "verified"],
                     "violated": [{"prescription": p, "failed": [f"{name} [{tag}]" for name, tag, held in results[p]
                                                                 if not held]}
                                  for p in known if verdicts[p] == "violated"],
                     "unverified": [p for p in known if verdicts[p] != "verified"],
                     "unknown": [p for p in claimed if p not in known]})
    return rows
