"""Request and response bodies of invitations and staff (camelCase on the wire)."""

import datetime
import uuid
from typing import Annotated

import msgspec

from polyclinic.identity.accounts.schemas import Email, Name, Password, Token
from polyclinic.identity.staff.models import Invitation
from polyclinic.web.openapi import published_as


class InviteRequest(msgspec.Struct, rename="camel"):
    email: Email
    role: Annotated[str, msgspec.Meta(examples=["doctor"])]


class AcceptInvitationRequest(msgspec.Struct, rename="camel"):
    token: Token
    password: Password
    first_name: Name
    last_name: Name


class RoleChangeRequest(msgspec.Struct, rename="camel"):
    role: Annotated[str, msgspec.Meta(examples=["nurse"])]


@published_as("polyclinic.identity.schemas")
class InvitationOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    email: str
    role: str
    status: str
    expires_at: datetime.datetime
    created_at: datetime.datetime


def invitation_out(invitation: Invitation) -> InvitationOut:
    if invitation.accepted_at is not None:
        status = "accepted"
    elif invitation.revoked_at is not None:
        status = "revoked"
    elif invitation.expires_at <= datetime.datetime.now(datetime.UTC):
        status = "expired"
    else:
        status = "pending"
    return InvitationOut(
        id=invitation.id,
        email=invitation.email,
        role=invitation.role,
        status=status,
        expires_at=invitation.expires_at,
        created_at=invitation.created_at,
    )
