"""Detection and recovery judged from one scenario's or game day's timeline: health levels, fault
windows, time to detect and to recover (TTD/TTR), health and order impact during the fault, and
the series the reports draw (error rate, active faults, downsampled samples).

Pure functions over the recorded timeline: samples are harness.probes.Sample dicts, journal
entries FaultJournal.entries, alerts what the sink received, ops History operations as dicts
(see history.op_record). Times are epoch seconds.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from typing import Any, Callable, Mapping, Sequence

GREEN = "green"
GREEN_FLOOR = 90  # the RabbitMQ-configuration incident's bands: a score of 90 or more is green
LEVELS = ((GREEN_FLOOR, GREEN), (70, "yellow"), (50, "orange"), (0, "red"))  # the same incident's bands, as the shop's


def level_of(score: int) -> str:
    """The colour of a health score in the RabbitMQ-configuration incident's bands (the shop reports
    it too; this reads bare scores)."""
    return next(name for floor, name in LEVELS if score >= floor)
RECOVERY_STABLE_S = 1.0  # back to green only counts once it stayed green this long


def fault_windows(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each injection as {fault, target, params, start, end} (end None while still active), in order."""
    from harness.faults.base import FaultJournal

    injects = {(e["fault"], e["ts"]): e for e in entries if e["action"] == "inject"}
    return [{"fault": name, "target": injects.get((name, start), {}).get("target"),
             "params": injects.get((name, start), {}).get("params", {}), "start": start, "end": end}
            for name, start, end in FaultJournal(entries=list(entries)).windows()]


def active_faults(ts: float, windows: list[dict[str, Any]]) -> list[str]:
    """Names of the faults active at ts (an open window is active until the end of time)."""
    return [w["fault"] for w in windows if w["start"] <= ts and (w["end"] is None or ts < w["end"])]


def _when(entries: list[dict[str, Any]], action: str, pick: Callable[[list[float]], float]) -> float | None:
    times = [e["ts"] for e in entries if e["action"] == action]
    return pick(times) if times else None


def first_inject(entries: list[dict[str, Any]]) -> float | None:
    return _when(entries, "inject", min)


def last_heal(entries: list[dict[str, Any]]) -> float | None:
    return _when(entries, "heal", max)


def baseline_score(samples: Sequence[Mapping[str, Any]], start: float) -> int:
    """The best answered score before start (100 when none): how healthy the system was before
    the fault. The best, not the last: the journal records an injection once it is applied, and
    a slow one (stopping a container) already shows in the samples taken while it is applied."""
    return max((s["score"] for s in samples if s["ts"] < start and s["score"] is not None), default=100)


def detected_at(
    entries: list[dict[str, Any]], samples: Sequence[Mapping[str, Any]], alerts: Sequence[dict[str, Any]] = ()
) -> float | None:
    """The first sign after the first injection: a sample not green (an unanswered probe counts)
    or a firing alert. None when nothing showed. A system already below green when the fault
    came must get worse to count, or a degradation from before would pass for detection."""
    start = first_inject(entries)
    if start is None:
        return None
    floor = min(baseline_score(samples, start), GREEN_FLOOR)
    signs = [s["ts"] for s in samples
             if s["ts"] >= start and s["level"] != GREEN and (s["score"] is None or s["score"] < floor)]
    signs += [a["ts"] for a in alerts if a["ts"] >= start and a.get("chaos", {}).get("status") == "firing"]
    return min(signs, default=None)


def recovered_at(
    entries: list[dict[str, Any]], samples: Sequence[Mapping[str, Any]], stable_s: float = RECOVERY_STABLE_S
) -> float | None:
    """The first sample after the last heal that is green and stays green for stable_s (observed:
    a later sample must exist at least stable_s after it). None when not observed."""
    heal = last_heal(entries)
    if heal is None:
        return None
    since: float | None = None
    for sample in sorted((s for s in samples if s["ts"] >= heal), key=lambda s: s["ts"]):
        if sample["level"] != GREEN:
            since = None
            continue
        since = sample["ts"] if since is None else since
        if sample["ts"] - since >= stable_s:
            return since
    return None


def _elapsed(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round(end - start, 3)


def time_to_detect(
    entries: list[dict[str, Any]], samples: Sequence[Mapping[str, Any]], alerts: Sequence[dict[str, Any]] = ()
) -> float | None:
    """Seconds from the first injection to the first sign of it (None: not observed)."""
    return _elapsed(first_inject(entries), detected_at(entries, samples, alerts))


def time_to_recover(
    entries: list[dict[str, Any]], samples: Sequence[Mapping[str, Any]], stable_s: float = RECOVERY_STABLE_S
) -> float | None:
    """Seconds from the last heal to stable green (None: not observed)."""
    return _elapsed(last_heal(entries), recovered_at(entries, samples, stable_s))


def _moment(sample: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if sample is None else {"ts": sample["ts"], "score": sample["score"], "level": sample["level"]}


def health_summary(
    samples: Sequence[Mapping[str, Any]], start: float | None = None, end: float | None = None
) -> dict[str, Any]:
    """What the probe saw from start to end (the fault period; None: open-ended): the worst
    score and when, samples per level, breaker states, disk, the services that dropped below
    green; and the first sample of all, since a system may not be green when a scenario starts."""
    low, high = -math.inf if start is None else start, math.inf if end is None else end
    inside = [s for s in samples if low <= s["ts"] <= high]
    answered = [s for s in inside if s["score"] is not None]
    ranks = [-1 if s["score"] is None else s["score"] for s in inside]  # no answer is worst
    worst = inside[ranks.index(min(ranks))] if inside else None  # the first of the worst, as min() picks
    # Each service's lowest score from the distinct (service, score) pairs, a few dozen in a
    # day of samples, rather than a min() per service per sample.
    pairs = {pair for s in answered for pair in s["services"].items()}
    lowest: dict[str, int] = {}
    for name, score in pairs:
        lowest[name] = min(lowest.get(name, 100), score if score is not None else 0)
    disks = [s["disk_used_percent"] for s in inside if s["disk_used_percent"] is not None]
    return {"samples": len(inside), "errors": len(inside) - len(answered),
            "levels": dict(Counter(s["level"] for s in inside)), "worst": _moment(worst),
            "at_start": _moment(samples[0] if samples else None),
            "breaker_states": sorted({s["breaker"] for s in inside if s["breaker"]}),
            "disk_used_percent_max": max(disks, default=None),
            "services_below_green": {name: score for name, score in sorted(lowest.items()) if score < GREEN_FLOOR}}


def _share(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3) if ordered else None


def order_impact(ops: list[dict[str, Any]], start: float | None, end: float | None) -> dict[str, Any]:
    """Orders placed between start and end (the fault until recovery): counts per outcome and
    status, latency; and the same counts over the whole scenario."""
    def counts(selected: list[dict[str, Any]]) -> dict[str, Any]:
        latencies = [op["latency_s"] for op in selected if op["latency_s"] is not None]
        return {"orders": len(selected), "accepted": sum(op["outcome"] == "ok" for op in selected),
                "failed": sum(op["outcome"] == "fail" for op in selected),
                "unknown": sum(op["outcome"] == "unknown" for op in selected),
                "statuses": {str(k): v for k, v in sorted(Counter(op["status"] or 0 for op in selected).items())},
                "latency_p50_s": _share(latencies, 0.5), "latency_max_s": _share(latencies, 1.0)}

    window = [op for op in ops if start is not None and start <= op["invoked"] <= (end or float("inf"))]
    return {"during_fault": counts(window), "whole_scenario": counts(ops)}


def error_rate(ops: list[dict[str, Any]], bin_s: float = 1.0, origin: float = 0.0) -> list[tuple[float, int, float]]:
    """(bin start, orders, share failed or unknown) per bin_s of invocation time, bins counted
    from origin (a plot's t0, so its bars line up with its axis)."""
    bins: dict[float, list[bool]] = defaultdict(list)
    for op in ops:
        bins[origin + (op["invoked"] - origin) // bin_s * bin_s].append(op["outcome"] in ("fail", "unknown"))
    return [(start, len(flags), sum(flags) / len(flags)) for start, flags in sorted(bins.items())]


def log_summary(events: list[dict[str, Any]], manual_line: str | None, top: int = 8) -> dict[str, Any]:
    """The manual's line (how often, first seen) and the commonest warning/error events."""
    manual = [e["ts"] for e in events if manual_line and e.get("event") == manual_line]
    loud = Counter((e.get("service", "?"), e.get("event", "?")) for e in events
                   if e.get("level") in ("warning", "error", "critical"))
    return {"manual_line": manual_line, "manual_count": len(manual), "manual_first": min(manual, default=None),
            "loudest": [{"service": s, "event": ev, "count": n} for (s, ev), n in loud.most_common(top)]}


def findings(entries: list[dict[str, Any]], samples: Sequence[Mapping[str, Any]], alerts: list[dict[str, Any]],
             ops: list[dict[str, Any]], stable_s: float = RECOVERY_STABLE_S) -> dict[str, Any]:
    """Everything the reports derive from one scenario's raw timeline, in one JSON-ready dict."""
    detected, recovered = detected_at(entries, samples, alerts), recovered_at(entries, samples, stable_s)
    start, heal = first_inject(entries), last_heal(entries)
    return {"faults": fault_windows(entries), "detected_at": detected, "recovered_at": recovered,
            "ttd_s": _elapsed(start, detected), "ttr_s": _elapsed(heal, recovered),
            "health": health_summary(samples, start, recovered or heal),
            "impact": order_impact(ops, start, recovered or heal)}


def active_faults_each(times: Sequence[float], windows: list[dict[str, Any]]) -> list[list[str]]:
    """active_faults(ts, windows) for every ts, in one sweep: a day of samples against a day of
    faults is a quarter of a million times a hundred comparisons the direct way. Consecutive
    times with the same faults share one list (read them, don't change them)."""
    order = sorted(range(len(times)), key=times.__getitem__)
    starts = sorted(range(len(windows)), key=lambda i: windows[i]["start"])
    out: list[list[str]] = [[]] * len(times)  # every slot is set below: one list, not one per time
    open_: list[int] = []
    current: list[str] = []
    k, next_end = 0, math.inf
    for index in order:
        ts, opened = times[index], k
        while k < len(starts) and windows[starts[k]]["start"] <= ts:
            open_.append(starts[k])
            k += 1
        if k != opened or ts >= next_end:
            open_ = [i for i in open_ if windows[i]["end"] is None or ts < windows[i]["end"]]
            current = [windows[i]["fault"] for i in sorted(open_)]
            next_end = min((windows[i]["end"] for i in open_ if windows[i]["end"] is not None), default=math.inf)
        out[index] = current
    return out


PLOT_BUCKETS = 1000  # about one per pixel of report.html's plots


def downsample(
    samples: list[dict[str, Any]], edges: Sequence[float] = (), buckets: int = PLOT_BUCKETS
) -> list[dict[str, Any]]:
    """The samples a plot needs to look the same as all of them, in time order: per bucket of
    equal time, its first and last sample, its lowest and highest score and its first unanswered
    one; and around every edge (a fault injected, landed, healed) the last sample before and the
    first at or after it, so no fault's effect moves or vanishes. Fewer samples than 4 per
    bucket are returned as they are. timeline.csv and the JSON keep every sample: this is for
    drawing only."""
    if len(samples) <= 4 * buckets:
        return list(samples)
    ordered = sorted(samples, key=lambda s: s["ts"])
    t0, span = ordered[0]["ts"], max(ordered[-1]["ts"] - ordered[0]["ts"], 1e-9)
    keep: set[int] = set()
    chosen: dict[int, dict[str, int]] = {}
    for i, sample in enumerate(ordered):
        b = min(int((sample["ts"] - t0) / span * buckets), buckets - 1)
        picks = chosen.setdefault(b, {"first": i})
        picks["last"] = i
        score = sample["score"]
        if score is None:
            picks.setdefault("unanswered", i)
            continue
        if "low" not in picks or score < ordered[picks["low"]]["score"]:
            picks["low"] = i
        if "high" not in picks or score > ordered[picks["high"]]["score"]:
            picks["high"] = i
    for picks in chosen.values():
        keep.update(picks.values())
    times = [s["ts"] for s in ordered]
    for edge in edges:
        after = bisect.bisect_left(times, edge)
        keep.update(i for i in (after - 1, after) if 0 <= i < len(ordered))
    return [ordered[i] for i in sorted(keep)]
