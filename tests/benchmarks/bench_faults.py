"""Benchmark: what proving a network fault costs, and the harness beside chaostoolkit-toxiproxy.

    python tests/benchmarks/bench_faults.py [--reps N] [--proof-reps M]

First, per network toxic and the disabled proxy, on the client edge and on internal edges
(postgres, rabbitmq): inject-to-proven (inject() returns once a wire check through the proxy shows
the effect) and heal-to-proven (heal() returns once a wire check answers as the baseline did), p50
and p99 over M repetitions, next to the raw Toxiproxy API call that adds (removes) the same
toxic in the same run, and their ratio: the price of the proof.

Then, when chaostoolkit-toxiproxy is installed:

For each Toxiproxy toxic and the disabled proxy, on the published edge proxy: inject-to-landed
and heal-to-gone seconds, p50 and p99 over N repetitions, once through our faults and once
through chaostoolkit-toxiproxy's actions against the same Toxiproxy, alternating. Both are
judged by the same observation (the toxic is listed and a wire check through the proxy shows its
effect; gone: not listed and a normal answer), so the figures compare the work around it:
validation, recording, and for ours the landing check built into inject(). Needs
chaostoolkit-toxiproxy (not a dependency of the harness); without it, says so and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable

from harness import state
from harness.faults import Chaos, check
from harness.faults.network import (
    TOXICS,
    check_through,
    down_gone,
    down_landed,
    proxy_at,
    remove_toxic,
    set_enabled,
    toxic_gone,
    toxic_landed,
)
from harness.stack import Stack

POLL_S = 0.05  # the same pause between observations as the faults' own landing loop
DEADLINE_S = 10.0


@dataclass(frozen=True)
class Case:
    fault: str
    params: dict[str, Any]
    ctk_inject: Callable[..., Any]  # (proxy, toxic name, params, configuration)
    ctk_heal: Callable[..., Any]


def _cases() -> dict[str, Case]:
    """chaostoolkit-toxiproxy's action for each of our faults (imported only when present)."""
    from chaostoxi.proxy import actions as proxies
    from chaostoxi.toxic import actions as toxics

    def remove(proxy: str, name: str, configuration: dict) -> Any:
        return toxics.delete_toxic(for_proxy=proxy, toxic_name=name, configuration=configuration)

    return {
        "latency": Case("network.latency", {"latency_ms": 100},
                        lambda x, n, p, c: toxics.create_latency_toxic(x, n, p["latency_ms"], configuration=c), remove),
        "bandwidth": Case("network.bandwidth", {"rate_kb": 5},
                          lambda x, n, p, c: toxics.create_bandwith_degradation_toxic(x, n, p["rate_kb"], c), remove),
        "slow_close": Case("network.slow_close", {"delay_ms": 100},
                           lambda x, n, p, c: toxics.create_slow_connection_close_toxic(x, n, p["delay_ms"], c),
                           remove),
        "timeout": Case("network.timeout", {"timeout_ms": 0},
                        lambda x, n, p, c: toxics.create_timeout_toxic(x, n, p["timeout_ms"], c), remove),
        "reset_peer": Case("network.reset_peer", {"timeout_ms": 0},
                           lambda x, n, p, c: toxics.create_toxic(x, n, "reset_peer", attributes={"timeout": 0},
                                                                  configuration=c), remove),
        "slicer": Case("network.slicer", {"average_size": 64, "size_variation": 16, "delay_us": 1000},
                       lambda x, n, p, c: toxics.create_slicer_toxic(x, n, 64, 16, 1000, c), remove),
        "limit_data": Case("network.limit_data", {"bytes": 64},
                           lambda x, n, p, c: toxics.create_limiter_toxic(x, n, p["bytes"], c), remove),
        "down": Case("network.down", {},
                     lambda x, n, p, c: proxies.disable_proxy(x, c),
                     lambda x, n, c: proxies.enable_proxy(x, c)),
    }


def until(observed: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not observed():
        if time.monotonic() > deadline:
            raise RuntimeError("observation did not come true within the deadline")
        time.sleep(POLL_S)


def percentile(samples: list[float], share: float) -> float:
    """Nearest rank: with 30 samples, p99 is the slowest one."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


# The fault and parameters measured for each toxic (the same as the comparison below).
PROOF_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "latency": ("network.latency", {"latency_ms": 100}),
    "bandwidth": ("network.bandwidth", {"rate_kb": 5}),
    "slow_close": ("network.slow_close", {"delay_ms": 100}),
    "timeout": ("network.timeout", {"timeout_ms": 0}),
    "reset_peer": ("network.reset_peer", {"timeout_ms": 0}),
    "slicer": ("network.slicer", {"average_size": 64, "size_variation": 16, "delay_us": 1000}),
    "limit_data": ("network.limit_data", {"bytes": 64}),
    "down": ("network.down", {}),
}
PROOF_PROXIES = ("edge_gateway", "postgres", "rabbitmq")


def _raw_apply(api: str, proxy: str, kind: str, fault: str, params: dict[str, Any]) -> None:
    """The bare Toxiproxy API call our inject makes, with nothing around it."""
    if kind == "down":
        set_enabled(api, proxy, False)
        return
    model = check(fault, proxy, **params).params
    proxy_at(api, proxy).add_toxic(name=f"raw_{kind}", type=TOXICS[kind].type, stream=model.stream,
                                   toxicity=model.toxicity, attributes=TOXICS[kind].attributes(model))


def _raw_undo(api: str, proxy: str, kind: str) -> None:
    if kind == "down":
        set_enabled(api, proxy, True)
    else:
        remove_toxic(api, proxy, f"raw_{kind}")


def proof_costs(stack: Stack, reps: int) -> dict[tuple[str, str, str, str], list[float]]:
    """(who, proxy, toxic, phase) -> seconds: ours proven, raw API alone; alternating."""
    endpoint = stack.endpoint("toxiproxy")
    api, chaos = f"{endpoint.host}:{endpoint.port}", Chaos(stack)
    samples: dict[tuple[str, str, str, str], list[float]] = {}

    def timed(key: tuple[str, str, str, str], action: Callable[[], Any]) -> Any:
        began = time.monotonic()
        result = action()
        samples.setdefault(key, []).append(time.monotonic() - began)
        return result

    for proxy in PROOF_PROXIES:
        for kind, (fault, params) in PROOF_CASES.items():
            for _ in range(reps):
                injected = timed(("ours", proxy, kind, "inject"), lambda: chaos.inject(fault, proxy, **params))
                timed(("ours", proxy, kind, "heal"), injected.heal)
                chaos.active.clear()
                timed(("raw", proxy, kind, "inject"), lambda: _raw_apply(api, proxy, kind, fault, params))
                timed(("raw", proxy, kind, "heal"), lambda: _raw_undo(api, proxy, kind))
            wire_check = check_through(stack, proxy)  # nothing of the raw calls may be left behind
            wire_check.measure_baseline()
            until(lambda: wire_check.normal(0.1))
    return samples


def proof_report(samples: dict[tuple[str, str, str, str], list[float]], reps: int) -> None:
    ms = lambda seconds: f"{seconds * 1000:8.1f}"  # noqa: E731
    print(
        f"\nproof cost, {reps} repetitions: inject/heal returning proven vs the raw Toxiproxy API call (milliseconds)"
    )
    print(f"{'proxy':<13} {'toxic':<11} {'phase':<7} {'proven p50':>10} {'p99':>8} {'raw p50':>8} {'p99':>7} "
          f"{'ratio p50':>10} {'p99':>7}")
    for proxy in PROOF_PROXIES:
        for kind in PROOF_CASES:
            for phase in ("inject", "heal"):
                ours, raw = samples[("ours", proxy, kind, phase)], samples[("raw", proxy, kind, phase)]
                o50, o99, r50, r99 = (percentile(ours, 0.5), percentile(ours, 0.99),
                                      percentile(raw, 0.5), percentile(raw, 0.99))
                print(f"{proxy:<13} {kind:<11} {phase:<7} {ms(o50):>10} {ms(o99):>8} {ms(r50):>8} {ms(r99):>7} "
                      f"{o50 / r50:>9.0f}x {o99 / r99:>6.0f}x")


class Bench:
    """One stack, both tools, the same observations."""

    def __init__(self, stack: Stack) -> None:
        api = stack.endpoint("toxiproxy")
        self.stack, self.wire_check, self.api = stack, check_through(stack, "edge_gateway"), f"{api.host}:{api.port}"
        self.wire_check.measure_baseline()
        self.configuration = {"toxiproxy_host": api.host, "toxiproxy_port": api.port}
        self.chaos = Chaos(stack)
        self.samples: dict[tuple[str, str, str], list[float]] = {}

    def landed(self, kind: str, name: str, params: Any) -> Callable[[], bool]:
        if kind == "down":
            return lambda: down_landed(self.api, "edge_gateway", self.wire_check)
        return lambda: toxic_landed(self.api, "edge_gateway", name, kind, params, self.wire_check)

    def gone(self, kind: str, name: str) -> Callable[[], bool]:
        if kind == "down":
            return lambda: down_gone(self.api, "edge_gateway", self.wire_check)
        return lambda: toxic_gone(self.api, "edge_gateway", name, self.wire_check)

    def note(self, tool: str, kind: str, phase: str, began: float) -> None:
        self.samples.setdefault((tool, kind, phase), []).append(time.monotonic() - began)

    def ours(self, kind: str, case: Case) -> None:
        began = time.monotonic()
        fault = self.chaos.inject(case.fault, "edge_gateway", **case.params)  # returns once landed
        self.note("ours", kind, "landed", began)
        name = getattr(fault, "toxic", "")
        began = time.monotonic()
        fault.heal()
        until(self.gone(kind, name))
        self.note("ours", kind, "gone", began)
        self.chaos.active.clear()

    def theirs(self, kind: str, case: Case) -> None:
        name, params = f"ctk_{kind}", check(case.fault, "edge_gateway", **case.params).params
        began = time.monotonic()
        case.ctk_inject("edge_gateway", name, case.params, self.configuration)
        until(self.landed(kind, name, params))
        self.note("chaostoolkit", kind, "landed", began)
        began = time.monotonic()
        case.ctk_heal("edge_gateway", name, self.configuration)
        until(self.gone(kind, name))
        self.note("chaostoolkit", kind, "gone", began)


def report(bench: Bench, kinds: list[str]) -> None:
    ms = lambda seconds: f"{seconds * 1000:7.1f}"  # noqa: E731
    print(f"\n{'toxic':<11} {'phase':<7} {'ours p50':>9} {'p99':>8} {'ctk p50':>9} {'p99':>8} "
          f"{'ours/ctk p50':>13} {'p99':>6}   (milliseconds)")
    for kind in kinds:
        for phase in ("landed", "gone"):
            ours, theirs = bench.samples[("ours", kind, phase)], bench.samples[("chaostoolkit", kind, phase)]
            o50, o99, t50, t99 = (percentile(ours, 0.5), percentile(ours, 0.99),
                                  percentile(theirs, 0.5), percentile(theirs, 0.99))
            print(f"{kind:<11} {phase:<7} {ms(o50):>9} {ms(o99):>8} {ms(t50):>9} {ms(t99):>8} "
                  f"{o50 / t50:>12.2f}x {o99 / t99:>5.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--proof-reps", type=int, default=10)
    args = parser.parse_args()
    os.environ[state.STATE_ENV] = tempfile.mkdtemp(prefix="chaos-bench-state-")
    with Stack() as stack:
        began = time.monotonic()
        costs = proof_costs(stack, args.proof_reps)
        print(f"proof cost measured in {time.monotonic() - began:.1f}s (run {stack.run_id})", file=sys.stderr)
        proof_report(costs, args.proof_reps)
        try:
            cases = _cases()
        except ImportError:
            print("\nchaostoolkit-toxiproxy is not installed: `.venv/bin/pip install chaostoolkit-toxiproxy==0.3.1` "
                  "to compare with it")
            return 0
        logging.getLogger("logzero_default").setLevel(logging.ERROR)  # its actions log every call
        bench = Bench(stack)
        for kind, case in cases.items():  # one untimed round each: connections, imports
            bench.ours(kind, case)
            bench.theirs(kind, case)
        bench.samples.clear()
        began = time.monotonic()
        for rep in range(args.reps):
            for kind, case in cases.items():
                first, second = (bench.ours, bench.theirs) if rep % 2 == 0 else (bench.theirs, bench.ours)
                first(kind, case)
                second(kind, case)
        print(f"{args.reps} repetitions x {len(cases)} faults x 2 tools in {time.monotonic() - began:.1f}s "
              f"(run {stack.run_id}, wire checks through the edge proxy)", file=sys.stderr)
        report(bench, list(cases))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
