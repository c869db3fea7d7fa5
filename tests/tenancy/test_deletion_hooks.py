"""Deleting a clinic runs the domains' `deleted` hooks, in the order they are listed, once
the deletion is committed; a failing hook is logged, the others still run, and the clinic
stays deleted."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.config import Settings
from polyclinic.db.context import TenantInfo
from polyclinic.db.session import platform_session
from polyclinic.errors import Conflict
from polyclinic.tenancy.lifecycle import ClinicLifecycle, on_deleted
from polyclinic.tenancy.models import Tenant, TenantStatus
from polyclinic.tenancy.provisioning import Provisioner
from polyclinic.tenancy.resolver import TenantResolver
from polyclinic.tenancy.services import ClinicRegistry
from tests.conftest import create_clinic


async def test_deleted_hooks_run_in_order_after_the_commit_and_past_a_failure(
    engine: AsyncEngine,
    settings: Settings,
    provisioner: Provisioner,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant = await create_clinic(provisioner)
    other = await create_clinic(provisioner)
    calls: list[str] = []

    def hook(name: str, *, fails: bool = False):  # type: ignore[no-untyped-def]
        async def run(clinic: TenantInfo) -> None:
            # After the commit: another connection already sees the clinic deleted.
            async with platform_session(engine) as session:
                status = (await session.get_one(Tenant, clinic.id)).status
            calls.append(f"{name} {clinic.slug} {status}")
            if fails:
                raise RuntimeError("the provider is down")

        return run

    lifecycle = ClinicLifecycle(
        [
            on_deleted("first", hook("first")),
            on_deleted("second", hook("second", fails=True)),
            on_deleted("third", hook("third")),
        ]
    )
    resolver = TenantResolver(engine, 60)
    async with platform_session(engine) as session:
        deleted = await ClinicRegistry(session, resolver, lifecycle).delete(tenant.id)

    assert deleted.status == TenantStatus.DELETED
    slug = tenant.slug
    assert calls == [f"first {slug} deleted", f"second {slug} deleted", f"third {slug} deleted"]
    assert any("'second'" in r.getMessage() for r in caplog.records)
    async with platform_session(engine) as session:
        assert (await session.get_one(Tenant, tenant.id)).status == TenantStatus.DELETED
        assert (await session.get_one(Tenant, other.id)).status == TenantStatus.ACTIVE

    # A refused deletion (already deleted) runs no hook.
    calls.clear()
    async with platform_session(engine) as session:
        with pytest.raises(Conflict):
            await ClinicRegistry(session, resolver, lifecycle).delete(tenant.id)
    assert calls == []
