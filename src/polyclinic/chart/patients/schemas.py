"""Request and response bodies of the patient routes (camelCase on the wire)."""

import datetime
import uuid
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from polyclinic.chart.patients.models import PatientProfile
from polyclinic.identity.accounts.models import User
from polyclinic.identity.accounts.schemas import (
    Email,
    Locale,
    MessagePreferences,
    message_preferences,
)

Sex = Literal["female", "male", "other", "unknown"]


Phone = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^\+?[0-9 ()-]{5,30}$",
        description="digits, spaces, ( ) and -, optionally after a +",
        examples=["+43 664 123 4567"],
    ),
]


# Printable text with something in it: no control characters (PostgreSQL refuses NUL).
PRINTABLE = r"^(?=.*\S)[^\x00-\x1f\x7f]+$"
Name = Annotated[str, msgspec.Meta(pattern=PRINTABLE, max_length=100)]
Line = Annotated[str, msgspec.Meta(pattern=PRINTABLE, max_length=200)]
Short = Annotated[str, msgspec.Meta(pattern=PRINTABLE, max_length=100)]
PostalCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9 -]{2,20}$")]
Country = Annotated[
    str,
    msgspec.Meta(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code", examples=["AT"]),
]
Relation = Annotated[str, msgspec.Meta(pattern=PRINTABLE, max_length=50, examples=["mother"])]


class PatientAddressIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Each field sent replaces that field; null clears it; a field left out is kept."""

    line1: Line | UnsetType | None = UNSET
    line2: Line | UnsetType | None = UNSET
    city: Short | UnsetType | None = UNSET
    postal_code: PostalCode | UnsetType | None = UNSET
    region: Short | UnsetType | None = UNSET
    country: Country | UnsetType | None = UNSET


class EmergencyContactIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """A contact needs a name and a phone number (once the fields sent are applied)."""

    name: Line | UnsetType | None = UNSET
    relation: Relation | UnsetType | None = UNSET
    phone: Phone | UnsetType | None = UNSET


class InsuranceIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Insurance needs a payer and a member id (once the fields sent are applied)."""

    payer: Line | UnsetType | None = UNSET
    member_id: Short | UnsetType | None = UNSET
    group: Short | UnsetType | None = UNSET


class NewPatient(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """A patient registered by the clinic's staff: no email or account needed."""

    first_name: Name
    last_name: Name
    date_of_birth: Annotated[
        datetime.date, msgspec.Meta(description="not in the future", examples=["1984-03-02"])
    ]
    sex: Sex | None = None
    phone: Phone | None = None
    email: Email | None = None
    address: PatientAddressIn | None = None
    preferred_language: Locale | None = None
    emergency_contact: EmergencyContactIn | None = None
    insurance: InsuranceIn | None = None


class PatientChanges(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Only the fields sent change; null clears an optional one (a whole block included).
    A patient may change only `phone`, `address`, `emergencyContact` and
    `preferredLanguage` of their own record."""

    first_name: Name | UnsetType = UNSET
    last_name: Name | UnsetType = UNSET
    date_of_birth: datetime.date | UnsetType | None = UNSET
    sex: Sex | UnsetType | None = UNSET
    phone: Phone | UnsetType | None = UNSET
    email: Email | UnsetType | None = UNSET
    address: PatientAddressIn | UnsetType | None = UNSET
    preferred_language: Locale | UnsetType | None = UNSET
    emergency_contact: EmergencyContactIn | UnsetType | None = UNSET
    insurance: InsuranceIn | UnsetType | None = UNSET


class MergeRequest(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    duplicate_id: Annotated[
        uuid.UUID,
        msgspec.Meta(description="the other record of the same person; it is merged into this one"),
    ]


class PatientAddress(msgspec.Struct, rename="camel"):
    line1: str | None
    line2: str | None
    city: str | None
    postal_code: str | None
    region: str | None
    country: str | None


class EmergencyContact(msgspec.Struct, rename="camel"):
    name: str | None
    relation: str | None
    phone: str | None


class Insurance(msgspec.Struct, rename="camel"):
    payer: str | None
    member_id: str | None
    group: str | None


class PatientOut(msgspec.Struct, rename="camel"):
    """A patient: the account fields every user has, and the patient's profile.

    `hasAccount`: the patient can sign in (registered themselves, or claimed the record).
    `mergedIntoId`: set on a duplicate merged into another record; that record holds its
    appointments and chart now, and this one is inactive and no longer listed."""

    id: uuid.UUID
    email: str | None
    first_name: str
    last_name: str
    phone: str | None
    date_of_birth: datetime.date | None
    role: str
    is_active: bool
    email_verified: bool
    mfa_enabled: bool
    created_at: datetime.datetime
    message_preferences: MessagePreferences
    sex: str | None
    preferred_language: str | None
    address: PatientAddress | None
    emergency_contact: EmergencyContact | None
    insurance: Insurance | None
    has_account: bool
    registered_by: uuid.UUID | None
    merged_into_id: uuid.UUID | None


def _block(kind: type, values: dict[str, str | None]) -> object | None:
    return kind(**values) if any(v is not None for v in values.values()) else None


def patient_out(user: User, profile: PatientProfile | None) -> PatientOut:
    p = profile or PatientProfile()
    return PatientOut(
        id=user.id,
        email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        phone=user.phone,
        date_of_birth=user.date_of_birth,
        role=user.role,
        is_active=user.is_active,
        email_verified=user.email_verified_at is not None,
        mfa_enabled=user.mfa_enabled_at is not None,
        created_at=user.created_at,
        message_preferences=message_preferences(user),
        sex=p.sex,
        preferred_language=user.locale,
        address=_block(  # type: ignore[arg-type]
            PatientAddress,
            {
                "line1": p.address_line1,
                "line2": p.address_line2,
                "city": p.city,
                "postal_code": p.postal_code,
                "region": p.region,
                "country": p.country,
            },
        ),
        emergency_contact=_block(  # type: ignore[arg-type]
            EmergencyContact,
            {
                "name": p.emergency_name,
                "relation": p.emergency_relation,
                "phone": p.emergency_phone,
            },
        ),
        insurance=_block(  # type: ignore[arg-type]
            Insurance,
            {
                "payer": p.insurance_payer,
                "member_id": p.insurance_member_id,
                "group": p.insurance_group,
            },
        ),
        has_account=user.password_hash is not None,
        registered_by=p.registered_by,
        merged_into_id=p.merged_into_id,
    )
