"""Disk faults on node-A: fill its size-limited data volume with `fallocate` through `docker exec`.

The manual's root cause 5. Heal deletes exactly the file the fault wrote (its name carries the
fault's own id), so a heal never touches the service's real data.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field, model_validator

from harness.errors import HarnessError
from harness.faults.base import Fault, Params, run_container
from harness.view import StackView

# Where the data volume was before records named their service: the shop's node-A.
UNNAMED_SERVICE = "api_gateway"


class FillParams(Params):
    percent: float | None = Field(default=97.0, gt=0, le=100, description="fill the volume to this share")
    bytes: int | None = Field(default=None, gt=0, description="or write exactly this many bytes")

    @model_validator(mode="after")
    def one_of(self) -> "FillParams":
        if self.bytes is not None:
            self.percent = None
        return self


def _usage(container: Any, mount: str) -> tuple[int, int]:
    """(size, used) of the volume in bytes, as df inside node-A reports them."""
    result = container.exec_run(["df", "--output=size,used", "-B1", mount])
    if result.exit_code != 0:
        raise HarnessError(f"df failed on node-A: {result.output.decode(errors='replace').strip()}")
    size, used = result.output.decode().split()[-2:]
    return int(size), int(used)


class DiskFill(Fault):
    """node-A's data volume fills up (the service's own writes start failing)."""

    name = "disk.fill"
    family = "disk"
    proves = "df inside node-A shows its data volume filled to the goal"
    description = "fill node-A's data volume to a percent (or by a number of bytes); heal deletes the fill file"
    capability = "disk"  # a size-limited data volume at `mount`, with df and fallocate in the image
    Params = FillParams
    params: FillParams
    mount = "/data"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.path = f"{self.mount}/.chaos-fill-{uuid.uuid4().hex[:8]}"
        self.goal_percent = 0.0

    def _container(self) -> Any:
        return self.stack.docker_container(self.target)

    def _apply(self) -> None:
        container = self._container()
        size, used = _usage(container, self.mount)
        if self.params.bytes is not None:
            wanted = self.params.bytes
        else:
            assert self.params.percent is not None  # FillParams.one_of: percent is set whenever bytes is not
            wanted = max(0, int(size * self.params.percent / 100) - used)
        self.goal_percent = 100.0 * min(size, used + wanted) / size
        result = container.exec_run(["fallocate", "-l", str(max(wanted, 1)), self.path])
        if result.exit_code != 0:
            raise HarnessError(f"could not fill node-A: {result.output.decode(errors='replace').strip()}")

    def _landed(self) -> bool:
        size, used = _usage(self._container(), self.mount)
        return 100.0 * used / size >= self.goal_percent - 1.0

    def undo_state(self) -> dict[str, Any]:
        return {"service": self.target, "path": self.path}

    @classmethod
    def undo_from(cls, state: dict[str, Any], stack: StackView) -> None:
        """Deletes the fill file in the run's own node-A (a recorded container id could be
        another run's by now). A stopped node-A keeps the file on its volume: that heal fails."""
        if not state:
            return
        if not str(state["path"]).startswith(f"{cls.mount}/.chaos-fill-"):
            raise HarnessError(f"refused to delete {state['path']}: not a fill file of {cls.name}")
        container = run_container(stack, state.get("service", UNNAMED_SERVICE))  # records from before they named it
        if container.status != "running":
            raise HarnessError(f"node-A ({container.name}) is {container.status}: its fill file stays on its "
                               "volume until it runs again and the fault is healed")
        result = container.exec_run(["rm", "-f", state["path"]])
        if result.exit_code != 0:
            raise HarnessError(f"could not delete the fill file on node-A: "
                               f"{result.output.decode(errors='replace').strip()}")


FAULTS = (DiskFill,)
