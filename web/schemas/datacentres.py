"""Data centres (sites): where pools are routed and probe workers run."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from .common import In, ShortText, Text


class DataCentreIn(In):
    name: ShortText
    description: Text = ""


class PlaceIn(In):
    site: ShortText  # a data centre's name; "default" or "": the parent pool's


class DataCentreOut(BaseModel):
    name: str
    description: str = ""
    pools: list[str] = []  # prefixes placed there directly
    live_workers: list[str] = []
    waiting: int = 0  # probe runs queued for it
    oldest_waiting: datetime | None = None
    why_waiting: str = ""  # "never": no worker ever served it; "silent": its workers stopped


class PoolSiteOut(BaseModel):
    id: int
    prefix: str
    site: str
