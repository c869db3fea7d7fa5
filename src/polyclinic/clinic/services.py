"""The clinic's profile, read inside the clinic's own session."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.clinic.models import ClinicProfile
from polyclinic.errors import NotFound


class ClinicProfiles:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self) -> ClinicProfile:
        query = select(ClinicProfile).order_by(ClinicProfile.created_at).limit(1)
        profile = (await self.session.execute(query)).scalar_one_or_none()
        if profile is None:
            raise NotFound("This clinic has no profile yet")
        return profile

    async def update(self, values: dict[str, object]) -> ClinicProfile:
        profile = await self.get()
        for name, value in values.items():
            setattr(profile, name, value)
        await self.session.commit()
        return profile
