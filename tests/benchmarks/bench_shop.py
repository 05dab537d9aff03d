"""Benchmark: Toxiproxy's hop cost on POST /orders, and each container's memory at rest.

    python tests/benchmarks/bench_shop.py [--orders N] [--rate PER_S]

Sends the same bounded, paced stream of orders through the edge proxy and straight to the
gateway's own port, interleaved in one run so both see the same machine, and prints p50/p99 of
each and their ratio. Then prints the memory each container of the stack uses at rest.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: the shop's package is scenarios.shop

from harness.stack import Stack  # noqa: E402
from scenarios.shop.clients import mint_token  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300, help="orders per path (bounded)")
    parser.add_argument("--rate", type=float, default=20.0, help="orders per second per path")
    args = parser.parse_args()
    with Stack() as stack:
        token = mint_token(stack)
        paths = {"edge proxy": stack.edge_url, "direct": stack.endpoint("api_gateway").url}
        clients = {name: httpx.Client(base_url=url, timeout=10, headers={"Authorization": f"Bearer {token}"})
                   for name, url in paths.items()}
        latencies: dict[str, list[float]] = {name: [] for name in paths}
        for name, client in clients.items():  # warm both paths up
            for _ in range(20):
                client.post("/orders", json={"sku": "sku-1", "amount_cents": 1},
                            headers={"Idempotency-Key": uuid.uuid4().hex})
        interval = 1.0 / args.rate
        for _ in range(args.orders):
            for name, client in clients.items():
                began = time.perf_counter()
                response = client.post("/orders", json={"sku": "sku-1", "amount_cents": 1},
                                       headers={"Idempotency-Key": uuid.uuid4().hex})
                latencies[name].append(time.perf_counter() - began)
                assert response.status_code == 201, response.text
                time.sleep(max(0.0, interval / 2 - (time.perf_counter() - began)))
        for name, values in latencies.items():
            print(f"{name:<11} p50 {percentile(values, 50) * 1000:7.2f} ms  p99 {percentile(values, 99) * 1000:7.2f} ms"
                  f"  (n={len(values)}, mean {statistics.mean(values) * 1000:.2f} ms)")
        edge, direct = latencies["edge proxy"], latencies["direct"]
        print(f"hop cost: p50 +{(percentile(edge, 50) - percentile(direct, 50)) * 1000:.2f} ms "
              f"({percentile(edge, 50) / percentile(direct, 50):.2f}x), "
              f"p99 {percentile(edge, 99) / percentile(direct, 99):.2f}x")
        time.sleep(3)
        print("memory at rest:")
        for name in stack.containers:
            stats = stack.docker_container(name).stats(stream=False)
            usage = stats["memory_stats"].get("usage", 0) - stats["memory_stats"].get("stats", {}).get("cache", 0)
            print(f"  {name:<18} {usage / 2**20:7.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
