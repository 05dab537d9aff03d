"""The protections' control endpoint, mounted by every service that holds one: the harness
turns protections off and on at run time through it, so a mutation matrix needs no restart.
And the gate of every control endpoint of the shop (require_control): the run's control
secret (shop.control), or 401/403."""

from __future__ import annotations

import os

from fastapi import APIRouter, Depends, Header, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from shop.control import CONTROL_SECRET_ENV, HEADER, verdict
from shop.protections import describe, switches


def require_control(x_chaos_control: str | None = Header(default=None)) -> None:
    """FastAPI dependency of every control endpoint (the parameter is shop.control.HEADER's name)."""
    status = verdict(x_chaos_control, os.environ.get(CONTROL_SECRET_ENV, ""))
    if status is not None:
        raise HTTPException(status, f"control endpoint: send the run's control secret in {HEADER}")


class SwitchesIn(BaseModel):
    disabled: list[str]


router = APIRouter(dependencies=[Depends(require_control)])


@router.get("/_control/protections")
async def get_protections() -> dict[str, object]:
    return describe()


@router.put("/_control/protections")
async def put_protections(body: SwitchesIn) -> JSONResponse:
    """Sets the protections that are off, all at once (an empty list turns every one back on)."""
    try:
        switches.set(body.disabled)
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)
    return JSONResponse(describe())
