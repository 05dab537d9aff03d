"""Benchmark: cold stack start against RabbitMQ's own boot, measured side by side in one run.

    python tests/benchmarks/bench_stack.py [--rounds N] [--from-nothing]

Prints, per round, the stack's time to ready and RabbitMQ's boot (a lone broker container
started right before, and the broker inside the stack), and the ratio (target <= 1.5x). With
--from-nothing it first deletes every chaos-harness image and the build cache and times the
build of all images. It ends with one timed `pytest scenarios/ -k payment_outage`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harness import topology
from harness.engine import connect
from harness.images import CACHE, Builder, ensure_all
from harness.readiness import ready
from harness.stack import LOOPBACK, Stack

ROOT = Path(__file__).resolve().parents[2]


def lone_rabbitmq_boot(client, image: str) -> float:
    """Seconds from `docker run` to an AMQP handshake for a broker alone."""
    service = topology.SERVICES["rabbitmq"]
    began = time.monotonic()
    container = client.containers.run(image, detach=True, environment=service.env,
                                      ports={"5672/tcp": (LOOPBACK, None)},
                                      labels={"chaos-harness.run": "bench", "chaos-harness.owner": "bench"})
    try:
        container.reload()
        port = int(container.ports["5672/tcp"][0]["HostPort"])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if ready(service, LOOPBACK, port):
                    return time.monotonic() - began
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("lone RabbitMQ never became ready")
    finally:
        container.remove(force=True, v=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--from-nothing", action="store_true")
    args = parser.parse_args()
    client = connect()

    if args.from_nothing:
        for image in client.images.list():
            if any(tag.startswith("chaos-harness/") for tag in image.tags):
                client.images.remove(image.id, force=True)
        shutil.rmtree(CACHE, ignore_errors=True)
        began = time.monotonic()
        ensure_all(client)
        print(f"images built from nothing: {time.monotonic() - began:.1f}s")

    rabbit_image = Builder(client).image("rabbitmq")
    rows = []
    for round_ in range(1, args.rounds + 1):
        lone = lone_rabbitmq_boot(client, rabbit_image)
        with Stack() as stack:
            ready, inner = stack.timings["ready"], stack.timings["rabbitmq"]
        rows.append((ready, lone, inner))
        print(f"round {round_}: stack ready {ready:.2f}s | RabbitMQ alone {lone:.2f}s, in stack {inner:.2f}s"
              f" | ratio stack/alone {ready / lone:.2f}x")
    ready, lone, inner = (statistics.median(col) for col in zip(*rows))
    print(f"median: stack {ready:.2f}s, RabbitMQ alone {lone:.2f}s -> {ready / lone:.2f}x (target <= 1.5x)")

    began = time.monotonic()
    result = subprocess.run([str(Path(sys.executable).with_name("pytest")), "scenarios/", "-k", "payment_outage",
                             "-q", "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True)
    print(f"pytest scenarios/ -k payment_outage: {time.monotonic() - began:.1f}s, exit {result.returncode}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
