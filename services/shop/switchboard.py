"""The protections' control endpoint, mounted by every service that holds one: the harness
turns protections off and on at run time through it, so a mutation matrix needs no restart."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from shop.protections import describe, switches


class SwitchesIn(BaseModel):
    disabled: list[str]


router = APIRouter()


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
