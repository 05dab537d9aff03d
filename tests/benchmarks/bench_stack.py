"""Benchmark: cold stack start against RabbitMQ's own boot, measured side by side in one run.

    python tests/benchmarks/bench_stack.py [--rounds N] [--from-nothing]

Prints, per round, the stack's time to ready and RabbitMQ's boot (a lone broker container
started right before, and the broker inside the stack), and the ratio (target <= 1.3x). Beside
the wall times, the CPU seconds each container burned from its start to its ready (its cgroup's
counter, read the moment the stack records it ready) and up to the stack's ready: on a 2-core
machine eight containers booting at once are bound by the CPU they burn together, and CPU
seconds hold on a busy machine where wall times do not. With --from-nothing it first deletes
every chaos-harness image and the build cache and times the build of all images. It ends with
one timed `pytest scenarios/ -k payment_outage` (--no-scenario skips it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import docker

from harness import topology
from harness.engine import connect
from harness.images import CACHE, Builder, ensure_all
from harness.readiness import ready
from harness.stack import LOOPBACK, Stack

ROOT = Path(__file__).resolve().parents[2]

# Where the engine keeps a container's CPU counter, by cgroup layout (v1 or v2, cgroupfs or systemd
# driver): the file, the field in it (None: the file is the number) and its unit in seconds.
CPU_COUNTERS: tuple[tuple[str, str | None, float], ...] = (
    ("/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage", None, 1e-9),
    ("/sys/fs/cgroup/cpu,cpuacct/docker/{id}/cpuacct.usage", None, 1e-9),
    ("/sys/fs/cgroup/cpuacct/system.slice/docker-{id}.scope/cpuacct.usage", None, 1e-9),
    ("/sys/fs/cgroup/system.slice/docker-{id}.scope/cpu.stat", "usage_usec", 1e-6),
    ("/sys/fs/cgroup/docker/{id}/cpu.stat", "usage_usec", 1e-6),
)
SAMPLE_S = 0.02  # how often the sampler looks for services the stack has just recorded ready


def cpu_seconds(client: docker.DockerClient, container_id: str) -> float:
    """CPU seconds a container has burned since it started (all its processes, user and system).
    Read from its cgroup file when this machine shows it (cheap: the sampler reads it at each
    service's ready), else from the engine's one-shot stats."""
    for template, key, unit in CPU_COUNTERS:
        path = Path(template.format(id=container_id))
        try:
            text = path.read_text()
        except OSError:
            continue
        if key is None:
            return int(text) * unit
        fields = dict(line.split() for line in text.splitlines())
        return int(fields[key]) * unit
    stats = client.api.stats(container_id, stream=False, one_shot=True)
    return int(stats["cpu_stats"]["cpu_usage"]["total_usage"]) * 1e-9


class CpuAtReady(threading.Thread):
    """Reads each service's CPU counter as soon as the stack records it ready (Stack.timings gets
    the service's name right after its readiness wait ends), while the rest still boot."""

    def __init__(self, client: docker.DockerClient, stack: Stack) -> None:
        super().__init__(daemon=True)
        self.client, self.stack = client, stack
        self.at_ready: dict[str, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 300
        while not self.done.is_set() and time.monotonic() < deadline:
            self.sample()
            self.done.wait(SAMPLE_S)

    def sample(self) -> None:
        for name, container in list(self.stack.containers.items()):
            if name not in self.at_ready and name in self.stack.timings:
                self.at_ready[name] = cpu_seconds(self.client, container.get_container_id())

    def finish(self) -> dict[str, float]:
        """Stops sampling; returns every service's CPU seconds up to now (the stack's ready)."""
        self.done.set()
        self.join(timeout=5)
        self.sample()
        return {name: cpu_seconds(self.client, container.get_container_id())
                for name, container in self.stack.containers.items()}


def lone_rabbitmq_boot(client, image: str) -> tuple[float, float]:
    """Seconds from `docker run` to an AMQP handshake for a broker alone, and the CPU seconds it
    burned by then."""
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
                    return time.monotonic() - began, cpu_seconds(client, container.id)
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("lone RabbitMQ never became ready")
    finally:
        container.remove(force=True, v=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--from-nothing", action="store_true")
    parser.add_argument("--no-scenario", action="store_true", help="skip the timed payment_outage scenario")
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
    rows, cpu_rows = [], []
    for round_ in range(1, args.rounds + 1):
        lone, lone_cpu = lone_rabbitmq_boot(client, rabbit_image)
        stack = Stack()
        sampler = CpuAtReady(client, stack)
        harness_cpu = time.process_time()
        sampler.start()
        with stack:
            at_stack_ready = sampler.finish()
            harness_cpu = time.process_time() - harness_cpu
            ready, inner = stack.timings["ready"], stack.timings["rabbitmq"]
            walls = {name: stack.timings[name] for name in stack.containers}
        rows.append((ready, lone, inner))
        cpu_rows.append((lone_cpu, sum(at_stack_ready.values()), harness_cpu))
        print(f"round {round_}: stack ready {ready:.2f}s | RabbitMQ alone {lone:.2f}s, in stack {inner:.2f}s"
              f" | ratio stack/alone {ready / lone:.2f}x")
        print(f"  {'service':<18} {'ready':>7} {'CPU to own ready':>17} {'CPU to stack ready':>19}")
        for name in sorted(walls, key=lambda n: -at_stack_ready[n]):
            print(f"  {name:<18} {walls[name]:6.2f}s {sampler.at_ready.get(name, float('nan')):16.2f}s"
                  f" {at_stack_ready[name]:18.2f}s")
        total = sum(at_stack_ready.values())
        print(f"  containers' CPU {total:.2f}s ({total / (os.cpu_count() or 1):.2f}s of wall on {os.cpu_count()}"
              f" cores), this process {harness_cpu:.2f}s; RabbitMQ alone burned {lone_cpu:.2f}s to ready")
    ready, lone, inner = (statistics.median(col) for col in zip(*rows))
    lone_cpu, total, harness_cpu = (statistics.median(col) for col in zip(*cpu_rows))
    print(f"median: stack {ready:.2f}s, RabbitMQ alone {lone:.2f}s -> {ready / lone:.2f}x (target <= 1.3x);"
          f" CPU: containers {total:.2f}s, this process {harness_cpu:.2f}s, RabbitMQ alone {lone_cpu:.2f}s")
    if args.no_scenario:
        return 0

    began = time.monotonic()
    result = subprocess.run([str(Path(sys.executable).with_name("pytest")), "scenarios/", "-k", "payment_outage",
                             "-q", "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True)
    print(f"pytest scenarios/ -k payment_outage: {time.monotonic() - began:.1f}s, exit {result.returncode}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
