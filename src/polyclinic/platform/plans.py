"""Billing on both hosts: plans for super-admins (and the public list), a clinic's own
subscription and usage for its admins and billing staff."""

from __future__ import annotations

import uuid

from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.billing.plans import Plans
from polyclinic.billing.schemas import (
    PlanCreate,
    PlanOut,
    PlanUpdate,
    plan_out,
    plan_values,
)
from polyclinic.platform.guards import require_super_admin
from polyclinic.web.envelope import Envelope, ok
from polyclinic.web.openapi import PLATFORM_READ, PLATFORM_WRITE

SUPER_ADMIN = {"guards": [require_super_admin], "security": [{"BearerToken": []}]}


class PlansController(Controller):
    """The list is public (the signup page shows it); everything else is for super-admins."""

    path = "/platform/v1/plans"
    tags = ["platform: plans"]

    @get("/", summary="Plans a clinic can sign up for (public)", responses=PLATFORM_READ)
    async def offered_plans(
        self, platform_db: NamedDependency[AsyncSession]
    ) -> Envelope[list[PlanOut]]:
        return ok([plan_out(p) for p in await Plans(platform_db).offered()])

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Create a plan",
        responses=PLATFORM_WRITE,
        **SUPER_ADMIN,
    )
    async def create_plan(
        self, data: JSONBody[PlanCreate], platform_db: NamedDependency[AsyncSession]
    ) -> Envelope[PlanOut]:
        plan = await Plans(platform_db).create(plan_values(data))
        return ok(plan_out(plan), "Plan created", HTTP_201_CREATED)

    @get(
        "/{plan_id:uuid}",
        summary="Get a plan (any version)",
        responses=PLATFORM_READ,
        **SUPER_ADMIN,
    )
    async def get_plan(
        self, plan_id: FromPath[uuid.UUID], platform_db: NamedDependency[AsyncSession]
    ) -> Envelope[PlanOut]:
        return ok(plan_out(await Plans(platform_db).get(plan_id)))

    @patch(
        "/{plan_id:uuid}",
        summary="Change a plan; one in use gets a new version instead",
        responses=PLATFORM_WRITE,
        **SUPER_ADMIN,
    )
    async def update_plan(
        self,
        plan_id: FromPath[uuid.UUID],
        data: JSONBody[PlanUpdate],
        platform_db: NamedDependency[AsyncSession],
    ) -> Envelope[PlanOut]:
        plan = await Plans(platform_db).update(plan_id, plan_values(data))
        return ok(plan_out(plan), "Plan saved")

    @post(
        "/{plan_id:uuid}/archive",
        status_code=HTTP_200_OK,
        summary="Stop offering a plan (its subscribers keep it)",
        responses=PLATFORM_WRITE,
        **SUPER_ADMIN,
    )
    async def archive_plan(
        self, plan_id: FromPath[uuid.UUID], platform_db: NamedDependency[AsyncSession]
    ) -> Envelope[PlanOut]:
        return ok(plan_out(await Plans(platform_db).archive(plan_id)), "Plan archived")
