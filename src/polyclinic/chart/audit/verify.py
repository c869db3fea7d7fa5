"""`polyclinic audit verify`: walk each clinic's chain and report every entry changed,
removed or added outside the trail.

A clinic is read in one snapshot (repeatable read), so entries committed meanwhile neither
appear half-way nor count as missing. Each entry's hash is computed again from its content;
each entry must name the one before it and carry the next position; the chain head must
name the last entry (entries removed from the end are found that way).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from polyclinic.chart.audit.chain import HASHED, chain_start, entry_hash
from polyclinic.chart.audit.models import AuditChainHead, AuditEntry
from polyclinic.db.context import TenantInfo
from polyclinic.db.session import clinic_session
from polyclinic.tenancy.models import Tenant, TenantStatus
from polyclinic.tenancy.resolver import tenant_info

BATCH = 1000
# Clinics whose schema exists (a deleted one keeps it until purged).
_WITH_SCHEMA = (TenantStatus.ACTIVE, TenantStatus.SUSPENDED, TenantStatus.DELETED)


@dataclass(frozen=True)
class Problem:
    seq: int
    entry_id: uuid.UUID | None
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class ChainReport:
    entries: int = 0
    problems: list[Problem] = field(default_factory=list)
    # False for a clinic not yet migrated to the audit trail.
    present: bool = True

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class VerifyReport:
    clinics: dict[str, ChainReport] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and all(report.ok for report in self.clinics.values())


def _missing(first: int, last: int, where: str = "") -> str:
    span = f"entry #{first} is" if first == last else f"entries #{first} to #{last} are"
    return f"{span} missing (removed{where})"


async def _entries(session: AsyncSession) -> AsyncIterator[AuditEntry]:
    after = -1
    while True:
        batch = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.seq > after)
                .order_by(AuditEntry.seq)
                .limit(BATCH)
            )
        ).all()
        for entry in batch:
            yield entry
        if len(batch) < BATCH:
            return
        after = batch[-1].seq
        session.expunge_all()


async def verify_chain(session: AsyncSession, clinic_id: uuid.UUID) -> ChainReport:
    """Walk one clinic's chain (the session is the clinic's, in a snapshot)."""
    report = ChainReport()
    head = await session.get(AuditChainHead, 1)
    expected_seq, previous = 1, chain_start(clinic_id)
    async for entry in _entries(session):
        report.entries += 1
        content = {name: getattr(entry, name) for name in HASHED}
        if entry.seq > expected_seq:
            report.problems.append(
                Problem(expected_seq, None, _missing(expected_seq, entry.seq - 1))
            )
        elif entry.prev_hash != previous:
            report.problems.append(
                Problem(
                    entry.seq,
                    entry.id,
                    f"entry #{entry.seq} ({entry.id}) does not follow the entry before it: "
                    "that one was changed or replaced",
                )
            )
        if entry_hash(clinic_id, content) != entry.hash:
            report.problems.append(
                Problem(
                    entry.seq,
                    entry.id,
                    f"entry #{entry.seq} ({entry.id}) was changed: its content does not match "
                    "its hash",
                )
            )
        if head is not None and entry.seq > head.seq:
            report.problems.append(
                Problem(
                    entry.seq,
                    entry.id,
                    f"entry #{entry.seq} ({entry.id}) lies beyond the chain head: it was not "
                    "added through the audit trail",
                )
            )
        expected_seq, previous = entry.seq + 1, entry.hash
    head_seq = head.seq if head is not None else 0
    if head_seq >= expected_seq:
        report.problems.append(
            Problem(expected_seq, None, _missing(expected_seq, head_seq, " from the end"))
        )
    elif head is not None and 0 < head.seq == expected_seq - 1 and head.hash != previous:
        report.problems.append(
            Problem(
                head.seq,
                None,
                f"the chain head does not name entry #{head.seq}: it was changed or replaced",
            )
        )
    return report


async def verify_clinic(engine: AsyncEngine, clinic: TenantInfo) -> ChainReport:
    async with clinic_session(engine, clinic) as session:
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        if await session.scalar(select(func.to_regclass("audit_entries"))) is None:
            return ChainReport(present=False)
        return await verify_chain(session, clinic.id)


async def clinics_with_schema(engine: AsyncEngine, slug: str | None) -> list[TenantInfo]:
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


async def verify_clinics(
    engine: AsyncEngine,
    slug: str | None = None,
    on_result: Callable[[str, ChainReport | None, str | None], None] | None = None,
) -> VerifyReport:
    """Every clinic's chain (one clinic's with `slug`), going on past a clinic that fails."""
    report = VerifyReport()
    for clinic in await clinics_with_schema(engine, slug):
        try:
            chain = await verify_clinic(engine, clinic)
        except Exception as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            report.failed[clinic.slug] = f"{type(exc).__name__}: {first_line[:200]}"
            if on_result:
                on_result(clinic.slug, None, report.failed[clinic.slug])
            continue
        report.clinics[clinic.slug] = chain
        if on_result:
            on_result(clinic.slug, chain, None)
    return report
