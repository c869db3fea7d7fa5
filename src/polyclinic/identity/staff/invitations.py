"""Staff join a clinic by invitation: a clinic admin invites `{email, role}`, the invitee
accepts with the emailed token and sets a password."""

from __future__ import annotations

import asyncio
import datetime
import uuid

from advanced_alchemy.filters import LimitOffset, OrderBy
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.db.base import utcnow
from polyclinic.db.context import TenantInfo
from polyclinic.errors import Conflict, FieldError, InvalidInput, NotFound
from polyclinic.identity.accounts.models import User
from polyclinic.identity.accounts.opaque import hash_token, new_token
from polyclinic.identity.accounts.passwords import hash_password
from polyclinic.identity.accounts.services import check_new_password
from polyclinic.identity.permissions.roles import STAFF_ROLES, Role
from polyclinic.identity.staff.models import Invitation
from polyclinic.identity.trail import services as trail
from polyclinic.web.caller import Caller
from polyclinic.web.state import PlanLimits
from polyclinic.worker.mail import MailMessage, MailQueue

INVITATION_LIFETIME = datetime.timedelta(days=7)


class InvitationRepository(SQLAlchemyAsyncRepository[Invitation]):
    model_type = Invitation


def invitation_message(clinic: TenantInfo, invitation: Invitation, token: str) -> MailMessage:
    return MailMessage(
        clinic=clinic,
        kind="staff_invitation",
        to=invitation.email,
        recipient_id=invitation.id,
        values={"role": invitation.role.replace("_", " ")},
        token=token,
    )


def new_invitation(email: str, role: str, invited_by: uuid.UUID | None) -> tuple[Invitation, str]:
    token, token_hash = new_token()
    invitation = Invitation(
        email=email,
        role=role,
        token_hash=token_hash,
        invited_by=invited_by,
        expires_at=utcnow() + INVITATION_LIFETIME,
    )
    return invitation, token


class Invitations:
    def __init__(
        self, session: AsyncSession, tenant: TenantInfo, mail: MailQueue, plan_limits: PlanLimits
    ) -> None:
        self.plan_limits = plan_limits
        self.db = session
        self.tenant = tenant
        self.mail = mail

    async def invite(self, email: str, role: str, actor: uuid.UUID, caller: Caller) -> Invitation:
        email = email.strip().lower()
        if role not in STAFF_ROLES:
            raise InvalidInput(
                f"Staff can be invited as {', '.join(sorted(STAFF_ROLES))}",
                [FieldError("role", "is not a staff role")],
            )
        existing = await self.db.execute(select(User.id).where(User.email == email))
        if existing.first() is not None:
            raise Conflict(
                f"{email} already has an account at this clinic",
                [FieldError("email", "already has an account")],
            )
        await self._revoke_pending(email)
        await check_staff_seat(self.db, self.tenant.id, self.plan_limits)
        invitation, token = new_invitation(email, role, actor)
        self.db.add(invitation)
        await self.db.flush()
        trail.record(self.db, caller, "invitation_sent", actor_id=actor, email=email, role=role)
        await self.mail.add(self.db, invitation_message(self.tenant, invitation, token))
        await self.db.commit()
        return invitation

    async def list(
        self, *, pending_only: bool, limit: int, offset: int
    ) -> tuple[list[Invitation], int]:
        filters: list = [LimitOffset(limit, offset), OrderBy("created_at", "desc")]
        if pending_only:
            filters += [
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > utcnow(),
            ]
        rows, total = await InvitationRepository(session=self.db).get_many_and_count(*filters)
        return list(rows), total

    async def resend(
        self, invitation_id: uuid.UUID, actor: uuid.UUID, caller: Caller
    ) -> Invitation:
        invitation = await self._pending(invitation_id)
        token, invitation.token_hash = new_token()
        invitation.expires_at = utcnow() + INVITATION_LIFETIME
        trail.record(self.db, caller, "invitation_resent", actor_id=actor, email=invitation.email)
        await self.mail.add(self.db, invitation_message(self.tenant, invitation, token))
        await self.db.commit()
        return invitation

    async def revoke(
        self, invitation_id: uuid.UUID, actor: uuid.UUID, caller: Caller
    ) -> Invitation:
        invitation = await self._pending(invitation_id)
        invitation.revoked_at = utcnow()
        trail.record(self.db, caller, "invitation_revoked", actor_id=actor, email=invitation.email)
        await self.db.commit()
        return invitation

    async def accept(
        self, token: str, password: str, first_name: str, last_name: str, caller: Caller
    ) -> User:
        check_new_password(password)
        invitation = (
            await self.db.execute(
                select(Invitation)
                .where(Invitation.token_hash == hash_token(token))
                .with_for_update()
            )
        ).scalar_one_or_none()
        now = utcnow()
        if (
            invitation is None
            or invitation.accepted_at is not None
            or invitation.revoked_at is not None
            or invitation.expires_at <= now
        ):
            raise InvalidInput(
                "This invitation is invalid, used or expired; ask the clinic for a new one",
                [FieldError("token", "is invalid or expired")],
            )
        user = User(
            email=invitation.email,
            password_hash=await asyncio.to_thread(hash_password, password),
            first_name=first_name.strip(),
            last_name=last_name.strip(),
            role=invitation.role,
            is_active=True,
            email_verified_at=now,
        )
        self.db.add(user)
        invitation.accepted_at = now
        try:
            await self.db.flush()
        except IntegrityError:
            await self.db.rollback()
            raise Conflict("An account with this email already exists at this clinic") from None
        trail.record(
            self.db,
            caller,
            "invitation_accepted",
            user_id=user.id,
            email=user.email,
            role=user.role,
        )
        await self.db.commit()
        return user

    async def _pending(self, invitation_id: uuid.UUID) -> Invitation:
        invitation = await self.db.get(Invitation, invitation_id)
        if invitation is None:
            raise NotFound("No such invitation")
        if invitation.accepted_at is not None or invitation.revoked_at is not None:
            raise Conflict("This invitation was already accepted or revoked")
        return invitation

    async def _revoke_pending(self, email: str) -> None:
        await self.db.execute(
            update(Invitation)
            .where(
                Invitation.email == email,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow())
        )


async def check_staff_seat(
    session: AsyncSession, tenant_id: uuid.UUID, plan_limits: PlanLimits
) -> None:
    """One more staff member (or an invitation that may become one) within the plan."""

    async def seats_in_use() -> int:
        staff = await session.scalar(
            select(func.count()).where(User.role != Role.PATIENT, User.is_active.is_(True))
        )
        pending = await session.scalar(
            select(func.count()).where(
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > utcnow(),
            )
        )
        return int(staff or 0) + int(pending or 0)

    await plan_limits(session, tenant_id, "max_staff", "staff", seats_in_use)
