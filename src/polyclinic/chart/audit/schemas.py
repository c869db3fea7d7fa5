"""What the audit API takes and gives (camelCase JSON)."""

import datetime
import uuid
from typing import Annotated

import msgspec

from polyclinic.chart.audit.access import REASON_MIN_LENGTH

Reason = Annotated[
    str,
    msgspec.Meta(
        min_length=REASON_MIN_LENGTH,
        max_length=1000,
        description="Why the chart must be opened now; shown to the clinic's admins",
    ),
]


class EmergencyAccessIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    reason: Reason


class EmergencyGrantOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    user_id: uuid.UUID
    patient_id: uuid.UUID
    reason: str
    granted_at: datetime.datetime
    expires_at: datetime.datetime
    active: bool


class AuditEntryOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    seq: int
    occurred_at: datetime.datetime
    actor_id: uuid.UUID | None
    actor_role: str | None
    patient_id: uuid.UUID | None
    action: str
    resource: str
    resource_id: uuid.UUID | None
    request_id: str | None
    ip: str | None
    emergency: bool
    reason: str | None


class AccessLogEntryOut(msgspec.Struct, rename="camel"):
    """One access to the patient's own record, as the patient sees it."""

    occurred_at: datetime.datetime
    actor_name: str | None
    actor_role: str | None
    action: str
    resource: str
    emergency: bool
