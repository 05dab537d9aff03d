"""Benchmark: the admitted orders' p99 under the same overload with traffic shaping on and off.

    python tests/benchmarks/bench_shaping.py [--rounds N] [--users U] [--rate PER_S] [--seconds S]
                                             [--arrivals PER_S]

One stack; first a calm, sequential stream of orders (the shop's latency at rest), then per round
the traffic-shaping scenario's overload under its traffic limit (scenarios/shop/overload.py, Locust
on 127.0.0.1, bounded) with the gateway's traffic_shaping on, then the same overload with it switched off at run time
(the protections switchboard), so both see the same machine and the same stack. Prints per run the
orders admitted, shed and failed with the admitted p50/p99, and the ratio off/on of the p99: a
figure to read, never asserted (it depends on the machine's load as much as on the shop).

Then the open loop (overload.arrivals): orders sent at --arrivals a second whatever the answers,
shaping on and off, each printed with the admitted p99 of the orders sent in each third of the
run: unshaped, a queue that nothing bounds but the run's length makes it grow third by third.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: the shop's package is scenarios.shop

from harness.history import History  # noqa: E402
from harness.load import Load  # noqa: E402
from harness.polling import wait_for  # noqa: E402
from harness.probes import health_of  # noqa: E402
from harness.protections import switch  # noqa: E402
from harness.stack import Stack  # noqa: E402
from scenarios.shop import overload  # noqa: E402
from scenarios.shop.clients import ShopClient, mint_token  # noqa: E402
from scenarios.shop.workload import customers  # noqa: E402

CALM_ORDERS = 30
SETTLE_BUDGET_S = 60.0  # the shop back to green between runs
OPEN_LOOP_PER_S = 60.0  # twelve times the limit, above what the unshaped shop serves on 2 cores


def green(stack: Stack) -> bool:
    with health_of(stack, timeout_s=2.0) as health:
        return bool(health.sample()["level"] == "green")


def line(name: str, history: History) -> str:
    taken = overload.admitted(history)
    return (f"{name:<12} admitted {len(taken):4d}  shed {len(overload.shed(history)):4d}  "
            f"failed {len(overload.failed(history)):3d}  admitted p50 {overload.percentile_ms(taken, 0.5)} ms  "
            f"p99 {overload.percentile_ms(taken, 0.99)} ms")


def open_line(name: str, history: History) -> str:
    thirds = " / ".join(f"{p99} ms" for p99 in overload.by_thirds(history))
    why = Counter(op.status or op.body.get("error", "no answer") for op in overload.failed(history))
    return (f"{line(name, history)}\n{'':<12} p99 by third of the run {thirds}"
            + (f"; failed as {dict(why.most_common())}" if why else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="shaped + unshaped pairs (bounded)")
    parser.add_argument("--users", type=int, default=overload.OVERLOAD_USERS)
    parser.add_argument("--rate", type=float, default=overload.OVERLOAD_RATE, help="orders a second per user")
    parser.add_argument("--seconds", type=int, default=overload.OVERLOAD_S)
    parser.add_argument("--arrivals", type=float, default=OPEN_LOOP_PER_S,
                        help="the open loop's orders a second (0: none)")
    args = parser.parse_args()
    with Stack() as stack:
        calm = History()
        shop = ShopClient(stack.edge_url, calm, token=mint_token(stack))
        for _ in range(CALM_ORDERS):
            shop.place_order()
        shop.close()
        print(f"{'calm':<12} {CALM_ORDERS} sequential orders: p50 {overload.percentile_ms(calm.ops, 0.5)} ms  "
              f"p99 {overload.percentile_ms(calm.ops, 0.99)} ms")
        print(f"overload: {args.users} users x {args.rate}/s for {args.seconds} s")
        p99s: dict[str, list[float]] = {"shaping on": [], "shaping off": []}
        for _ in range(max(1, min(args.rounds, 10))):
            for name, disabled in (("shaping on", []), ("shaping off", ["traffic_shaping"])):
                switch(stack, disabled)
                with overload.limited(stack), Load(stack, customers(stack), users=args.users, rate=args.rate,
                                                   duration_s=args.seconds) as load:
                    pass
                history = load.history()
                print(line(name, history))
                p99 = overload.percentile_ms(overload.admitted(history), 0.99)
                if p99 is not None:
                    p99s[name].append(p99)
                switch(stack, [])
                wait_for(lambda: green(stack), SETTLE_BUDGET_S, 0.5)
        on, off = p99s["shaping on"], p99s["shaping off"]
        if on and off:
            print(f"admitted p99 off/on: {max(off) / max(on):.1f}x (worst of each: {max(off)} ms vs {max(on)} ms)")
        if args.arrivals > 0:
            print(f"open loop: {args.arrivals}/s for {args.seconds} s, whatever the answers")
            token = mint_token(stack)
            for name, disabled in (("shaping on", []), ("shaping off", ["traffic_shaping"])):
                switch(stack, disabled)
                with overload.limited(stack):
                    history = overload.arrivals(stack, token, args.arrivals, args.seconds)
                print(open_line(name, history))
                switch(stack, [])
                wait_for(lambda: green(stack), SETTLE_BUDGET_S, 0.5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
