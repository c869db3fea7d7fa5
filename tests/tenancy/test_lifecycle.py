"""Clinic lifecycle hooks: the domains' work at a clinic's creation runs in the stated order,
inside the provisioning transaction where it must be (a failing hook leaves no clinic behind),
after it where it may (a failing hook there undoes nothing)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from polyclinic.config import Settings
from polyclinic.errors import InvalidInput
from polyclinic.platform.lifecycle import clinic_lifecycle
from polyclinic.tenancy.lifecycle import (
    ClinicCreation,
    ClinicLifecycle,
    NewClinic,
    Stage,
    on_check,
    on_create,
    on_created,
)
from polyclinic.tenancy.models import TenantStatus
from polyclinic.tenancy.provisioning import Provisioner, ProvisioningFailed
from tests.conftest import unique_subdomain


def new_clinic() -> NewClinic:
    subdomain = unique_subdomain()
    return NewClinic("Lakeside", subdomain, "Europe/Vienna", f"owner@{subdomain}.test")


async def status_of(engine: AsyncEngine, subdomain: str) -> str | None:
    async with engine.connect() as connection:
        return await connection.scalar(
            text("SELECT status FROM platform.tenants WHERE slug = :s"), {"s": subdomain}
        )


async def test_the_platform_lists_each_domain_hook_in_its_order(
    engine: AsyncEngine, settings: Settings
) -> None:
    lifecycle = clinic_lifecycle(engine, settings)
    assert lifecycle.names(Stage.CHECK) == ["plan exists"]
    assert lifecycle.names(Stage.CREATE) == [
        "clinic profile",
        "first admin",
        "trial subscription",
    ]
    assert lifecycle.names(Stage.CREATED) == ["admin invitation mail"]
    assert lifecycle.names(Stage.DELETED) == ["cancel subscription"]


def test_a_hook_listed_twice_for_one_stage_is_refused() -> None:
    async def noop(creation: ClinicCreation) -> None:
        return None

    with pytest.raises(ValueError, match="twice"):
        ClinicLifecycle([on_create("profile", noop), on_create("profile", noop)])


async def test_hooks_run_in_order_inside_then_after_the_transaction(
    engine: AsyncEngine, settings: Settings
) -> None:
    calls: list[str] = []

    async def check(shared: AsyncConnection, request: NewClinic) -> None:
        calls.append(f"check {request.subdomain}")

    def inside(name: str):
        async def run(creation: ClinicCreation) -> None:
            # Inside the transaction: the clinic's tables exist, it is not active yet.
            status = await creation.shared.scalar(
                text("SELECT status FROM platform.tenants WHERE id = :i"),
                {"i": creation.clinic.id},
            )
            tables = await creation.schema.scalar(text("SELECT count(*) FROM clinic_profile"))
            calls.append(f"{name} {status} {tables}")

        return run

    async def after(creation: ClinicCreation) -> None:
        calls.append(f"after {creation.clinic.status}")

    lifecycle = ClinicLifecycle(
        [
            on_check("check", check),
            on_create("first", inside("first")),
            on_create("second", inside("second")),
            on_created("after", after),
        ]
    )
    request = new_clinic()
    tenant = await Provisioner(engine, settings, lifecycle).create(request)
    assert tenant.status == TenantStatus.ACTIVE
    assert calls == [
        f"check {request.subdomain}",
        "first provisioning 0",
        "second provisioning 0",
        "after active",
    ]


async def test_a_failing_create_hook_rolls_the_clinic_back(
    engine: AsyncEngine, settings: Settings
) -> None:
    async def profile(creation: ClinicCreation) -> None:
        await creation.schema.execute(
            text(
                "INSERT INTO clinic_profile (id, name, timezone, created_at, updated_at) "
                "VALUES (gen_random_uuid(), 'x', 'UTC', now(), now())"
            )
        )

    async def broken(creation: ClinicCreation) -> None:
        raise RuntimeError("the trial could not start")

    lifecycle = ClinicLifecycle([on_create("profile", profile), on_create("broken", broken)])
    request = new_clinic()
    with pytest.raises(ProvisioningFailed):
        await Provisioner(engine, settings, lifecycle).create(request)
    assert await status_of(engine, request.subdomain) == TenantStatus.FAILED
    async with engine.connect() as connection:
        schemas = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_namespace n JOIN platform.tenants t "
                "ON t.schema_name = n.nspname WHERE t.slug = :s"
            ),
            {"s": request.subdomain},
        )
    assert schemas == 0


async def test_a_failing_after_hook_leaves_the_clinic_active(
    engine: AsyncEngine, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(creation: ClinicCreation) -> None:
        raise RuntimeError("mail server down")

    request = new_clinic()
    lifecycle = ClinicLifecycle([on_created("welcome mail", broken)])
    tenant = await Provisioner(engine, settings, lifecycle).create(request)
    assert tenant.status == TenantStatus.ACTIVE
    assert await status_of(engine, request.subdomain) == TenantStatus.ACTIVE
    assert any("welcome mail" in record.getMessage() for record in caplog.records)


async def test_a_check_hook_refuses_before_anything_is_written(
    engine: AsyncEngine, settings: Settings
) -> None:
    request = NewClinic("Lakeside", unique_subdomain(), "UTC", "a@b.test", plan_code="no-such")
    with pytest.raises(InvalidInput):
        await Provisioner(engine, settings, clinic_lifecycle(engine, settings)).create(request)
    assert await status_of(engine, request.subdomain) is None
