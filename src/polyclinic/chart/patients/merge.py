"""Merging two records of one person: the duplicate's rows move to the survivor.

`FOLLOW_SURVIVOR` lists every column that holds a patient and so moves with a merge. A part
of the chart with its own patient column adds it there with `follow_survivor(...)` at import
of its models (a test fails for a `patient_id` column that is in neither list). Columns that
record history (who booked, who was sent a message, the audit trail) stay as they are:
`KEPT_ON_MERGE` names the patient columns that deliberately do not move.

The duplicate is kept: inactive, no longer listed, its profile pointing at the survivor, its
email (which must stay unique) moved to the survivor when that has none, else kept in the
merge's row. The survivor's blanks (phone, date of birth, language, sex, and each of address,
emergency contact and insurance as a whole) are filled from the duplicate.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Column, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.chart.audit.services import Action
from polyclinic.chart.audit.trail import AuditTrail
from polyclinic.chart.patients.models import PatientMerge, PatientProfile
from polyclinic.chart.patients.services import BLOCKS, RESOURCE, Patient
from polyclinic.db.base import utcnow
from polyclinic.errors import Conflict, FieldError, NotFound
from polyclinic.identity.accounts.models import User, UserToken
from polyclinic.identity.permissions.guards import Principal
from polyclinic.identity.permissions.roles import Role
from polyclinic.scheduling.appointments.models import Appointment

FOLLOW_SURVIVOR: list[Column[Any]] = [Appointment.__table__.c.patient_id]

# Patient columns that stay with the duplicate: the profile itself, the merge log, and the
# history of who accessed which record (the audit trail is append-only).
KEPT_ON_MERGE = {
    "patient_profiles.user_id",
    "patient_merges.duplicate_id",
    "audit_entries.patient_id",
    "emergency_grants.patient_id",
}

# Filled on the survivor from the duplicate when the survivor has none.
USER_BLANKS = ("phone", "date_of_birth", "locale")


def follow_survivor(*columns: Column[Any]) -> None:
    """Columns (of another part of the chart) that move to the survivor in a merge."""
    for column in columns:
        if column not in FOLLOW_SURVIVOR:
            FOLLOW_SURVIVOR.append(column)


def _duplicate_refused(message: str) -> Conflict:
    return Conflict(message, [FieldError("duplicateId", message)])


class PatientMerger:
    def __init__(self, session: AsyncSession, audit: AuditTrail) -> None:
        self.db = session
        self.audit = audit

    async def merge(
        self, survivor_id: uuid.UUID, duplicate_id: uuid.UUID, principal: Principal
    ) -> Patient:
        if survivor_id == duplicate_id:
            raise _duplicate_refused("A record cannot be merged with itself")
        users = await self._lock_users(survivor_id, duplicate_id)
        survivor, duplicate = users.get(survivor_id), users.get(duplicate_id)
        if survivor is None or survivor.role != Role.PATIENT:
            raise NotFound("No such patient")
        if duplicate is None:
            raise NotFound("No such patient to merge", [FieldError("duplicateId", "not found")])
        if duplicate.role != Role.PATIENT:
            raise _duplicate_refused("Only a patient's record can be merged into a patient's")
        profiles = await self._lock_profiles(survivor, duplicate)
        kept, gone = profiles[survivor.id], profiles[duplicate.id]
        for profile in (kept, gone):
            if profile.merged_into_id is not None:
                raise _duplicate_refused(
                    f"Patient {profile.user_id} was already merged into {profile.merged_into_id}"
                )
        if duplicate.password_hash is not None:
            if survivor.password_hash is not None:
                raise _duplicate_refused(
                    "Both records have an account of their own, with different emails: they "
                    "cannot be merged"
                )
            raise _duplicate_refused(
                "The duplicate has the patient's account: merge the other way round, this "
                "record into that one, so the patient keeps signing in as before"
            )

        moved: dict[str, int] = {}
        for column in FOLLOW_SURVIVOR:
            result = await self.db.execute(
                update(column.table).where(column == duplicate.id).values({column.key: survivor.id})
            )
            moved[f"{column.table.name}.{column.key}"] = result.rowcount  # type: ignore[attr-defined]
        # Records merged into the duplicate earlier now point at the survivor: one hop.
        await self.db.execute(
            update(PatientProfile)
            .where(PatientProfile.merged_into_id == duplicate.id)
            .values(merged_into_id=survivor.id)
        )
        self._fill_blanks(survivor, kept, duplicate, gone)
        duplicate_email = await self._release_email(survivor, duplicate)
        # Unused links (a claim of the duplicate) stop working.
        await self.db.execute(
            update(UserToken)
            .where(UserToken.user_id == duplicate.id, UserToken.used_at.is_(None))
            .values(used_at=utcnow())
        )
        duplicate.is_active = False
        now = utcnow()
        gone.merged_into_id, gone.merged_at = survivor.id, now
        merge = PatientMerge(
            id=uuid.uuid4(),
            survivor_id=survivor.id,
            duplicate_id=duplicate.id,
            merged_by=principal.user_id,
            duplicate_email=duplicate_email,
            moved=moved,
            merged_at=now,
        )
        self.db.add(merge)
        await self.db.flush()
        for patient_id in (survivor.id, duplicate.id):
            await self.audit.record(Action.UPDATE, RESOURCE, patient_id, resource_id=merge.id)
        await self.db.commit()
        return Patient(survivor, kept)

    async def _lock_users(self, *ids: uuid.UUID) -> dict[uuid.UUID, User]:
        # In id order, so two merges of the same pair cannot deadlock.
        rows = await self.db.execute(
            select(User).where(User.id.in_(ids)).order_by(User.id).with_for_update()
        )
        return {u.id: u for u in rows.scalars()}

    async def _lock_profiles(self, *users: User) -> dict[uuid.UUID, PatientProfile]:
        rows = await self.db.execute(
            select(PatientProfile)
            .where(PatientProfile.user_id.in_([u.id for u in users]))
            .order_by(PatientProfile.user_id)
            .with_for_update()
        )
        profiles = {p.user_id: p for p in rows.scalars()}
        for user in users:
            if user.id not in profiles:
                profiles[user.id] = PatientProfile(user_id=user.id)
                self.db.add(profiles[user.id])
        return profiles

    @staticmethod
    def _fill_blanks(
        survivor: User, kept: PatientProfile, duplicate: User, gone: PatientProfile
    ) -> None:
        for field in USER_BLANKS:
            if getattr(survivor, field) is None:
                setattr(survivor, field, getattr(duplicate, field))
        if kept.sex is None:
            kept.sex = gone.sex
        for _, columns, _ in BLOCKS.values():
            if all(getattr(kept, c) is None for c in columns.values()):
                for column in columns.values():
                    setattr(kept, column, getattr(gone, column))

    async def _release_email(self, survivor: User, duplicate: User) -> str | None:
        """The duplicate's email goes to the survivor if it has none; otherwise it is
        returned, to be kept in the merge's row. Emails are unique, so it leaves first."""
        email = duplicate.email
        if email is None:
            return None
        duplicate.email = None
        await self.db.flush()
        if survivor.email is None:
            survivor.email = email
            survivor.email_verified_at = duplicate.email_verified_at
            return None
        return email
