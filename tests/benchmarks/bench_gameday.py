"""Benchmark: game-day commands, measured side by side in one run.

    python tests/benchmarks/bench_gameday.py [--rounds N]

Per round:
- `chaos up` to green health (images cached), beside a lone RabbitMQ boot started right before it: the
  broker's boot is the floor of any stack start.
- With one fault of every family active (network, http, disk, auth, message, process, config,
  data), the emergency stop `chaos heal --all` healing them from their records after the injector
  was SIGKILLed, beside the injector healing the same set itself (Chaos.heal_all, in process):
  what healing from another process costs.
Then `chaos down`. Uses its own fault-state directory; leaves nothing behind.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.engine import connect
from harness.faults import Chaos
from harness.faults.attach import attach
from harness.images import Builder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_stack import lone_rabbitmq_boot  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CHAOS = str(Path(sys.executable).with_name("chaos"))
ONE_PER_FAMILY = [
    ("network.latency", "edge_gateway", {"latency_ms": 300}), ("http.status", "payment_gateway", {"status": 503}),
    ("disk.fill", "api_gateway", {"percent": 90}), ("auth.key_rotation", "auth_service", {}),
    ("message.malformed_json", "rabbitmq", {"count": 1}), ("process.pause", "alert_sink", {}),
    ("config.missing_env", "inventory_service", {}), ("data.null_fields", "postgres", {"sku": "sku-5"}),
]
INJECTOR = f"""
import os, sys, time
from harness.faults import Chaos
from harness.faults.attach import attach
chaos = Chaos(attach(sys.argv[1]))
for name, target, params in {ONE_PER_FAMILY!r}:
    chaos.inject(name, target, **params)
print("holding", flush=True)
time.sleep(600)
"""


def chaos(*args: str) -> tuple[float, str]:
    began = time.monotonic()
    result = subprocess.run([CHAOS, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"chaos {' '.join(args)} failed: {result.stderr.strip()}")
    return time.monotonic() - began, result.stdout


def heal_all_after_sigkill(run_id: str) -> tuple[float, float]:
    """(wall time of `chaos heal --all`, the healing inside it as the command reports it)."""
    child = subprocess.Popen([sys.executable, "-c", INJECTOR, run_id], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        if child.stdout.readline().strip() != "holding":
            raise SystemExit("the injector did not inject every family")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    took, out = chaos("heal", "--all")
    if not out.startswith(f"healed {len(ONE_PER_FAMILY)} fault(s)"):
        raise SystemExit(f"heal --all did not heal every family: {out}")
    return took, float(re.search(r" in ([\d.]+)s", out).group(1))


def heal_in_process(run_id: str) -> float:
    injector = Chaos(attach(run_id))
    for name, target, params in ONE_PER_FAMILY:
        injector.inject(name, target, **params)
    began = time.monotonic()
    injector.heal_all()
    return time.monotonic() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ["CHAOS_STATE_DIR"] = tempfile.mkdtemp(prefix="chaos-bench-")
    client = connect()
    rabbit = Builder(client).image("rabbitmq")
    rows = []
    for round_ in range(1, args.rounds + 1):
        lone = lone_rabbitmq_boot(client, rabbit)
        up_s, out = chaos("up")
        if not out.startswith("up: "):
            raise SystemExit("a kept stack is already up: `chaos down` it first, so `chaos up` starts one")
        run_id = re.search(r"^up: run (\S+)", out, re.M).group(1)
        try:
            cli_heal, inner = heal_all_after_sigkill(run_id)
            own_heal = heal_in_process(run_id)
        finally:
            chaos("down", "--run", run_id)
        rows.append((up_s, lone, cli_heal, inner, own_heal))
        print(f"round {round_}: chaos up {up_s:.2f}s vs RabbitMQ alone {lone:.2f}s ({up_s / lone:.2f}x) | "
              f"heal --all of {len(ONE_PER_FAMILY)} families {cli_heal:.2f}s (healing {inner:.2f}s) vs in-process "
              f"heal {own_heal:.2f}s "
              f"({cli_heal / own_heal:.2f}x)", flush=True)
    up_s, lone, cli_heal, inner, own_heal = (statistics.median(col) for col in zip(*rows))
    print(f"median: chaos up to green {up_s:.2f}s = {up_s / lone:.2f}x a lone RabbitMQ boot ({lone:.2f}s); "
          f"chaos heal --all (every family, after SIGKILL) {cli_heal:.2f}s wall, {inner:.2f}s of it healing = "
          f"{inner / own_heal:.2f}x the injector's own heal ({own_heal:.2f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
