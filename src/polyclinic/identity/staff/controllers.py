"""Clinic admins: invitations and staff, under /api/v1/invitations and /api/v1/staff; and the
invitee accepting, under /api/v1/auth/accept-invitation."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from polyclinic.identity.accounts.schemas import UserOut, user_out
from polyclinic.identity.permissions.auth_routes import PUBLIC_WRITE, public
from polyclinic.identity.permissions.guards import Principal
from polyclinic.identity.staff.invitations import Invitations
from polyclinic.identity.staff.schemas import (
    AcceptInvitationRequest,
    InvitationOut,
    InviteRequest,
    RoleChangeRequest,
    invitation_out,
)
from polyclinic.identity.staff.services import Staff
from polyclinic.web.caller import Caller
from polyclinic.web.envelope import Envelope, PagedEnvelope, ok, page
from polyclinic.web.openapi import error_responses
from polyclinic.web.paging import Limit, Offset

ADMIN_READ = error_responses(400, 401, 403)
ADMIN_WRITE = error_responses(400, 401, 403, 404, 409, 422)
MANAGE_STAFF = {"permission": ("staff", "manage")}


class InvitationsController(Controller):
    path = "/invitations"
    tags = ["clinic: staff"]
    opt = {"permission": ("invitations", "manage")}

    @post("/", status_code=HTTP_201_CREATED, summary="Invite a staff member", responses=ADMIN_WRITE)
    async def invite(
        self,
        data: JSONBody[InviteRequest],
        invitations: NamedDependency[Invitations],
        principal: NamedDependency[Principal],
        caller: NamedDependency[Caller],
    ) -> Envelope[InvitationOut]:
        invitation = await invitations.invite(data.email, data.role, principal.user_id, caller)
        return ok(invitation_out(invitation), "Invitation sent", HTTP_201_CREATED)

    @get("/", summary="Invitations, newest first", responses=ADMIN_READ)
    async def list_invitations(
        self,
        invitations: NamedDependency[Invitations],
        pending: FromQuery[bool] = False,
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> PagedEnvelope[InvitationOut]:
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
        invitation_id: FromPath[uuid.UUID],
        invitations: NamedDependency[Invitations],
        principal: NamedDependency[Principal],
        caller: NamedDependency[Caller],
    ) -> Envelope[InvitationOut]:
        invitation = await invitations.resend(invitation_id, principal.user_id, caller)
        return ok(invitation_out(invitation), "Invitation sent again")

    @delete(
        "/{invitation_id:uuid}",
        status_code=HTTP_200_OK,
        summary="Revoke an invitation",
        responses=ADMIN_WRITE,
    )
    async def revoke(
        self,
        invitation_id: FromPath[uuid.UUID],
        invitations: NamedDependency[Invitations],
        principal: NamedDependency[Principal],
        caller: NamedDependency[Caller],
    ) -> Envelope[InvitationOut]:
        invitation = await invitations.revoke(invitation_id, principal.user_id, caller)
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
        self, staff: NamedDependency[Staff], limit: Limit = 50, offset: Offset = 0
    ) -> PagedEnvelope[UserOut]:
        rows, total = await staff.list(limit=limit, offset=offset)
        return page([user_out(u) for u in rows], total=total, limit=limit, offset=offset)

    @patch(
        "/{user_id:uuid}",
        summary="Change a staff member's role",
        opt=MANAGE_STAFF,
        responses=ADMIN_WRITE,
    )
    async def change_role(
        self,
        user_id: FromPath[uuid.UUID],
        data: JSONBody[RoleChangeRequest],
        staff: NamedDependency[Staff],
        principal: NamedDependency[Principal],
        caller: NamedDependency[Caller],
    ) -> Envelope[UserOut]:
        user = await staff.change_role(user_id, data.role, principal.user_id, caller)
        return ok(user_out(user), "Role changed")

    @post(
        "/{user_id:uuid}/deactivate",
        status_code=HTTP_200_OK,
        summary="Deactivate a staff member; their sessions end at once",
        opt=MANAGE_STAFF,
        responses=ADMIN_WRITE,
    )
    async def deactivate(
        self,
        user_id: FromPath[uuid.UUID],
        staff: NamedDependency[Staff],
        principal: NamedDependency[Principal],
        caller: NamedDependency[Caller],
    ) -> Envelope[UserOut]:
        user = await staff.set_active(user_id, False, principal.user_id, caller)
        return ok(user_out(user), "Deactivated")

    @post(
        "/{user_id:uuid}/reactivate",
        status_code=HTTP_200_OK,
        summary="Reactivate a staff member",
        opt=MANAGE_STAFF,
        responses=ADMIN_WRITE,
    )
    async def reactivate(
        self,
        user_id: FromPath[uuid.UUID],
        staff: NamedDependency[Staff],
        principal: NamedDependency[Principal],
        caller: NamedDependency[Caller],
    ) -> Envelope[UserOut]:
        user = await staff.set_active(user_id, True, principal.user_id, caller)
        return ok(user_out(user), "Reactivated")


class InvitationAcceptanceController(Controller):
    path = "/auth"
    tags = ["clinic: auth"]

    @post(
        "/accept-invitation",
        status_code=HTTP_201_CREATED,
        summary="Accept a staff invitation and set a password",
        opt=public("accept_invitation"),
        responses=PUBLIC_WRITE,
    )
    async def accept_invitation(
        self,
        data: JSONBody[AcceptInvitationRequest],
        invitations: NamedDependency[Invitations],
        caller: NamedDependency[Caller],
    ) -> Envelope[UserOut]:
        user = await invitations.accept(
            data.token, data.password, data.first_name, data.last_name, caller
        )
        return ok(user_out(user), "Welcome; sign in with your new password", HTTP_201_CREATED)
