"""Config faults (the RabbitMQ-configuration incident): deploy a service with a variable missing or wrong.

A replica of the target is started next to the running one, from the same image, command and
network, with the environment altered: exactly what a bad deployment does, without taking the
healthy instance away. The scenario then watches what the replica does (refuse to start, naming
the variable; or run silently on defaults). Heal removes the replica. The replica is deployed as
the running service stands now: with the protections that are switched off in it at run time
(SUT_DISABLE), so a matrix cell without config_validation deploys a replica without it too.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

import docker.errors
from pydantic import Field

from harness import protections
from harness.faults.base import REPLICA_LABEL, Fault, Params, check_run
from harness.stack import container_env
from harness.view import StackView

BROKER_VARIABLES = Literal["RABBITMQ_HOST", "RABBITMQ_PORT", "RABBITMQ_USER", "RABBITMQ_PASS"]


class MissingParams(Params):
    variable: BROKER_VARIABLES = "RABBITMQ_HOST"


class WrongParams(MissingParams):
    value: str = Field(default="not-a-broker", max_length=256)


class Replica(Fault):
    """Base: starts the altered replica; `alter(env)` says how."""

    family = "config"
    capability = "config"  # reads the broker's address from RABBITMQ_* and may validate it at start
    proves = "the engine shows the altered replica running or already exited"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.replica: Any = None

    def alter(self, env: dict[str, str]) -> dict[str, str]:
        raise NotImplementedError

    def _apply(self) -> None:
        original = self.stack.docker_container(self.target)
        env = container_env(original)
        off = protections.disabled_now(self.stack).get(self.target)
        if off is not None:  # the service as it runs now, switches included
            env = {k: v for k, v in env.items() if k != "SUT_DISABLE"} | ({"SUT_DISABLE": ",".join(off)} if off else {})
        labels = dict(original.labels) | {REPLICA_LABEL: self.target}
        network = next(iter(original.attrs["NetworkSettings"]["Networks"]))
        self.replica = self.stack.client.containers.run(
            original.image.id, original.attrs["Config"]["Cmd"], environment=self.alter(env), detach=True,
            labels=labels, network=network, name=f"{original.name}-replica-{uuid.uuid4().hex[:6]}")

    def _landed(self) -> bool:
        self.replica.reload()
        return self.replica.status in ("running", "exited")

    def outcome(self, settle_s: float = 10.0) -> tuple[str, int | None, str]:
        """(status, exit code, output) of the replica once it has exited or run for settle_s."""
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:
            self.replica.reload()
            if self.replica.status == "exited":
                break
            time.sleep(0.2)
        code = self.replica.attrs["State"]["ExitCode"] if self.replica.status == "exited" else None
        return self.replica.status, code, self.replica.logs().decode(errors="replace")

    def undo_state(self) -> dict[str, Any]:
        return {"container_id": self.replica.id} if self.replica is not None else {}

    @classmethod
    def undo_from(cls, state: dict[str, Any], stack: StackView) -> None:
        """Removes the replica the fault made (kept by id: it is the fault's own container), once
        its run label shows it is of this run (an id alone could name another run's container)."""
        if not state:
            return
        try:
            replica = stack.client.containers.get(state["container_id"])
        except docker.errors.NotFound:
            return  # removed already (healed twice, or with its run)
        check_run(replica, stack.run_id).remove(force=True, v=True)


class MissingEnv(Replica):
    name = "config.missing_env"
    description = "deploy a replica of the service with one RABBITMQ_* variable unset"
    Params = MissingParams
    params: MissingParams

    def alter(self, env: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in env.items() if k != self.params.variable}


class WrongValue(Replica):
    name = "config.wrong_value"
    description = "deploy a replica of the service with one RABBITMQ_* variable set to a wrong value"
    Params = WrongParams
    params: WrongParams

    def alter(self, env: dict[str, str]) -> dict[str, str]:
        return env | {self.params.variable: self.params.value}


FAULTS = (MissingEnv, WrongValue)
