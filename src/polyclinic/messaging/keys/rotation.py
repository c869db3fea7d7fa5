"""`polyclinic keys rotate-master` and `rotate-clinic`.

Rotating the master key rewraps every clinic's data keys (clinic by clinic, each in its own
transaction, going on past a failing clinic); no secret is re-encrypted. Rotating a clinic's
key adds a data key version and re-seals that clinic's secrets under it in one transaction.
Both take the clinic's data-key lock, so nothing is sealed meanwhile under a retiring key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.db.base import utcnow
from polyclinic.db.context import TenantInfo
from polyclinic.db.session import clinic_transaction
from polyclinic.errors import DomainError, NotFound
from polyclinic.messaging.channels.secrets import ChannelSecrets
from polyclinic.messaging.keys.check import rewrap_check, verify_master_key
from polyclinic.messaging.keys.models import DataKey
from polyclinic.messaging.keys.services import SecretBox, data_key_context, lock_data_keys
from polyclinic.tenancy.models import Tenant, TenantStatus
from polyclinic.tenancy.resolver import tenant_info

# Clinics whose schema exists (a deleted one keeps it until purged).
_WITH_SCHEMA = (TenantStatus.ACTIVE, TenantStatus.SUSPENDED, TenantStatus.DELETED)


@dataclass
class MasterRotation:
    master_key_id: str
    rewrapped: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    # The start-up check moves to the new key only when every clinic is on it.
    check_moved: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class ClinicRotation:
    clinic: str
    version: int
    resealed: int


async def rotate_master_key(
    engine: AsyncEngine,
    box: SecretBox,
    *,
    slug: str | None = None,
    on_result: Callable[[str, int | None, str | None], None] | None = None,
) -> MasterRotation:
    """Rewrap every data key not wrapped by the current master key (only one clinic's with
    `slug`). Keys wrapped by the previous `env` key need MESSAGING_PREVIOUS_MASTER_KEY."""
    current = box.keyring.current
    await verify_master_key(engine, box.keyring)
    report = MasterRotation(current.key_id)
    for clinic in await _clinics(engine, slug):
        try:
            count = await _rewrap_clinic(engine, box, clinic)
        except Exception as exc:
            report.failed[clinic.slug] = _describe(exc)
            if on_result:
                on_result(clinic.slug, None, report.failed[clinic.slug])
            continue
        report.rewrapped[clinic.slug] = count
        if on_result:
            on_result(clinic.slug, count, None)
    if slug is None and report.ok:
        await rewrap_check(engine, box.keyring)
        report.check_moved = True
    return report


async def _rewrap_clinic(engine: AsyncEngine, box: SecretBox, clinic: TenantInfo) -> int:
    current = box.keyring.current
    async with clinic_transaction(engine, clinic) as session:
        # A clinic not yet migrated to the data-key tables has nothing to rewrap.
        if await session.scalar(select(func.to_regclass("data_keys"))) is None:
            return 0
        await lock_data_keys(session, exclusive=True)
        rows = (
            await session.scalars(
                select(DataKey).where(DataKey.master_key_id != current.key_id).with_for_update()
            )
        ).all()
        for row in rows:
            key = await box.unwrap(session, row)
            row.wrapped_key = await current.wrap(key, data_key_context(clinic, row.version))
            row.master_key_id = current.key_id
            row.rewrapped_at = utcnow()
        return len(rows)


async def rotate_clinic_key(
    engine: AsyncEngine, box: SecretBox, clinic: TenantInfo
) -> ClinicRotation:
    """A new data key version for the clinic; every secret sealed under an older version is
    re-sealed with it. Older versions stay, so blobs held elsewhere still open."""
    await verify_master_key(engine, box.keyring)
    async with clinic_transaction(engine, clinic) as session:
        await lock_data_keys(session, exclusive=True)
        newest = await session.scalar(select(func.max(DataKey.version)))
        row = await box.add_data_key(session, version=(newest or 0) + 1)
        resealed = await ChannelSecrets(session, box).reseal(row.version)
    return ClinicRotation(clinic.slug, row.version, resealed)


async def clinic_by_subdomain(engine: AsyncEngine, slug: str) -> TenantInfo:
    clinics = await _clinics(engine, slug)
    if not clinics:
        raise NotFound(f"No clinic has the subdomain {slug!r}")
    return clinics[0]


async def _clinics(engine: AsyncEngine, slug: str | None) -> list[TenantInfo]:
    query = (
        select(Tenant)
        .where(Tenant.status.in_(_WITH_SCHEMA), Tenant.purged_at.is_(None))
        .order_by(Tenant.slug)
    )
    if slug is not None:
        query = query.where(Tenant.slug == slug)
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return [info for row in rows if (info := tenant_info(row)) is not None]


def _describe(exc: Exception) -> str:
    if isinstance(exc, DomainError):
        return exc.message
    first_line = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first_line[:200]}"
