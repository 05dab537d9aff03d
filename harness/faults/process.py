"""Process faults: what happens to a service's container (killed, frozen, restarted, stopped),
or to a process inside it (a consumer wedged); and the restart an operator performs to recover.

The fault's window opens when the target stopped answering, not when the engine was asked:
the action runs in a thread while a first-byte wire check in the service's own protocol
(harness/faults/wire.py) polls its published port, and the first wire check that gets no whole
answer marks the start (a graceful stop takes seconds to go quiet). Landed is then the container
state the engine reports (exited, paused; for a restart: running again, started anew and
answering). Healing brings the container back whatever happened to
it (unpause a paused one, start a stopped one) and returns only when the service answers its
own protocol again, on its published port, which a restart may have moved.

`process.consumer_wedge` needs the service's cooperation (capability `consumer_wedge`: the shop's
shop.wedge): its message handler hangs between a message's effect and its ack, while its HTTP
API answers on. `restart_service` is the manual's first response "restart the affected
instance": a recovery action, not a fault (a scenario or a game day performs it, and the report
records it as one).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Literal

import docker.errors
import httpx
from docker.models.containers import Container
from pydantic import Field

from harness import topology
from harness.errors import HarnessError
from harness.faults.attach import published
from harness.faults.base import Fault, Params, run_container
from harness.faults.wire import PROTOCOLS, WireCheck
from harness.view import StackView

ANSWER_WINDOW_S = 0.5  # a wire check with no whole answer in this long: the service stopped answering

READY_TIMEOUT_S = 90.0


def ready_now(container: Container, spec: topology.Service) -> bool:
    """One attempt of the service's readiness check on its current published port."""
    from harness.readiness import ready

    container.reload()
    endpoint = published(container, spec.port) if container.status == "running" else None
    if endpoint is None:
        return False
    try:
        return ready(spec, endpoint.host, endpoint.port)
    except Exception:  # any failure of the attempt means "not ready yet"
        return False


def wait_ready(container: Container, spec: topology.Service, timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready_now(container, spec):
        if time.monotonic() > deadline:
            raise HarnessError(f"{spec.name} did not answer within {timeout_s:.0f}s after healing: "
                               f"see `docker logs {container.name}`")
        time.sleep(0.2)


HALF_STOPPED_GRACE_S = 5.0  # a running service not answering for this long is restarted by a heal


def revive(container: Container, spec: topology.Service) -> None:
    """Back to running and answering, from whatever state a fault left it in. A container still
    running that does not answer is half-stopped by a signal it did not die of (Postgres given
    SIGTERM shuts down "smart": it refuses every new connection and waits for its clients, for
    ever while a pool holds them), so it is restarted."""
    container.reload()
    if container.status == "paused":
        container.unpause()
    elif container.status != "running":
        container.start()
    else:
        try:
            wait_ready(container, spec, HALF_STOPPED_GRACE_S)
            return
        except HarnessError:
            container.restart(timeout=0)
    wait_ready(container, spec)


class KillParams(Params):
    signal: Literal["SIGKILL", "SIGTERM", "SIGINT"] = "SIGKILL"


class PauseParams(Params):
    pass


class StopParams(Params):
    stop_timeout_s: int = Field(default=10, ge=0, le=120, description="grace before Docker kills it")


@dataclass(frozen=True)
class Action:
    """What a fault does to the container and the state that proves it landed."""

    apply: Callable[[Container, Any], None]
    state: str
    answers: bool = False  # landed also means the service answers again (a restart)


ACTIONS: dict[str, Action] = {
    "kill": Action(lambda c, p: c.kill(signal=p.signal), "exited"),
    "pause": Action(lambda c, p: c.pause(), "paused"),
    "stop": Action(lambda c, p: c.stop(timeout=p.stop_timeout_s), "exited"),
    "restart": Action(lambda c, p: c.restart(timeout=p.stop_timeout_s), "running", answers=True),
}


def _act(action: Action, container: Container, params: Any, failure: list[BaseException]) -> None:
    """The engine call, in a thread so the caller can watch the service meanwhile."""
    try:
        action.apply(container, params)
    except BaseException as exc:  # handed to the caller, which raises it
        failure.append(exc)


def service_check(container: Container, spec: topology.Service) -> WireCheck | None:
    """A first-byte wire check of the service's own protocol on its published port (None: none)."""
    endpoint = published(container, spec.port)
    if endpoint is None:
        return None
    return WireCheck(endpoint.host, endpoint.port, PROTOCOLS[spec.readiness], spec.name)


def answers(wire_check: WireCheck) -> bool:
    seen = wire_check.exchange(ANSWER_WINDOW_S)
    return seen.complete and seen.error is None


def stopped_answering(wire_check: WireCheck | None, worker: threading.Thread) -> float | None:
    """When the service stopped answering (the start of the wire check that got no whole answer),
    polling while the engine acts and once after; None when every wire check was answered."""
    if wire_check is None:
        return None
    while True:
        done = not worker.is_alive()
        began = time.time()
        if not answers(wire_check):
            return began
        if done:
            return None
        time.sleep(0.02)


class ProcessFault(Fault):
    family = "process"
    action: ClassVar[str]
    landing_timeout_s = 20.0

    @classmethod
    def targets_in(cls, system: topology.Topology) -> tuple[str, ...]:
        """Every service but Toxiproxy (with a capability, the services that declare it).
        Toxiproxy keeps its proxies in memory: restarting it is every edge down at once, which
        the network faults express better (and then the harness could no longer reach its own
        proxies)."""
        if cls.capability is not None:
            return super().targets_in(system)
        return tuple(name for name in system.services if name != topology.TOXIPROXY)

    @property
    def spec(self) -> topology.Service:
        return self.stack.topology.services[self.target]

    def _apply(self) -> None:
        container = self.stack.docker_container(self.target)
        self._booted_at = container.attrs["State"].get("StartedAt")
        wire_check = service_check(container, self.spec)
        failure: list[BaseException] = []
        worker = threading.Thread(target=_act, args=(ACTIONS[self.action], container, self.params, failure),
                                  name=f"chaos-{self.action}", daemon=True)
        worker.start()
        try:
            quiet_at = stopped_answering(wire_check, worker)
        except BaseException:  # Ctrl-C while the engine works: the container comes back
            worker.join()
            self._undo()
            raise
        worker.join()
        if failure:
            raise HarnessError(f"the engine refused to {self.action} {self.target}: {failure[0]}") from None
        self.evidence = {"stopped_answering": quiet_at is not None}
        self.started_at = quiet_at or self.started_at  # a restart too quick to see: when it was asked

    def _landed(self) -> bool:
        action = ACTIONS[self.action]
        container = self.stack.docker_container(self.target)
        container.reload()
        if container.status != action.state:
            return False
        if not action.answers:
            return True
        if container.attrs["State"].get("StartedAt") == self._booted_at:
            return False  # not restarted yet
        self.stack.refresh(self.target)
        return ready_now(container, self.spec)

    def _undo(self) -> None:
        super()._undo()
        self.stack.refresh(self.target)

    def undo_state(self) -> dict[str, Any]:
        return {"service": self.target}

    @classmethod
    def undo_from(cls, state: dict[str, Any], stack: StackView) -> None:
        """Brings the run's own container of the service back (found by the run's label, not by
        a recorded id that could be another run's by now)."""
        try:
            container = run_container(stack, state["service"])
        except docker.errors.NotFound:
            return  # the container is gone, and the fault with it
        revive(container, stack.topology.services[state["service"]])


class Kill(ProcessFault):
    name = "process.kill"
    proves = ("the service's own protocol stops answering on its port (the window opens then) and the engine reports "
              "it exited")
    action = "kill"
    description = "kills a service's container (SIGKILL by default); heal starts it and waits until it answers"
    Params = KillParams


class Pause(ProcessFault):
    name = "process.pause"
    proves = ("the service's own protocol stops answering on its port (the window opens then) and the engine reports "
              "it paused")
    action = "pause"
    description = "freezes a service's container (docker pause): connections hang, nothing answers"
    Params = PauseParams


class Restart(ProcessFault):
    name = "process.restart"
    proves = "the service stops answering (the window opens then), then runs anew and answers its readiness check again"
    action = "restart"
    description = "restarts a service's container; lands when it answers again"
    Params = StopParams
    landing_timeout_s = READY_TIMEOUT_S


class Outage(ProcessFault):
    """A dependency stopped (gracefully, then killed after stop_timeout_s) until healed."""

    proves = ("the service's own protocol stops answering on its port (the window opens then) and the engine reports "
              "it exited")
    action = "stop"
    Params = StopParams
    landing_timeout_s = 30.0


class BrokerOutage(Outage):
    name = "process.broker_outage"
    capability = "broker"
    description = "stops the message broker; heal starts it and waits until it answers its protocol"


class DbOutage(Outage):
    name = "process.db_outage"
    capability = "database"
    description = "stops the database; heal starts it and waits until it answers its protocol"


WEDGE = "/_control/wedge"


def _wedge(stack: StackView, service: str, method: str) -> dict[str, Any]:
    """One call of the service's wedge control endpoint; its state ({armed, held, waiting})."""
    try:
        answer = httpx.request(method, f"{stack.endpoint(service).url}{WEDGE}", timeout=5,
                               headers=topology.control_headers(stack.control_secret))
        answer.raise_for_status()
        state: dict[str, Any] = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise HarnessError(f"the wedge control of {service} did not answer {method}: {exc}") from None
    return state


def wedge_state(stack: StackView, service: str) -> dict[str, Any]:
    """What the service's wedge holds now: armed, and how many handlers hang in it (held, after
    their effect) or wait for it (waiting, nothing done): how a scenario sees the wedge bite."""
    return _wedge(stack, service, "GET")


class WedgeParams(Params):
    pass


class ConsumerWedge(Fault):
    """The service's message consumer hangs after the next message's effect, before its ack, and
    every later message waits behind it; the HTTP API answers on. The wedge is in the process's
    memory: a restart of the service clears it (the manual's first response), and heal releases
    it in the process that has it (nothing to do in a restarted one)."""

    name = "process.consumer_wedge"
    family = "process"
    description = "wedges a service's message consumer: the next message is applied and never acked"
    proves = "the service's wedge control reports the consumer armed to hang"
    capability = "consumer_wedge"
    Params = WedgeParams

    def _apply(self) -> None:
        _wedge(self.stack, self.target, "POST")

    def _landed(self) -> bool:
        return bool(wedge_state(self.stack, self.target).get("armed"))

    def undo_state(self) -> dict[str, Any]:
        return {"service": self.target}

    @classmethod
    def undo_from(cls, state: dict[str, Any], stack: StackView) -> None:
        """Releases the wedge of the run's own service (a stopped or gone one has no wedge left)."""
        try:
            container = run_container(stack, state["service"])
        except docker.errors.NotFound:
            return
        if container.status != "running":
            return
        _wedge(stack, state["service"], "DELETE")


@dataclass(frozen=True)
class RecoveryAction:
    """An operator's action to restore service, as the report records it (schema RecoveryAction)."""

    what: str
    target: str
    when: float  # epoch seconds: when it was asked for
    outcome: str  # "restored" once the service answers again, else what went wrong

    def record(self) -> dict[str, Any]:
        return {"what": self.what, "target": self.target, "when": self.when, "outcome": self.outcome}


def restart_service(stack: StackView, service: str, stop_timeout_s: int = 10,
                    timeout_s: float = READY_TIMEOUT_S) -> RecoveryAction:
    """Restarts the run's own container of a service (graceful stop, then start) and returns once
    it answers its readiness check again, on its published port (which the restart may move).
    The manual's "restart the affected instance": what a wedged process needs, and what a game
    day may do by hand. The outcome says whether the service answered in time; an engine that
    refuses is a HarnessError (nothing was done)."""
    if service not in stack.topology.services or service == topology.TOXIPROXY:
        raise HarnessError(f"can't restart {service!r}: choose one of "
                           f"{', '.join(n for n in stack.topology.services if n != topology.TOXIPROXY)}")
    container = run_container(stack, service)
    asked = time.time()
    try:
        container.restart(timeout=stop_timeout_s)
    except docker.errors.APIError as exc:
        raise HarnessError(f"the engine refused to restart {service}: {exc}") from None
    stack.refresh(service)
    try:
        wait_ready(container, stack.topology.services[service], timeout_s)
    except HarnessError as exc:
        return RecoveryAction("restart", service, asked, f"not answering: {exc}")
    stack.refresh(service)
    return RecoveryAction("restart", service, asked, "restored")


FAULTS: tuple[type[Fault], ...] = (Kill, Pause, Restart, BrokerOutage, DbOutage, ConsumerWedge)
