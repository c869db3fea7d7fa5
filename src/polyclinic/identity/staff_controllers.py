"""Clinic admins: invitations and staff, under /api/v1/invitations and /api/v1/staff."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.identity.guards import Principal
from polyclinic.identity.invitations import Invitations
from polyclinic.identity.schemas import (
    InvitationOut,
    InviteRequest,
    RoleChangeRequest,
    UserOut,
    invitation_out,
    user_out,
)
from polyclinic.identity.sessions import Sessions
from polyclinic.identity.staff import Staff
from polyclinic.tenancy.context import TenantInfo
from polyclinic.web.caller import caller_of
from polyclinic.web.envelope import Envelope, PagedEnvelope, ok, page
from polyclinic.web.openapi import error_responses
from polyclinic.web.state import Runtime

ADMIN_READ = error_responses(400, 401, 403)
ADMIN_WRITE = error_responses(400, 401, 403, 404, 409, 422)
Limit = Annotated[int, QueryParameter(ge=1, le=100)]
Offset = Annotated[int, QueryParameter(ge=0)]


class InvitationsController(Controller):
    path = "/invitations"
    tags = ["clinic: staff"]
    opt = {"permission": ("invitations", "manage")}

    @post("/", status_code=HTTP_201_CREATED, summary="Invite a staff member", responses=ADMIN_WRITE)
    async def invite(
        self,
        request: Request,
        data: JSONBody[InviteRequest],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Envelope[InvitationOut]:
        invitations = Invitations(clinic_db, clinic, runtime.mail)
        invitation = await invitations.invite(
            data.email, data.role, principal.user_id, caller_of(request)
        )
        return ok(invitation_out(invitation), "Invitation sent", HTTP_201_CREATED)

    @get("/", summary="Invitations, newest first", responses=ADMIN_READ)
    async def list_invitations(
        self,
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        pending: FromQuery[bool] = False,
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> PagedEnvelope[InvitationOut]:
        invitations = Invitations(clinic_db, clinic, runtime.mail)
        rows, total = await invitations.list(pending_only=pending, limit=limit, offset=offset)
        return page([invitation_out(i) for i in rows], total=total, limit=limit, offset=offset)

    @post(
        "/{invitation_id:uuid}/resend",
        status_code=HTTP_200_OK,
        summary="Send it again",
        responses=ADMIN_WRITE,
    )
    async def resend(
        self,
        request: Request,
        invitation_id: FromPath[uuid.UUID],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Envelope[InvitationOut]:
        invitations = Invitations(clinic_db, clinic, runtime.mail)
        invitation = await invitations.resend(invitation_id, principal.user_id, caller_of(request))
        return ok(invitation_out(invitation), "Invitation sent again")

    @delete(
        "/{invitation_id:uuid}",
        status_code=HTTP_200_OK,
        summary="Revoke an invitation",
        responses=ADMIN_WRITE,
    )
    async def revoke(
        self,
        request: Request,
        invitation_id: FromPath[uuid.UUID],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Envelope[InvitationOut]:
        invitations = Invitations(clinic_db, clinic, runtime.mail)
        invitation = await invitations.revoke(invitation_id, principal.user_id, caller_of(request))
        return ok(invitation_out(invitation), "Invitation revoked")


class StaffController(Controller):
    path = "/staff"
    tags = ["clinic: staff"]

    @get(
        "/",
        summary="The clinic's staff",
        opt={"permission": ("staff", "list")},
        responses=ADMIN_READ,
    )
    async def list_staff(
        self,
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> PagedEnvelope[UserOut]:
        staff = Staff(clinic_db, Sessions(clinic_db, clinic, runtime.settings, runtime.signer))
        rows, total = await staff.list(limit=limit, offset=offset)
        return page([user_out(u) for u in rows], total=total, limit=limit, offset=offset)

    @patch(
        "/{user_id:uuid}",
        summary="Change a staff member's role",
        opt={"permission": ("staff", "manage")},
        responses=ADMIN_WRITE,
    )
    async def change_role(
        self,
        request: Request,
        user_id: FromPath[uuid.UUID],
        data: JSONBody[RoleChangeRequest],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Envelope[UserOut]:
        staff = Staff(clinic_db, Sessions(clinic_db, clinic, runtime.settings, runtime.signer))
        user = await staff.change_role(user_id, data.role, principal.user_id, caller_of(request))
        return ok(user_out(user), "Role changed")

    @post(
        "/{user_id:uuid}/deactivate",
        status_code=HTTP_200_OK,
        summary="Deactivate a staff member; their sessions end at once",
        opt={"permission": ("staff", "manage")},
        responses=ADMIN_WRITE,
    )
    async def deactivate(
        self,
        request: Request,
        user_id: FromPath[uuid.UUID],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Envelope[UserOut]:
        staff = Staff(clinic_db, Sessions(clinic_db, clinic, runtime.settings, runtime.signer))
        user = await staff.set_active(user_id, False, principal.user_id, caller_of(request))
        return ok(user_out(user), "Deactivated")

    @post(
        "/{user_id:uuid}/reactivate",
        status_code=HTTP_200_OK,
        summary="Reactivate a staff member",
        opt={"permission": ("staff", "manage")},
        responses=ADMIN_WRITE,
    )
    async def reactivate(
        self,
        request: Request,
        user_id: FromPath[uuid.UUID],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Envelope[UserOut]:
        staff = Staff(clinic_db, Sessions(clinic_db, clinic, runtime.settings, runtime.signer))
        user = await staff.set_active(user_id, True, principal.user_id, caller_of(request))
        return ok(user_out(user), "Reactivated")
