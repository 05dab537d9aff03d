"""Disk faults on node-A: fill its size-limited data volume with `fallocate` through `docker exec`
(disk.fill), or make its logs grow fast (disk.log_flood: the service writes a log of its own at a
bounded rate up to a bounded total, through its log handler, so its log rotation is what is tested).

The manual's root cause 5. Heal deletes exactly the files the fault wrote (their names carry the
fault's own id), so a heal never touches the service's real data.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from pydantic import Field, model_validator

from harness import topology
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


MIB = 1024 * 1024
FLOOD_CONTROL = "/_control/log_flood"
LOG_DIR = "/data/logs"
FLOOD_ID = re.compile(r"[0-9a-f]{8,32}")


class FloodParams(Params):
    total_mib: float = Field(default=16.0, gt=0, le=1024, description="what the log grows by in all, in MiB")
    rate_mib_s: float = Field(default=4.0, gt=0, le=64, description="how fast it is written, in MiB per second")


def _flood_files(container: Any, flood_id: str) -> list[str]:
    """The flood's log and its rotated copies on node-A's volume, as `find` inside it lists them."""
    result = container.exec_run(["find", LOG_DIR, "-maxdepth", "1", "-name", f"chaos-flood-{flood_id}.log*"])
    if result.exit_code not in (0, 1):  # 1: no logs directory yet
        raise HarnessError(f"find failed on node-A: {result.output.decode(errors='replace').strip()}")
    return sorted(line for line in result.output.decode(errors="replace").splitlines() if line.startswith(LOG_DIR))


def _control(method: str, url: str, secret: str, **kwargs: Any) -> httpx.Response:
    try:
        return httpx.request(method, url, headers=topology.control_headers(secret), timeout=10, **kwargs)
    except httpx.HTTPError as exc:
        raise HarnessError(f"node-A's log flood control at {url} did not answer: {exc}") from None


class LogFlood(Fault):
    """node-A's logs grow fast: the service writes a chatty log at a bounded rate up to a bounded
    total (the manual's "ログファイルの肥大化"). With its log rotation on, the disk never fills."""

    name = "disk.log_flood"
    family = "disk"
    proves = "node-A's volume holds the flood's log file, written by the service itself"
    description = ("node-A writes a log of total_mib at rate_mib_s through its own log handler; heal stops it "
                   "and deletes the flood's log and its rotated copies")
    capability = "node_logs"  # the service's log flood control endpoint, its logs under /data/logs
    Params = FloodParams
    params: FloodParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.flood_id = uuid.uuid4().hex[:12]

    def _url(self) -> str:
        return f"{self.stack.endpoint(self.target).url}{FLOOD_CONTROL}"

    def _apply(self) -> None:
        spec = {"id": self.flood_id, "rate_bytes_s": int(self.params.rate_mib_s * MIB),
                "total_bytes": int(self.params.total_mib * MIB)}
        answer = _control("POST", self._url(), self.stack.control_secret, json=spec)
        if answer.status_code != 201:
            raise HarnessError(f"node-A refused the log flood: {answer.status_code} {answer.text[:200]}")

    def _landed(self) -> bool:
        return bool(_flood_files(self._container(), self.flood_id))

    def _container(self) -> Any:
        return run_container(self.stack, self.target)

    def progress(self) -> dict[str, Any]:
        """What the service says of the flood: bytes written, done, write errors (a full disk)."""
        answer = _control("GET", f"{self._url()}/{self.flood_id}", self.stack.control_secret)
        if answer.status_code != 200:
            raise HarnessError(f"node-A does not know the log flood {self.flood_id}: {answer.status_code}")
        return dict(answer.json())

    def files(self) -> list[str]:
        """The flood's log and its rotated copies, read from node-A's volume now."""
        return _flood_files(self._container(), self.flood_id)

    def _healed(self) -> bool:
        return not self.files()

    def undo_state(self) -> dict[str, Any]:
        return {"service": self.target, "flood": self.flood_id}

    @classmethod
    def undo_from(cls, state: dict[str, Any], stack: StackView) -> None:
        """Stops the flood in the run's own node-A and deletes its files. A stopped node-A keeps
        them on its volume: that heal fails, as disk.fill's does."""
        if not state:
            return
        flood_id = str(state["flood"])
        if not FLOOD_ID.fullmatch(flood_id):
            raise HarnessError(f"refused to delete the log flood {flood_id!r}: not an id of {cls.name}")
        service = state["service"]
        container = run_container(stack, service)
        if container.status != "running":
            raise HarnessError(f"node-A ({container.name}) is {container.status}: the log flood's files stay on its "
                               "volume until it runs again and the fault is healed")
        url = f"{stack.endpoint(service).url}{FLOOD_CONTROL}/{flood_id}"
        answer = _control("DELETE", url, stack.control_secret)
        if answer.status_code != 200:
            raise HarnessError(f"node-A did not stop the log flood {flood_id}: "
                               f"{answer.status_code} {answer.text[:200]}")
        result = container.exec_run(["find", LOG_DIR, "-maxdepth", "1", "-name", f"chaos-flood-{flood_id}.log*",
                                     "-delete"])
        if result.exit_code not in (0, 1):
            raise HarnessError(f"could not delete the log flood's files on node-A: "
                               f"{result.output.decode(errors='replace').strip()}")


FAULTS = (DiskFill, LogFlood)
