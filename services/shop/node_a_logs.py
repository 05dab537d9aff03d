"""node-A's logs on its data volume (DATA_DIR/logs), and the control endpoint of the log flood.

The manual's root cause 5 names "ログファイルの肥大化" (logs growing) first among what fills
node-A's disk, and its permanent fix 5 is log rotation (shop.log_rotation, the log_rotation
protection). The disk.log_flood fault asks the gateway, through /_control/log_flood, to write
one log of its own fast (bounded rate and total) into a file named after the fault's id, so
the fault's heal stops it and deletes exactly that file and its rotated copies.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from shop.log_rotation import Flood, NodeLog
from shop.node_a import DATA_DIR
from shop.protections import on
from shop.switchboard import require_control

LOG_DIR = DATA_DIR / "logs"
FLOOD_ID = re.compile(r"[0-9a-f]{8,32}")  # the fault's own id: a file name, never a path
MAX_FLOODS = 4

floods: dict[str, Flood] = {}
router = APIRouter(dependencies=[Depends(require_control)])


class FloodIn(BaseModel):
    id: str = Field(pattern=FLOOD_ID.pattern)
    rate_bytes_s: int = Field(gt=0, le=64 * 1024 * 1024)
    total_bytes: int = Field(gt=0, le=1024 * 1024 * 1024)


def flood_path(flood_id: str) -> Path:
    """Where a flood writes; the fault deletes this file and its rotated copies on heal."""
    return LOG_DIR / f"chaos-flood-{flood_id}.log"


def _flood(flood_id: str) -> Flood:
    if flood_id not in floods:
        raise HTTPException(404, f"no log flood {flood_id}")
    return floods[flood_id]


@router.post("/_control/log_flood", status_code=201)
async def start_flood(body: FloodIn) -> dict[str, object]:
    if body.id in floods:
        raise HTTPException(409, f"log flood {body.id} exists")
    if len(floods) >= MAX_FLOODS:
        raise HTTPException(409, f"{MAX_FLOODS} log floods at once already: stop one first")
    handler = NodeLog(flood_path(body.id), rotating=lambda: on("log_rotation"))
    floods[body.id] = Flood(body.id, handler, body.rate_bytes_s, body.total_bytes).start()
    return floods[body.id].describe()


@router.get("/_control/log_flood/{flood_id}")
async def get_flood(flood_id: str) -> dict[str, object]:
    return _flood(flood_id).describe()


@router.delete("/_control/log_flood/{flood_id}")
async def stop_flood(flood_id: str) -> dict[str, object]:
    """Stops a flood and closes its file (harmless for one that is gone: a heal is idempotent).
    Its files stay: the fault deletes them, from outside."""
    flood = floods.pop(flood_id, None)
    if flood is None:
        return {"id": flood_id, "stopped": False}
    await asyncio.to_thread(flood.stop)  # joins the writer thread: not on the event loop
    return flood.describe() | {"stopped": True}


def stop_all() -> None:
    """At shutdown: no flood thread outlives the service's loop."""
    for flood_id in list(floods):
        floods.pop(flood_id).stop()
