"""A stuck consumer, on demand: the wedge the harness's `process.consumer_wedge` arms.

The incident it stands for: a consumer whose handler blocks in a call that never returns (a
socket without a timeout, a lock never released) after the message's effect is committed and
before its ack. The HTTP API and the health report go on answering (the consumer is still
subscribed), but nothing more is processed: the broker has handed the consumer its prefetch and
waits for acks that never come. Only a restart frees it: the process goes, its connection with
it, and the broker redelivers every unacked message to the new consumer, the one whose effect
already happened included (dedup makes that redelivery change nothing).

Armed, the next message's handler takes the consumer's one lane and hangs in it after the
effect; every later message waits for the lane before doing anything. The wedge lives in the
process's memory, as the real one would: a restart clears it. DELETE releases it without a
restart (the fault's heal, so a run never leaves a service stuck).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends

from shop.switchboard import require_control


class Wedge:
    """Whether the consumer is to hang, and how many handlers are stuck in it now."""

    def __init__(self) -> None:
        self.armed = False
        self.held = 0  # handlers hung after their effect, holding the lane
        self.waiting = 0  # handlers waiting for the lane, nothing done yet
        self._lane = asyncio.Lock()
        self._released = asyncio.Event()

    def describe(self) -> dict[str, object]:
        return {"armed": self.armed, "held": self.held, "waiting": self.waiting}

    def arm(self) -> None:
        self.armed = True
        self._released.clear()

    def release(self) -> None:
        self.armed = False
        self._released.set()

    @contextlib.asynccontextmanager
    async def lane(self) -> AsyncIterator[None]:
        """Around one message's handling: while armed, one handler at a time (the stuck one
        keeps the others out); disarmed, nothing."""
        if not self.armed:
            yield
            return
        self.waiting += 1
        try:
            await self._lane.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._lane.release()

    async def hang(self) -> None:
        """Where the handler blocks, after the effect and before the ack, until released."""
        if not self.armed:
            return
        self.held += 1
        try:
            await self._released.wait()
        finally:
            self.held -= 1


wedge = Wedge()
router = APIRouter(dependencies=[Depends(require_control)])


@router.get("/_control/wedge")
async def get_wedge() -> dict[str, object]:
    return wedge.describe()


@router.post("/_control/wedge")
async def arm_wedge() -> dict[str, object]:
    wedge.arm()
    return wedge.describe()


@router.delete("/_control/wedge")
async def release_wedge() -> dict[str, object]:
    wedge.release()
    return wedge.describe()
