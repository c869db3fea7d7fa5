"""What the clinic domain does when a clinic is created: its profile, from the request."""

from __future__ import annotations

import uuid

from sqlalchemy import insert

from polyclinic.clinic.models import ClinicProfile
from polyclinic.db.base import utcnow
from polyclinic.tenancy.lifecycle import ClinicCreation


async def create_profile(creation: ClinicCreation) -> None:
    now = utcnow()
    await creation.schema.execute(
        insert(ClinicProfile).values(
            id=uuid.uuid4(),
            name=creation.request.name,
            timezone=creation.request.timezone,
            created_at=now,
            updated_at=now,
        )
    )
