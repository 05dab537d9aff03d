"""The stack's lifetime: one network, one container per service, Toxiproxy on every edge.

``with Stack(sut_mode="resilient") as stack:`` starts everything from the topology table,
waits until each service speaks its protocol (SQL, AMQP, HTTP), and removes every container,
network and volume it made on the way out, whatever happened inside. Everything carries the
run's ownership labels (harness.ownership), so what a SIGKILLed run left is found by them: the
reaper (harness.reaper, run by `chaos up` and the pytest plugin before they start a stack)
removes what abandoned runs left behind (a dead owner on this host, an expired lease from
another) with ``reap`` here, and heals the faults killed processes left. A Stack itself never
reaps: it knows nothing of faults.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from datetime import datetime, timezone
from typing import Any, Callable

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")

import docker  # noqa: E402
import docker.errors  # noqa: E402
import requests  # noqa: E402
from testcontainers.core.container import DockerContainer  # noqa: E402
from testcontainers.core.network import Network  # noqa: E402
from testcontainers.core.waiting_utils import WaitStrategy, WaitStrategyTarget  # noqa: E402
from toxiproxy import Toxiproxy  # noqa: E402

from harness import ownership, protections, readiness, signals, state  # noqa: E402
from harness.engine import connect  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.images import Builder  # noqa: E402
from harness.ownership import (  # noqa: E402,F401  (re-exported: the names the harness has always used)
    KEPT_LABEL,
    KEPT_OWNER,
    OWNER_LABEL,
    RUN_LABEL,
    SERVICE_LABEL,
    STATE_LABEL,
    owner_alive,
    owner_token,
    stale_runs,
)
from harness.topology import TOXIPROXY, Service, Topology, active  # noqa: E402
from harness.view import DerivedAccess, Endpoint, EndpointCache  # noqa: E402

LOOPBACK = "127.0.0.1"
START_JOIN_S = 30.0  # an interrupted start waits this long at most for its start threads to end
# A booting container's state is asked of the engine every this many failed readiness checks (once
# a second at the 0.1 s poll), not at each: an inspect costs ~2.5 ms of CPU, the engine's and ours,
# eight services ten times a second on the cores they boot on. A container that exits is seen as
# late as that.
STATUS_EVERY = 10


def say(message: str) -> None:
    print(f"[stack] {message}", file=sys.stderr, flush=True)


def new_run_id() -> str:
    """Sortable and unique enough for one machine: UTC time plus a random suffix."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


# ---------------------------------------------------------------- ownership and the reaper

# What a run is made of, in the order it is removed (containers first: they hold the network and
# the volumes): how to list each kind by label and how to remove one.
_KINDS: tuple[tuple[str, Callable[[docker.DockerClient, dict[str, str]], list[Any]], Callable[[Any], None]], ...] = (
    ("container", lambda client, selector: client.containers.list(all=True, sparse=True, filters=selector),
     lambda container: container.remove(force=True, v=True)),
    ("network", lambda client, selector: client.networks.list(filters=selector), lambda network: network.remove()),
    ("volume", lambda client, selector: client.volumes.list(filters=selector),
     lambda volume: volume.remove(force=True)),
)
# What the engine (or the connection to it) raises when a listing or a removal fails.
ENGINE_ERRORS = (docker.errors.DockerException, requests.RequestException)


def remove_run_objects(client: docker.DockerClient, run_id: str) -> tuple[int, list[str]]:
    """Removes every container, network and volume of one run, each on its own: one that refuses
    (in use, an engine error) does not keep the others. Returns how many went and one line per
    object (or listing) that failed; gone already counts as removed by someone else, not failed."""
    selector = {"label": f"{RUN_LABEL}={run_id}"}
    removed, failed = 0, []
    for kind, listing, remove in _KINDS:
        try:
            found = listing(client, selector)
        except ENGINE_ERRORS as exc:
            failed.append(f"could not list its {kind}s: {_short(exc)}")
            continue
        for thing in found:
            try:
                remove(thing)
                removed += 1
            except docker.errors.NotFound:
                pass
            except ENGINE_ERRORS as exc:
                failed.append(f"could not remove {kind} {getattr(thing, 'name', thing.id)}: {_short(exc)}")
    return removed, failed


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def remove_run(client: docker.DockerClient, run_id: str) -> int:
    """Removes every container, network and volume of one run; returns how many objects. What
    could not be removed is said, one line each (the next start's reaper tries again)."""
    removed, failed = remove_run_objects(client, run_id)
    for line in failed:
        say(f"run {run_id}: {line}")
    return removed


def daemon_labels(client: docker.DockerClient, run_id: str | None = None) -> list[dict[str, str]]:
    """The labels of every chaos-harness container, network and volume on the daemon (or of one
    run's), the kept markers among the volumes: what the ownership judgements read."""
    selector = {"label": f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL}
    # Sparse: one listing call, no inspect per container that a concurrent removal (another
    # run's teardown on this daemon) turns into NotFound.
    labels = [c.attrs.get("Labels") or {} for c in client.containers.list(all=True, sparse=True, filters=selector)]
    labels += [n.attrs.get("Labels") or {} for n in client.networks.list(filters=selector)]
    labels += [v.attrs.get("Labels") or {} for v in client.volumes.list(filters=selector)]
    return labels


def reap(client: docker.DockerClient, keep: str | None = None) -> list[str]:
    """Removes what abandoned runs left behind, as ownership.is_stale judges them (any state
    directory's: a dead owner on this host or an expired lease is abandoned whoever started it)."""
    runs = sorted(stale_runs(daemon_labels(client), keep))
    for run in runs:
        say(f"reaped {remove_run(client, run)} objects left by run {run}")
    return runs


def mark_kept(client: docker.DockerClient, run_id: str, labels: dict[str, str]) -> str:
    """Marks a green run as kept (`chaos up`): labels are immutable, so the mark is an object of
    its own, a tiny volume with the run's labels that remove_run takes with the run."""
    name = f"chaos-{run_id}-kept"
    client.volumes.create(name=name, labels={**labels, KEPT_LABEL: "1"})
    return name


# ---------------------------------------------------------------- readiness, as a wait strategy

class ProtocolReady(WaitStrategy):
    """Waits until the service answers its own protocol, not merely until a port accepts TCP
    (Docker's proxy accepts connections long before the server inside listens)."""

    def __init__(self, service: Service, timeout_s: float = 90,
                 cancelled: threading.Event | None = None) -> None:
        super().__init__()
        self.service, self.port = service, service.port
        self.cancelled = cancelled or threading.Event()  # set when the start is abandoned: stop waiting
        self.with_startup_timeout(int(timeout_s)).with_poll_interval(0.1)

    def wait_until_ready(self, container: WaitStrategyTarget) -> None:
        host, port = LOOPBACK, int(container.get_exposed_port(self.port))  # loopback only, by design
        deadline = time.monotonic() + self._startup_timeout
        last_error = "no answer"
        attempt = 0
        while time.monotonic() < deadline:
            attempt += 1
            if self.cancelled.is_set():
                raise HarnessError("the start was abandoned")
            try:
                if readiness.ready(self.service, host, port):
                    return
            except Exception as exc:  # any failure of the readiness check means "not ready yet"
                last_error = f"{type(exc).__name__}: {str(exc)[:120]}"
            if attempt % STATUS_EVERY == 0:
                container.reload()
                if container.status in ("exited", "dead"):
                    tail = container.get_logs()[0].decode(errors="replace")[-600:]
                    raise HarnessError(f"container exited before it was ready ({last_error}); last output: {tail}")
            time.sleep(self._poll_interval)
        raise HarnessError(f"not ready after {self._startup_timeout:.0f}s over {self.service.readiness}: {last_error}")


# ---------------------------------------------------------------- the stack

class Stack(DerivedAccess):
    """A running copy of a topology's system for one run; a context manager that always cleans
    up. A StackView (harness.view): its proxies' endpoints, edge URL and logs it inherits."""

    def __init__(self, sut_mode: str = "resilient", run_id: str | None = None,
                 client: docker.DockerClient | None = None, startup_timeout_s: float = 120,
                 owner: str | None = None, disabled: tuple[str, ...] = (),
                 topology: Topology | None = None) -> None:
        self.topology = topology or active()
        if sut_mode not in ("resilient", "fragile"):
            raise HarnessError(f"unknown SUT mode {sut_mode!r}: use resilient or fragile")
        self.sut_mode = sut_mode
        self.disabled = protections.checked(disabled)  # off from the start (SUT_DISABLE)
        self.run_id = run_id or new_run_id()
        # What the shop's control endpoints ask for: new for each stack, handed to its services
        # (Topology.service_env) and read back by a process that attaches (AttachedStack).
        self.control_secret = secrets.token_urlsafe(32)
        # Whose lifetime the run shares: this process by default (`chaos up` too: a start it does
        # not finish is reaped like any other; it marks the stack kept once green).
        self.owner = owner or owner_token()
        # The state directory whose run this is (its identity in the labels: `chaos down`'s own).
        self.labels = ownership.run_labels(self.run_id, self.owner, state.state_identity(create=True) or "",
                                           ownership.lease_s())
        self.client = client or connect()
        self.startup_timeout_s = startup_timeout_s
        self.containers: dict[str, DockerContainer] = {}
        self.network: Network | None = None
        self._toxiproxy = Toxiproxy()
        self.timings: dict[str, float] = {}
        self._lock = threading.Lock()
        self._endpoints = EndpointCache()
        # The start threads' work, and the flag that tells them to give up (set by stop()).
        self._starting: list[Future[None]] = []
        self._cancelled = threading.Event()

    # lifecycle
    def __enter__(self) -> "Stack":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> "Stack":
        started = time.monotonic()
        self._cancelled.clear()
        builder = Builder(self.client)
        images = {s.name: builder.service_image(s) for s in self.topology.services.values()}
        self.timings["images"] = time.monotonic() - started
        say(f"run {self.run_id}: starting {len(self.topology.services)} containers of {self.topology.name}"
            f" ({self.sut_mode})")
        self.network = Network(docker_network_kw={"labels": self.labels}).create()
        for wave in self.topology.start_order():
            self._start_wave(wave, images)
            if wave == [TOXIPROXY]:
                self._create_proxies()
        self.timings["ready"] = time.monotonic() - started
        say(f"run {self.run_id}: ready in {self.timings['ready']:.1f}s")
        return self

    def _start_wave(self, wave: list[str], images: dict[str, str]) -> None:
        """Starts one wave's services in parallel and returns once all are ready. On an error or an
        interrupt it returns without waiting for the wave's threads: __enter__'s stop() tells them
        to give up, waits for them (bounded) and removes what they made after its first removal."""
        pool = ThreadPoolExecutor(max_workers=len(wave))
        try:
            futures = {name: pool.submit(self._start_service, name, images) for name in wave}
            self._starting += futures.values()
            errors: dict[str, Exception] = {}
            for name, future in futures.items():
                try:
                    future.result()
                except Exception as exc:
                    errors[name] = exc
            if errors:
                name, error = next(iter(errors.items()))
                raise HarnessError(f"{name} did not start: {error}") from None
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _start_service(self, name: str, images: dict[str, str]) -> None:
        service = self.topology.services[name]
        began = time.monotonic()
        if self._cancelled.is_set():  # the start was abandoned before this thread ran: make nothing
            raise HarnessError("the start was abandoned")
        run_options: dict[str, Any] = {"hostname": service.hostname} if service.hostname else {}
        container = DockerContainer(
            images[name],
            env=self.topology.service_env(service, self.sut_mode, self.disabled, self.control_secret),
            name=f"chaos-{self.run_id}-{service.host}",
            labels={**self.labels, SERVICE_LABEL: name, ownership.SUT_MODE_LABEL: self.sut_mode,
                    ownership.TOPOLOGY_LABEL: str(self.topology.path)},
            **run_options,
        )
        if service.command:
            container.with_command(list(service.command))
        assert self.network is not None  # __enter__ makes the network before any wave starts
        container.with_network(self.network).with_network_aliases(service.host)
        for index, (mount, size) in enumerate(service.volumes):
            volume = self.client.volumes.create(
                name=f"chaos-{self.run_id}-{service.host}-data" + (f"-{index}" if index else ""),
                driver="local", labels=self.labels,
                driver_opts={"type": "tmpfs", "device": "tmpfs", "o": f"size={size}"})
            container.with_volume_mapping(volume.name, mount, "rw")
        # Toxiproxy publishes every proxy's listener: the client edge for the harness's traffic,
        # and the internal edges so the network faults are proven through the proxy itself.
        ports = [service.port, *service.extra_ports] + [p.listen_port for p in self.topology.proxies.values()
                                                        if name == TOXIPROXY]
        for port in ports:
            container.ports[str(port)] = (LOOPBACK, None)  # type: ignore[assignment]  # loopback only
        container.waiting_for(ProtocolReady(service, self.startup_timeout_s,
                                            self._cancelled))
        with self._lock:
            if self._cancelled.is_set():
                raise HarnessError("the start was abandoned")
            self.containers[name] = container
        container.start()
        self.timings[name] = time.monotonic() - began

    @property
    def toxiproxy(self) -> Toxiproxy:
        """The Toxiproxy client, pointed at this run's server. toxiproxy-python keeps the server
        address in class state, so it is re-pointed on every access: with two stacks in one
        process, take proxies from the stack you mean right before using them."""
        api = self.endpoint(TOXIPROXY)
        self._toxiproxy.update_api_consumer(api.host, api.port)
        return self._toxiproxy

    def _create_proxies(self) -> None:
        self.toxiproxy.populate([
            {"name": p.name, "upstream": self.topology.upstream_address(p),
             "listen": f"0.0.0.0:{p.listen_port}", "enabled": True}
            for p in self.topology.proxies.values()
        ])

    def stop(self) -> None:
        """Removes this run's containers, network and volumes, each on its own (what refuses is
        said, one line each, and the rest still go); safe to call twice. Start threads still
        running (an interrupted or failed start) are told to give up and waited for (bounded),
        then the run is removed again: a container a thread created after the first removal
        does not stay. Signals wait until it is done (harness.signals)."""
        with signals.teardown():
            self._cancelled.set()
            count, failed = remove_run_objects(self.client, self.run_id)
            running = [future for future in self._starting if not future.done()]
            if running:
                _, still = wait_futures(running, timeout=START_JOIN_S)
                if still:
                    say(f"run {self.run_id}: {len(still)} start thread(s) still running after {START_JOIN_S:.0f}s")
                more, failed = remove_run_objects(self.client, self.run_id)
                count += more
            self._starting.clear()
            for line in failed:
                say(f"run {self.run_id}: {line}; the next start will reap it")
            if count:
                say(f"run {self.run_id}: removed {count} objects")
            self.containers.clear()
            self._endpoints.clear()

    # access
    def endpoint(self, service: str, port: int | None = None) -> Endpoint:
        """Where the harness reaches a container's port: always on 127.0.0.1."""
        port = port or self.topology.services[service].port
        key = (service, port)
        if key not in self._endpoints:
            container = self.containers[service]
            self._endpoints[key] = Endpoint(LOOPBACK, int(container.get_exposed_port(port)))
        return self._endpoints[key]

    def refresh(self, service: str) -> None:
        self._endpoints.forget(service)

    def docker_container(self, service: str) -> docker.models.containers.Container:
        return self.client.containers.get(self.containers[service].get_container_id())


def container_env(container: docker.models.containers.Container) -> dict[str, str]:
    """A container's environment as it was started (from the engine's record of it)."""
    return dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])


def port_is_free(port: int) -> bool:
    """Whether a loopback port can be bound (for clear errors before the engine's own)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no owner
        try:
            sock.bind((LOOPBACK, port))
            return True
        except OSError:
            return False
