"""A background health probe: the system's score sampled at 10 Hz while a scenario runs.

Assertions say whether the shop recovered; the probe says *when* it degraded and when it came
back, which is what TTD/TTR and the plots in the reports are made of. It asks the edge for
GET /health/system (the weakest service's score, with api_gateway's own health inside, which
carries the breaker state and node-A's disk use), one request at a time with a short timeout,
so a slow shop lowers the rate instead of piling requests on it. Bounded in time and samples;
it stops at exit whatever happens in between.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator, TypedDict

import httpx

HEALTH_PATH = "/health/system"
UNREACHABLE = "unreachable"  # the level of a sample whose request failed: a monitor counts it as down


class Sample(TypedDict):
    """One answer (or failure) of the health endpoint; plain JSON so reports can store it."""

    ts: float
    score: int | None
    level: str
    breaker: str | None
    disk_used_percent: float | None
    ok: bool
    error: str | None
    services: dict[str, int | None]


def parse(ts: float, response: httpx.Response) -> Sample:
    """A sample from a /health/system answer; anything unreadable is an error sample."""
    try:
        body = response.json()
        gateway = body.get("services", {}).get("api_gateway", {})
        return Sample(ts=ts, score=int(body["score"]), level=str(body["level"]), breaker=gateway.get("breaker"),
                      disk_used_percent=gateway.get("disk_used_percent"), ok=response.status_code < 300,
                      error=None if response.status_code < 300 else f"HTTP {response.status_code}",
                      services={name: s.get("score") for name, s in body.get("services", {}).items()})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return failed(ts, f"HTTP {response.status_code}: {type(exc).__name__}")


def failed(ts: float, error: str) -> Sample:
    return Sample(ts=ts, score=None, level=UNREACHABLE, breaker=None, disk_used_percent=None, ok=False,
                  error=error, services={})


def take(client: httpx.Client, url: str = HEALTH_PATH) -> Sample:
    """One sample, stamped when the answer (or the failure) arrived: the moment a monitor knows,
    which is what detection is measured to; a stamp taken at the request could precede the
    fault it reports."""
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        return failed(time.time(), type(exc).__name__)
    return parse(time.time(), response)


def every(url: str, hz: float, max_s: float, timeout_s: float = 1.0) -> Iterator[Sample]:
    """Samples of `url` at about `hz`, for at most `max_s` seconds: the loop of the detached
    watchers (guardrail, game-day recorder); the caller stops earlier by leaving its loop."""
    deadline = time.monotonic() + max_s
    with httpx.Client(timeout=timeout_s) as client:
        while time.monotonic() < deadline:
            yield take(client, url)
            time.sleep(1 / hz)


def rate(samples: list[Sample], started: float | None, stopped: float | None,
         cpu_s: float | None = None) -> dict[str, Any]:
    """Samples, errors and rate over the sampling time, and the sampler's CPU cost (% of one
    core) when it was measured."""
    now = time.time()
    wall = max((stopped or now) - (started or now), 1e-9)
    return {"samples": len(samples), "errors": sum(not s["ok"] for s in samples),
            "hz": round(len(samples) / wall, 2), "cpu_s": None if cpu_s is None else round(cpu_s, 4),
            "cpu_percent": None if cpu_s is None else round(100 * cpu_s / wall, 2), "wall_s": round(wall, 3)}


class Probe:
    """Samples the health endpoint on a daemon thread until stop() or max_duration_s.

    `with Probe(stack.edge_url) as probe:` starts and stops it; `probe.samples` is a copy of
    what it saw, `probe.cpu_s` the CPU time its thread used (time.thread_time in the thread).
    """

    def __init__(self, base_url: str, hz: float = 10.0, max_duration_s: float = 900.0, timeout_s: float = 0.5,
                 client: httpx.Client | None = None) -> None:
        if not (1.0 <= hz <= 50.0 and 0 < max_duration_s <= 3600):
            raise ValueError("probe out of bounds: 1..50 Hz, up to 3600 s")
        self.period_s, self.max_duration_s = 1.0 / hz, max_duration_s
        self.max_samples = int(hz * max_duration_s) + 1
        self.client = client or httpx.Client(base_url=base_url, timeout=timeout_s)
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-health-probe", daemon=True)
        # Called with each sample on the probe's thread (guardrails watch through these); a
        # listener that raises is dropped rather than stopping the probe.
        self.listeners: list[Callable[[Sample], None]] = []
        self.started: float | None = None
        self.stopped: float | None = None
        self.cpu_s = 0.0

    def _run(self) -> None:
        """Fixed-rate schedule; a late answer skips ticks rather than bursting to catch up."""
        cpu_began, began = time.thread_time(), time.monotonic()
        deadline, tick = began + self.max_duration_s, began
        try:
            for _ in range(self.max_samples):
                sample = take(self.client)
                with self._lock:
                    self._samples.append(sample)
                self._notify(sample)
                now = time.monotonic()
                tick = max(tick + self.period_s, now)
                if now >= deadline or self._stop.wait(tick - now):
                    break
        finally:
            self.cpu_s = time.thread_time() - cpu_began

    def _notify(self, sample: Sample) -> None:
        for listener in list(self.listeners):
            try:
                listener(sample)
            except Exception:  # noqa: BLE001 (a broken listener must not blind the probe)
                self.listeners.remove(listener)

    def start(self) -> "Probe":
        self.started = time.time()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops sampling (bounded wait: one request timeout) and closes the client."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self.stopped = self.stopped or time.time()
        self.client.close()

    def wait_until(self, done: Callable[[list[Sample]], bool], timeout_s: float) -> bool:
        """Waits (bounded) until done(samples) holds, e.g. until recovery has been observed."""
        deadline = time.monotonic() + timeout_s
        while not done(self.samples):
            if time.monotonic() >= deadline or not self._thread.is_alive():
                return False
            time.sleep(self.period_s)
        return True

    @property
    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._samples)

    def stats(self) -> dict[str, Any]:
        """Rate, errors and the probe's own CPU cost (% of one core over its running time)."""
        return rate(self.samples, self.started, self.stopped, self.cpu_s)

    def __enter__(self) -> "Probe":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
