"""The auth event trail: written in the same transaction as the change it records."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.identity.trail.models import AuthEvent
from polyclinic.web.caller import Caller


def record(
    session: AsyncSession,
    caller: Caller,
    event: str,
    *,
    user_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
    email: str | None = None,
    **detail: Any,
) -> None:
    session.add(
        AuthEvent(
            event=event,
            user_id=user_id,
            actor_id=actor_id if actor_id is not None else user_id,
            email=email,
            ip=caller.ip,
            request_id=caller.request_id,
            detail=detail or None,
        )
    )
