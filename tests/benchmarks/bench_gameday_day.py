"""Benchmark: a 24-hour game day's record and report, without a stack.

    python tests/benchmarks/bench_gameday_day.py [--hours 24] [--fault-every 600]

Simulates the day in a temporary state directory: the recorder's samples at 2 Hz (written by
gameday.record itself, its probe and stack replaced by synthetic ones) and a fault journal with
an injection every --fault-every seconds (inject, landed, heal a minute later). Then the real
`chaos down` report writers (gameday.write_report: report.json, report.html, timeline.csv, the
incident records) over it. Prints, per step, wall time and peak memory (the process's maximum
RSS, each step in a fresh process so one's peak does not hide the next's; and tracemalloc's
peak of Python allocations for the report). `chaos status --watch` is measured as its snapshot
and render of that run, redrawn --redraws times.
Leaves nothing behind.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = "20270101T000000-be0c00"
HZ = 2.0


def synthetic_sample(ts: float, faulted: bool, n: int) -> dict:
    """A health sample as harness.probes makes it: green outside faults, dipping inside."""
    score = 40 + n % 30 if faulted else 95 + n % 5
    level = "red" if score < 50 else "orange" if score < 70 else "green"
    return {"ts": ts, "score": score, "level": level, "breaker": "open" if faulted else "closed",
            "disk_used_percent": 41.5, "ok": True, "error": None,
            "services": {"api_gateway": score, "auth_service": 100, "inventory_service": 100, "payment_gateway": 100}}


def day(t0: float, hours: float, fault_every_s: float) -> tuple[int, list[dict]]:
    """(sample count, journal entries) of the simulated day."""
    from harness import state as harness_state

    entries = []
    for k in range(int(hours * 3600 // fault_every_s)):
        start = t0 + (k + 0.5) * fault_every_s
        base = {"fault": "network.latency", "target": "edge_gateway", "params": {"latency_ms": 300},
                "record": f"network.latency-edge_gateway-{k:06x}"}
        for action, at in (("inject", start), ("landed", start + 0.2), ("heal", start + 60)):
            entries.append({"ts": at, "action": action, **base})
    for entry in entries:
        harness_state.append_journal(RUN_ID, entry)
    return int(hours * 3600 * HZ), entries


def record_step(t0: float, count: int, entries: list[dict]) -> None:
    """gameday.record writing the day's samples, its probe and stack synthetic."""
    from harness import gameday, probes
    from harness.faults import attach as attach_module
    from harness.topology import active

    windows = [(e["ts"], n["ts"]) for e, n in zip(entries[::3], entries[2::3])]

    def every(health, hz, max_s):
        w = 0
        for n in range(count):
            ts = t0 + n / HZ
            while w < len(windows) and windows[w][1] < ts:
                w += 1
            yield synthetic_sample(ts, w < len(windows) and windows[w][0] <= ts, n)

    class Kept:
        edge_url = "http://127.0.0.1:9"
        topology = active()

    attach_module.attach = lambda *a, **k: Kept()
    probes.every = every
    gameday.CHECK_RUN_EVERY_S = float("inf")
    gameday.record(RUN_ID)


def report_step(reports: Path, traced: bool) -> None:
    import tracemalloc

    from harness import gameday

    if traced:  # several times slower: the time printed is then not the report's
        tracemalloc.start()
    run_dir = gameday.write_report(RUN_ID, reports, None)
    if traced:
        print(f"  tracemalloc peak {tracemalloc.get_traced_memory()[1] / 2**20:.1f} MB;", end=" ")
    sizes = {p.name: p.stat().st_size for p in run_dir.iterdir()}
    print(f"files: {', '.join(f'{n} {s / 2**20:.1f} MB' for n, s in sorted(sizes.items()))}")


def status_step(redraws: int) -> None:
    """`chaos status`'s snapshot and render of the run, as --watch redraws it (the stack is a
    stand-in whose edge and sink do not answer: every read is bounded and fails fast)."""
    from harness import status
    from harness.stack import Endpoint
    from harness.topology import active

    class Standing:
        run_id, owner, sut_mode, containers = RUN_ID, "chaos-up", "resilient", {}
        edge_url = "http://127.0.0.1:9"
        topology = active()

        def endpoint(self, service, port=None):
            return Endpoint("127.0.0.1", 9)

    status.protections.off_anywhere = lambda stack: []
    for _ in range(redraws):
        status.render(status.snapshot(Standing()))


STEPS = ("record", "status", "report")


def child(step: str, state: str, reports: str, args: argparse.Namespace) -> None:
    """One step in this process (started fresh by main), then its wall time and peak RSS."""
    os.environ["CHAOS_STATE_DIR"] = state
    sys.path.insert(0, str(ROOT))
    t0 = 1798761600.0  # 2027-01-01 00:00 UTC
    if step == "report":  # what `chaos down` has imported by the time it writes: not the report's time
        import harness.faults.attach  # noqa: F401
        import harness.gameday  # noqa: F401
        import harness.report  # noqa: F401
    began = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime  # the imports are not the step's
    if step == "record":
        count, entries = day(t0, args.hours, args.fault_every)
        record_step(t0, count, entries)
        what = f"gameday.record of {count} samples"
    elif step == "report":
        what = "gameday.write_report (chaos down's report)"
        report_step(Path(reports), args.tracemalloc)
    else:
        what = f"chaos status snapshot+render x{args.redraws}"
        status_step(args.redraws)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"step": what, "wall_s": round(time.perf_counter() - began, 2),
                      "cpu_s": round(usage.ru_utime + usage.ru_stime - cpu_before, 2),
                      "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "load_1min": round(os.getloadavg()[0], 1)}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--fault-every", type=float, default=600.0)
    parser.add_argument("--redraws", type=int, default=60)
    parser.add_argument("--tracemalloc", action="store_true", help="also the report's peak of Python allocations")
    parser.add_argument("--child", choices=STEPS)
    parser.add_argument("--state")
    parser.add_argument("--reports")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.state, args.reports, args)
        return 0
    work = Path(tempfile.mkdtemp(prefix="chaos-bench-day-"))
    try:
        for step in STEPS:
            subprocess.run([sys.executable, __file__, "--child", step, "--state", str(work / "state"),
                            "--reports", str(work / "reports"), "--hours", str(args.hours),
                            "--fault-every", str(args.fault_every), "--redraws", str(args.redraws),
                            *(["--tracemalloc"] if args.tracemalloc else [])],
                           check=True, cwd=ROOT)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
