"""What identity does when a clinic is created: its first admin. With a password (self-service
signup) the admin's account is made at once; otherwise the admin is invited, and the
invitation is mailed once the clinic exists."""

from __future__ import annotations

import uuid

from sqlalchemy import insert

from polyclinic.db.base import utcnow
from polyclinic.identity.accounts.models import User
from polyclinic.identity.permissions.roles import Role
from polyclinic.identity.staff.invitations import invitation_message, new_invitation
from polyclinic.identity.staff.models import Invitation
from polyclinic.tenancy.lifecycle import ClinicCreation
from polyclinic.worker.mail import MailQueue

_INVITED = "identity.first_admin_invitation"


class FirstAdmin:
    def __init__(self, mail: MailQueue | None) -> None:
        self.mail = mail

    async def create(self, creation: ClinicCreation) -> None:
        request, now = creation.request, utcnow()
        if request.admin_password_hash is not None:
            await creation.schema.execute(
                insert(User).values(
                    id=uuid.uuid4(),
                    email=request.admin_email,
                    password_hash=request.admin_password_hash,
                    first_name="Clinic",
                    last_name="Admin",
                    role=Role.CLINIC_ADMIN,
                    is_active=True,
                    created_at=now,
                    updated_at=now,
                )
            )
            return
        invitation, token = new_invitation(request.admin_email, Role.CLINIC_ADMIN, None)
        invitation.id, invitation.created_at, invitation.updated_at = uuid.uuid4(), now, now
        await creation.schema.execute(
            insert(Invitation).values(
                {c.key: getattr(invitation, c.key) for c in Invitation.__table__.columns}
            )
        )
        creation.notes[_INVITED] = (invitation, token)

    async def invite(self, creation: ClinicCreation) -> None:
        invited = creation.notes.get(_INVITED)
        if self.mail is not None and invited is not None:
            await self.mail.add_now(creation.clinic, invitation_message(creation.clinic, *invited))
