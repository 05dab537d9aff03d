"""The health of a stack, as a monitor sees it, and a background probe sampling it at 10 Hz.

Assertions say whether the system recovered; the probe says *when* it degraded and when it came
back, which is what TTD/TTR and the plots in the reports are made of. One function,
``health_of(stack)``, is how every part of the harness asks (the probe, `chaos status`, the
guardrail watcher, the game-day recorder, wait_green), in one of two ways the topology says:

- the system reports its own health through its entry (``health: {path: ...}`` in the topology
  file: the shop's gateway answers GET /health/system with its weakest service's score); or
- the harness samples the ``health:`` URL of each service that has one itself, at its published
  port, all of them in parallel, one request at a time per service with a short timeout, and the
  system's score is the weakest service's (one that does not answer counts 0), its level the
  monitoring guide's band of that score (harness/recovery.py LEVELS).

Either way a slow system lowers the rate instead of piling requests on it. The probe is bounded
in time and samples; it stops at exit whatever happens in between.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Protocol, Sequence, TypedDict

import httpx

from harness.errors import HarnessError, first_line
from harness.recovery import level_of
from harness.view import StackView

if TYPE_CHECKING:
    from harness.topology import Health as HealthURL

UNREACHABLE = "unreachable"  # the level of a sample whose request failed: a monitor counts it as down
EXTRAS = ("breaker", "disk_used_percent")  # carried into the sample from the first service whose health has them


class Sample(TypedDict):
    """One reading of the system's health (or its failure); plain JSON so reports can store it."""

    ts: float
    score: int | None
    level: str
    breaker: str | None
    disk_used_percent: float | None
    ok: bool
    error: str | None
    services: dict[str, int | None]


def _extra(bodies: list[Any], key: str) -> Any:
    return next((body[key] for body in bodies if isinstance(body, dict) and body.get(key) is not None), None)


def parse(ts: float, response: httpx.Response) -> Sample:
    """A sample from a system's own health answer (score, level, services{name: {score, ...}});
    anything unreadable is an error sample."""
    try:
        body = response.json()
        services = body.get("services", {})
        return Sample(ts=ts, score=int(body["score"]), level=str(body["level"]),
                      breaker=_extra(list(services.values()), "breaker"),
                      disk_used_percent=_extra(list(services.values()), "disk_used_percent"),
                      ok=response.status_code < 300,
                      error=None if response.status_code < 300 else f"HTTP {response.status_code}",
                      services={name: s.get("score") for name, s in services.items()})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return failed(ts, f"HTTP {response.status_code}: {type(exc).__name__}")


def failed(ts: float, error: str) -> Sample:
    return Sample(ts=ts, score=None, level=UNREACHABLE, breaker=None, disk_used_percent=None, ok=False,
                  error=error, services={})


def take(client: httpx.Client, url: str) -> Sample:
    """One sample, stamped when the answer (or the failure) arrived: the moment a monitor knows,
    which is what detection is measured to; a stamp taken at the request could precede the
    fault it reports."""
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        return failed(time.time(), type(exc).__name__)
    return parse(time.time(), response)


# ---------------------------------------------------------------- one service's health, and the system's


@dataclass(frozen=True)
class Reading:
    """What one service's health URL answered: its 0-100 score, its JSON (for the extras), or
    why there was no answer."""

    score: int = 0
    body: Any = None
    error: str | None = None


def reading(health: "HealthURL", response: httpx.Response) -> Reading:
    """A service's score from its health answer: the topology's `score` field of its JSON
    (unreadable: 0); without a score field, 200 counts 100 and anything else 0."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if health.score is None:
        return Reading(100 if response.status_code == 200 else 0, body)
    try:
        return Reading(max(0, min(100, int(body[health.score]))), body)
    except (KeyError, TypeError, ValueError):
        return Reading(0, body)


def aggregate(ts: float, readings: Mapping[str, Reading]) -> Sample:
    """The system's sample from its services' readings: the weakest score (a service that did
    not answer counts 0, red), its level by the monitoring guide's bands. No service answered:
    an unreachable sample, as when a system's own health endpoint does not answer."""
    if not readings:
        return failed(ts, "no service of the topology has a health URL")
    if all(r.error is not None for r in readings.values()):
        return failed(ts, "; ".join(f"{name}: {r.error}" for name, r in readings.items()))
    scores = {name: 0 if r.error is not None else r.score for name, r in readings.items()}
    score = min(scores.values())
    bodies = [r.body for r in readings.values() if r.error is None]
    return Sample(ts=ts, score=score, level=level_of(score), breaker=_extra(bodies, "breaker"),
                  disk_used_percent=_extra(bodies, "disk_used_percent"), ok=True, error=None,
                  services=dict(sorted(scores.items())))


# ---------------------------------------------------------------- the health of a stack


class StackHealth(Protocol):
    """The health of one stack: a sample now, and the clients closed at the end."""

    def sample(self) -> Sample: ...

    def close(self) -> None: ...

    def __enter__(self) -> "StackHealth": ...

    def __exit__(self, *_: object) -> None: ...


class _Closing:
    def __enter__(self) -> Any:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()  # type: ignore[attr-defined]


class ReportedHealth(_Closing):
    """The system reports its own health through its entry (`health: {path}` in the topology).
    `url` is asked on every sample: a stack still starting has no entry to ask yet."""

    def __init__(self, url: Callable[[], str], timeout_s: float = 0.5, client: httpx.Client | None = None) -> None:
        self.url = url
        self.client = client or httpx.Client(timeout=timeout_s)

    def sample(self) -> Sample:
        try:
            url = self.url()
        except (HarnessError, KeyError) as exc:
            return failed(time.time(), first_line(exc))
        return take(self.client, url)

    def close(self) -> None:
        self.client.close()


class SampledHealth(_Closing):
    """The harness samples each service's health URL itself (no `health:` in the topology): all
    in parallel, at most one request in flight per service (one still unanswered from a sample
    before counts as not answering, and is not asked again until it ends)."""

    def __init__(self, stack: StackView, urls: Mapping[str, "HealthURL"], timeout_s: float = 0.5,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.stack, self.urls, self.timeout_s = stack, dict(urls), timeout_s
        self.clients = {name: httpx.Client(timeout=timeout_s, transport=transport) for name in self.urls}
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(self.urls)),
                                                          thread_name_prefix="chaos-health")
        self.pending: dict[str, concurrent.futures.Future[Reading]] = {}

    def _one(self, name: str) -> Reading:
        try:
            url = f"{self.stack.endpoint(name).url}{self.urls[name].path}"
            return reading(self.urls[name], self.clients[name].get(url))
        except (httpx.HTTPError, HarnessError, KeyError) as exc:
            self.stack.refresh(name)  # a restart moves its published port: read it again next time
            return Reading(error=type(exc).__name__)

    def sample(self) -> Sample:
        for name in self.urls:
            if name not in self.pending:
                self.pending[name] = self.pool.submit(self._one, name)
        # A request is bounded by its timeouts (connect, then read); this bounds the wait for all.
        concurrent.futures.wait(self.pending.values(), timeout=3 * self.timeout_s)
        readings = {}
        for name, future in list(self.pending.items()):
            if future.done():
                readings[name] = future.result()
                del self.pending[name]
            else:
                readings[name] = Reading(error=f"no answer within {3 * self.timeout_s:g}s")
        return aggregate(time.time(), readings)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        for client in self.clients.values():
            client.close()


def health_of(stack: StackView, timeout_s: float = 0.5) -> StackHealth:
    """The health of a stack, the way its topology says it is read (see the module's doc)."""
    system = stack.topology
    if system.health_path is not None:
        path = system.health_path
        return ReportedHealth(lambda: stack.edge_url + path, timeout_s)
    urls = {name: service.health for name, service in system.services.items() if service.health is not None}
    return SampledHealth(stack, urls, timeout_s)


def every(health: StackHealth, hz: float, max_s: float) -> Iterator[Sample]:
    """Samples of a stack's health at about `hz`, for at most `max_s` seconds: the loop of the
    detached watchers (guardrail, game-day recorder); the caller stops earlier by leaving its loop."""
    deadline = time.monotonic() + max_s
    while time.monotonic() < deadline:
        yield health.sample()
        time.sleep(1 / hz)


def rate(samples: Sequence[Mapping[str, Any]], started: float | None, stopped: float | None,
         cpu_s: float | None = None) -> dict[str, Any]:
    """Samples, errors and rate over the sampling time, and the sampler's CPU cost (% of one
    core) when it was measured."""
    now = time.time()
    wall = max((stopped or now) - (started or now), 1e-9)
    return {"samples": len(samples), "errors": sum(not s["ok"] for s in samples),
            "hz": round(len(samples) / wall, 2), "cpu_s": None if cpu_s is None else round(cpu_s, 4),
            "cpu_percent": None if cpu_s is None else round(100 * cpu_s / wall, 2), "wall_s": round(wall, 3)}


class Probe:
    """Samples a stack's health on a daemon thread until stop() or max_duration_s.

    `with Probe(health_of(stack)) as probe:` starts and stops it (and closes the health's
    clients); `probe.samples` is a copy of what it saw, `probe.cpu_s` the CPU time its thread
    used (time.thread_time in the thread).
    """

    def __init__(self, health: StackHealth, hz: float = 10.0, max_duration_s: float = 900.0) -> None:
        if not (1.0 <= hz <= 50.0 and 0 < max_duration_s <= 3600):
            raise ValueError("probe out of bounds: 1..50 Hz, up to 3600 s")
        self.period_s, self.max_duration_s = 1.0 / hz, max_duration_s
        self.max_samples = int(hz * max_duration_s) + 1
        self.health = health
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
                sample = self.health.sample()
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
        """Stops sampling (bounded wait: one request timeout) and closes the health's clients."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self.stopped = self.stopped or time.time()
        self.health.close()

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
