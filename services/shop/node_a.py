"""node-A's data volume (a size-limited volume at DATA_DIR): receipts are written there, and a
disk monitor watches it (the disk_monitor protection).

The manual's root cause 5: the disk of node-A fills up and writes start failing everywhere.
Prescribed: alert before it is full (>= 90 %), shed writes cleanly instead of failing half-way,
keep serving reads, and say so again when space is back (the monitoring guide: alert on recovery too).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from shop.logs import DISK_LOW
from shop.protections import on

DATA_DIR = Path(os.environ.get("DATA_DIR", "/tmp/shop-data"))
THRESHOLD = float(os.environ.get("DISK_ALERT_PERCENT", "90"))
INTERVAL_S = 0.25


def used_percent(path: Path = DATA_DIR) -> float:
    stat = os.statvfs(path)
    total = stat.f_blocks * stat.f_frsize
    free = stat.f_bavail * stat.f_frsize
    return 100.0 * (total - free) / total if total else 0.0


def _receipt(order_id: str) -> Path:
    return DATA_DIR / "receipts" / f"{order_id}.json"


def write_receipt(order_id: str, body: dict) -> None:
    """A write to node-A; raises OSError (ENOSPC) when the disk is full."""
    path = _receipt(order_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body))


def read_receipt(order_id: str) -> dict | None:
    """A receipt back from node-A's volume (None when there is none): a read needs no free
    space, so it must keep working while the disk is full."""
    try:
        return json.loads(_receipt(order_id).read_text())
    except FileNotFoundError:
        return None


class DiskMonitor:
    """Flips `critical` at the threshold, with one alert on the way up and one on the way down."""

    def __init__(self, log, alert: Callable[[str, str, str, str], Awaitable[bool]]) -> None:
        self.log, self.alert = log, alert
        self.critical = False
        self.percent = 0.0

    async def run(self) -> None:
        while True:
            if not on("disk_monitor"):  # nobody watches: the disk is never seen critical
                self.critical = False
                await asyncio.sleep(INTERVAL_S)
                continue
            try:
                self.percent = await asyncio.to_thread(used_percent)
            except OSError as exc:
                self.log.error("disk_monitor_error", error=repr(exc))
            else:
                await self._observe(self.percent)
            await asyncio.sleep(INTERVAL_S)

    async def _observe(self, percent: float) -> None:
        if percent >= THRESHOLD and not self.critical:
            self.critical = True
            self.log.critical(DISK_LOW, node="node-A", used_percent=round(percent, 1), threshold=THRESHOLD)
            await self.alert("firing", f"Disk space is critically low on server node-A ({percent:.0f}% used)",
                             f"{DATA_DIR} is {percent:.0f}% full (threshold {THRESHOLD:.0f}%)",
                             "writes are shed with 503; delete temporary files and old logs on node-A (df -h)")
        elif percent < THRESHOLD and self.critical:
            self.critical = False
            self.log.warning("disk_recovered", node="node-A", used_percent=round(percent, 1))
            if on("recovery_alerts"):
                await self.alert("resolved", f"Disk space on node-A is back to {percent:.0f}% used",
                                 "space was freed", "writes are accepted again")
