"""A job handed off by a request (202 Accepted): what the caller polls."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class JobOut(BaseModel):
    id: int
    job: str
    status: str  # queued | running | done | failed
    accepted_at: datetime
    finished_at: datetime | None = None
    summary: dict[str, Any] | None = None
    error: str | None = None  # in the caller's language
    poll: str  # GET this until the status is done or failed
