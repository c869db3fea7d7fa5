"""Patients as the clinic keeps them: search, one record, registration at the desk, changes,
and the invitation to claim an account.

Every read and write of a patient's record goes through `Patients` and is an entry in the
audit trail (`chart.audit`), written in the request's own transaction.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from advanced_alchemy.filters import LimitOffset, OrderBy
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.chart.audit.services import Action
from polyclinic.chart.audit.trail import AuditTrail
from polyclinic.chart.patients.models import PatientProfile
from polyclinic.chart.patients.schemas import NewPatient, PatientChanges
from polyclinic.db.base import utcnow
from polyclinic.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from polyclinic.identity.accounts.models import User, UserToken
from polyclinic.identity.accounts.services import CLAIM_ACCOUNT, Accounts
from polyclinic.identity.permissions.guards import Principal
from polyclinic.identity.permissions.matrix import only_own
from polyclinic.identity.permissions.roles import Role
from polyclinic.identity.staff.services import UserRepository
from polyclinic.web.caller import Caller
from polyclinic.web.patching import sent_fields

READ = ("patients", "read")
UPDATE = ("patients", "update")
NO_SUCH_PATIENT = "No such patient"
# The audit trail's name for a patient's record (demographics, contact, insurance).
RESOURCE = "patient"

# What a patient may change of their own record: how to reach them and whom to call.
SELF_SERVICE = frozenset({"phone", "address", "emergency_contact", "preferred_language"})

# Each block of the profile: its wire name, field -> column, and the fields it cannot lack.
BLOCKS: dict[str, tuple[str, Mapping[str, str], tuple[str, ...]]] = {
    "address": (
        "address",
        {
            "line1": "address_line1",
            "line2": "address_line2",
            "city": "city",
            "postal_code": "postal_code",
            "region": "region",
            "country": "country",
        },
        (),
    ),
    "emergency_contact": (
        "emergencyContact",
        {"name": "emergency_name", "relation": "emergency_relation", "phone": "emergency_phone"},
        ("name", "phone"),
    ),
    "insurance": (
        "insurance",
        {
            "payer": "insurance_payer",
            "member_id": "insurance_member_id",
            "group": "insurance_group",
        },
        ("payer", "member_id"),
    ),
}

OLDEST_BIRTH_YEARS = 150


@dataclass(frozen=True)
class Patient:
    user: User
    profile: PatientProfile | None


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def check_birth_date(value: datetime.date | None) -> None:
    if value is None:
        return
    today = datetime.date.today()
    if value > today:
        raise InvalidInput(
            "The date of birth is in the future", [FieldError("dateOfBirth", "is in the future")]
        )
    if value.year < today.year - OLDEST_BIRTH_YEARS:
        raise InvalidInput(
            "The date of birth is not plausible",
            [FieldError("dateOfBirth", f"is more than {OLDEST_BIRTH_YEARS} years ago")],
        )


def _clean(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def apply_block(profile: PatientProfile, name: str, block: Any) -> None:
    """Apply one block (address, emergency contact, insurance) as sent: null clears it, a
    field left out is kept. Raises when the block ends up lacking a field it needs."""
    wire, columns, required = BLOCKS[name]
    if block is msgspec.UNSET:
        return
    for field, column in columns.items():
        value = None if block is None else getattr(block, field)
        if value is not msgspec.UNSET:
            setattr(profile, column, _clean(value))
    values = {field: getattr(profile, column) for field, column in columns.items()}
    if any(v is not None for v in values.values()):
        missing = [field for field in required if values[field] is None]
        if missing:
            raise InvalidInput(
                f"The {wire} needs {' and '.join(camel(f) for f in missing)}",
                [FieldError(f"{wire}.{camel(f)}", "is required") for f in missing],
            )


class Patients:
    def __init__(self, session: AsyncSession, accounts: Accounts, audit: AuditTrail) -> None:
        self.db = session
        self.accounts = accounts
        self.audit = audit

    async def search(
        self,
        *,
        q: str | None,
        phone: str | None,
        date_of_birth: datetime.date | None,
        limit: int,
        offset: int,
    ) -> tuple[list[Patient], int]:
        """Patients not merged into another record, by last and first name. Every word of
        `q` matches a name or the email; `phone` matches the digits given anywhere in the
        number, whatever the separators; `date_of_birth` exactly."""
        merged = select(PatientProfile.user_id).where(PatientProfile.merged_into_id.is_not(None))
        filters: list[Any] = [
            LimitOffset(limit, offset),
            OrderBy("last_name", "asc"),
            OrderBy("first_name", "asc"),
            User.role == Role.PATIENT,
            User.id.not_in(merged),
        ]
        for word in (q or "").lower().split():
            filters.append(
                or_(
                    func.lower(User.first_name).contains(word, autoescape=True),
                    func.lower(User.last_name).contains(word, autoescape=True),
                    func.lower(User.email).contains(word, autoescape=True),
                )
            )
        if phone is not None:
            digits = re.sub(r"\D", "", phone)
            if len(digits) < 3:
                raise InvalidInput(
                    "Search by phone needs at least 3 digits",
                    [FieldError("phone", "give at least 3 digits")],
                )
            filters.append(func.regexp_replace(User.phone, "[^0-9]", "", "g").contains(digits))
        if date_of_birth is not None:
            filters.append(User.date_of_birth == date_of_birth)
        users, total = await UserRepository(session=self.db).get_many_and_count(*filters)
        profiles = await self._profiles([u.id for u in users])
        await self.audit.listed(RESOURCE, [u.id for u in users])
        return [Patient(u, profiles.get(u.id)) for u in users], total

    async def get(self, patient_id: uuid.UUID) -> Patient:
        """One patient, a merged duplicate included (it points at its survivor). A patient
        asking for someone else's record is answered as for a missing one."""
        access = await self.audit.open_chart(patient_id, READ)
        patient = await self._load(patient_id)
        await self.audit.read(RESOURCE, patient_id, access=access)
        return patient

    async def register(self, data: NewPatient, principal: Principal) -> Patient:
        check_birth_date(data.date_of_birth)
        email = data.email.strip().lower() if data.email else None
        if email is not None:
            await self._check_email_free(email)
        user = User(
            id=uuid.uuid4(),
            email=email,
            password_hash=None,
            first_name=data.first_name.strip(),
            last_name=data.last_name.strip(),
            phone=_clean(data.phone),
            date_of_birth=data.date_of_birth,
            role=Role.PATIENT,
            is_active=True,
            locale=data.preferred_language,
        )
        profile = PatientProfile(user_id=user.id, sex=data.sex, registered_by=principal.user_id)
        for block in BLOCKS:
            apply_block(profile, block, getattr(data, block) or msgspec.UNSET)
        self.db.add(user)
        await self._flush_email()
        self.db.add(profile)
        await self.db.flush()
        await self.audit.record(Action.CREATE, RESOURCE, user.id)
        await self.db.commit()
        return Patient(user, profile)

    async def update(
        self, patient_id: uuid.UUID, changes: PatientChanges, principal: Principal
    ) -> Patient:
        user, profile = await self._writable(patient_id, principal, UPDATE)
        sent = sent_fields(changes)
        if only_own(UPDATE, principal.role):
            refused = sorted(set(sent) - SELF_SERVICE)
            if refused:
                raise Forbidden(
                    "You can change your phone, address, emergency contact and language here; "
                    "ask the clinic's reception for the rest",
                    [
                        FieldError(camel(f), "only the clinic's staff can change this")
                        for f in refused
                    ],
                )
        if "date_of_birth" in sent:
            check_birth_date(sent["date_of_birth"])
        if "email" in sent:
            await self._change_email(user, sent.pop("email"))
        for field in ("first_name", "last_name", "phone", "date_of_birth"):
            if field in sent:
                setattr(user, field, _clean(sent[field]))
        if "preferred_language" in sent:
            user.locale = sent["preferred_language"]
        if "sex" in sent:
            profile.sex = sent["sex"]
        for block in BLOCKS:
            apply_block(profile, block, sent.get(block, msgspec.UNSET))
        await self._flush_email()
        await self.audit.record(Action.UPDATE, RESOURCE, user.id)
        await self.db.commit()
        return Patient(user, profile)

    async def invite(self, patient_id: uuid.UUID, principal: Principal, caller: Caller) -> Patient:
        """Mail the patient a link to claim this record as their account."""
        user, profile = await self._writable(patient_id, principal, ("patients", "invite"))
        if user.password_hash is not None:
            raise Conflict("This patient already has an account")
        if user.email is None:
            raise InvalidInput(
                "The patient has no email address: add one first",
                [FieldError("email", "is needed to send the invitation")],
            )
        await self.audit.record(Action.UPDATE, RESOURCE, user.id)
        await self.accounts.offer_claim(user, caller, actor_id=principal.user_id)
        return Patient(user, profile)

    async def _load(self, patient_id: uuid.UUID, *, lock: bool = False) -> Patient:
        query = select(User).where(User.id == patient_id, User.role == Role.PATIENT)
        user = (await self.db.execute(query.with_for_update() if lock else query)).scalar()
        if user is None:
            raise NotFound(NO_SUCH_PATIENT)
        profile_query = select(PatientProfile).where(PatientProfile.user_id == patient_id)
        if lock:
            profile_query = profile_query.with_for_update()
        profile = (await self.db.execute(profile_query)).scalar()
        return Patient(user, profile)

    async def _writable(
        self, patient_id: uuid.UUID, principal: Principal, permission: tuple[str, str]
    ) -> tuple[User, PatientProfile]:
        if only_own(permission, principal.role) and patient_id != principal.user_id:
            raise NotFound(NO_SUCH_PATIENT)
        patient = await self._load(patient_id, lock=True)
        profile = patient.profile
        if profile is not None and profile.merged_into_id is not None:
            raise Conflict(
                f"This record was merged into patient {profile.merged_into_id}; change that one"
            )
        if profile is None:
            profile = PatientProfile(user_id=patient.user.id)
            self.db.add(profile)
        return patient.user, profile

    async def _profiles(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, PatientProfile]:
        if not ids:
            return {}
        rows = await self.db.execute(select(PatientProfile).where(PatientProfile.user_id.in_(ids)))
        return {p.user_id: p for p in rows.scalars()}

    async def _check_email_free(self, email: str) -> None:
        taken = await self.db.scalar(select(User.id).where(User.email == email))
        if taken is not None:
            raise Conflict(
                "This email address already belongs to someone at this clinic",
                [FieldError("email", "is already in use at this clinic")],
            )

    async def _change_email(self, user: User, value: str | None) -> None:
        email = value.strip().lower() if value else None
        if email == user.email:
            return
        if user.password_hash is not None:
            raise Conflict(
                "The patient signs in with this address; only they can change it",
                [FieldError("email", "is the patient's sign-in address")],
            )
        if email is not None:
            await self._check_email_free(email)
        # A claim link sent to the old address stops working.
        await self.db.execute(
            update(UserToken)
            .where(
                UserToken.user_id == user.id,
                UserToken.purpose == CLAIM_ACCOUNT,
                UserToken.used_at.is_(None),
            )
            .values(used_at=utcnow())
        )
        user.email = email
        user.email_verified_at = None

    async def _flush_email(self) -> None:
        """Flush; two requests giving the same email at once: the later one is refused."""
        try:
            await self.db.flush()
        except IntegrityError:
            await self.db.rollback()
            raise Conflict(
                "This email address already belongs to someone at this clinic",
                [FieldError("email", "is already in use at this clinic")],
            ) from None
