"""What a load's answers say about the service level, as a game day's report gives it: pure
functions over operation records (harness.history.op_record) and fault windows
(harness.recovery.fault_windows).

An order counts as served when its answer was ok; as slow when it was answered after more than
SLOW_S (the storm scenario's p99 budget), whatever the answer; an order without an answer
(client timeout, or still pending when the load ended) counts as unanswered, never as fast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SLOW_S = 3.0


def _quantile(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3) if ordered else None


def served(ops: Sequence[Mapping[str, Any]], slow_s: float = SLOW_S) -> dict[str, Any]:
    """Orders, how many were accepted, failed, unanswered and slow, the accepted share and the
    latency quantiles of the answered ones."""
    answered = [op["latency_s"] for op in ops if op["outcome"] in ("ok", "fail") and op["latency_s"] is not None]
    accepted = sum(op["outcome"] == "ok" for op in ops)
    return {"orders": len(ops), "accepted": accepted, "failed": sum(op["outcome"] == "fail" for op in ops),
            "unanswered": sum(op["outcome"] not in ("ok", "fail") for op in ops),
            "slow": sum(latency > slow_s for latency in answered),
            "accepted_share": round(accepted / len(ops), 4) if ops else None,
            "latency_p50_s": _quantile(answered, 0.5), "latency_p99_s": _quantile(answered, 0.99)}


def _inside(op: Mapping[str, Any], start: float, end: float | None) -> bool:
    return bool(start <= op["invoked"] <= (float("inf") if end is None else end))


def per_fault(ops: Sequence[Mapping[str, Any]], faults: Sequence[Mapping[str, Any]],
              slow_s: float = SLOW_S) -> list[dict[str, Any]]:
    """Per fault window (injected to healed; a window never healed runs to the end), the
    orders placed inside it and how they were served."""
    return [{"fault": window["fault"], "target": window["target"], "start": window["start"], "end": window["end"],
             **served([op for op in ops if _inside(op, window["start"], window["end"])], slow_s)}
            for window in faults]


def slo(ops: Sequence[Mapping[str, Any]], faults: Sequence[Mapping[str, Any]],
        slow_s: float = SLOW_S) -> dict[str, Any]:
    """The service level over the whole load, and over the orders placed while any fault was
    active (an order inside two overlapping windows counts once)."""
    during = [op for op in ops if any(_inside(op, w["start"], w["end"]) for w in faults)]
    return {"slow_s": slow_s, "whole_load": served(ops, slow_s), "during_faults": served(during, slow_s)}
