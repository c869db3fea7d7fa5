"""`polyclinic audit verify`: an untouched chain passes; an entry changed, removed from the
middle or from the end is found and named, clinic by clinic."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.chart.audit.verify import verify_clinics
from polyclinic.cli import main
from polyclinic.config import Settings
from tests.chart.conftest import Clinic, entries, tamper


@pytest.fixture
def env(settings: Settings, database_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "BASE_DOMAIN": settings.base_domain,
        "JWT_SIGNING_KEY": settings.jwt_signing_key,
    }


async def verify(env: dict[str, str], *args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, main, ["audit", "verify", *args], env=env)


async def reads(clinic: Clinic, count: int) -> None:
    for n in range(count):
        patient = clinic.users["ann" if n % 2 else "bob"]
        assert (await clinic.call("GET", f"/patients/{patient.id}", "doctor")).status_code == 200


async def test_an_untouched_chain_passes(clinic: Clinic, env: dict[str, str]) -> None:
    await reads(clinic, 3)
    result = await verify(env, "--tenant", clinic.api.tenant.slug)
    assert result.exit_code == 0, result.output
    assert f"{clinic.api.tenant.slug}: ok (3 entries)" in result.output


async def test_a_changed_entry_is_found_and_named(
    clinic: Clinic, engine: AsyncEngine, env: dict[str, str]
) -> None:
    await reads(clinic, 4)
    second = (await entries(engine, clinic))[1]
    await tamper(engine, clinic, "UPDATE {s}.audit_entries SET actor_role = 'nurse' WHERE seq = 2")

    result = await verify(env, "--tenant", clinic.api.tenant.slug)
    assert result.exit_code == 1
    assert f"BROKEN {clinic.api.tenant.slug}: entry #2 ({second['id']}) was changed" in (
        result.output
    )
    assert "entry #3" not in result.output and "entry #1 " not in result.output


async def test_a_changed_entry_with_its_hash_recomputed_breaks_the_link_after_it(
    clinic: Clinic, engine: AsyncEngine, env: dict[str, str]
) -> None:
    await reads(clinic, 3)
    await tamper(
        engine, clinic, "UPDATE {s}.audit_entries SET hash = repeat('0', 64) WHERE seq = 2"
    )
    result = await verify(env, "--tenant", clinic.api.tenant.slug)
    assert result.exit_code == 1
    assert "entry #2" in result.output
    assert "entry #3" in result.output and "does not follow the entry before it" in result.output


async def test_removed_entries_are_found_in_the_middle_and_at_the_end(
    clinic: Clinic, engine: AsyncEngine, env: dict[str, str]
) -> None:
    await reads(clinic, 5)
    await tamper(engine, clinic, "DELETE FROM {s}.audit_entries WHERE seq = 3")
    middle = await verify(env, "--tenant", clinic.api.tenant.slug)
    assert middle.exit_code == 1
    assert f"BROKEN {clinic.api.tenant.slug}: entry #3 is missing (removed)" in middle.output

    await tamper(engine, clinic, "DELETE FROM {s}.audit_entries WHERE seq >= 4")
    end = await verify(env, "--tenant", clinic.api.tenant.slug)
    assert end.exit_code == 1
    assert "entries #3 to #5 are missing (removed from the end)" in end.output


async def test_two_clinics_have_independent_chains(
    clinic: Clinic, twin: Clinic, engine: AsyncEngine, env: dict[str, str]
) -> None:
    await reads(clinic, 2)
    await reads(twin, 2)
    # The twin's entries copied over the clinic's own do not belong to its chain.
    await tamper(engine, clinic, "DELETE FROM {s}.audit_entries")
    columns = "id, seq, occurred_at, actor_id, actor_role, patient_id, action, resource, " + (
        "resource_id, request_id, ip, emergency, reason, prev_hash, hash"
    )
    twin_schema = f'"{twin.api.tenant.schema_name}"'
    await tamper(
        engine,
        clinic,
        f"INSERT INTO {{s}}.audit_entries ({columns}) "
        f"SELECT {columns} FROM {twin_schema}.audit_entries",
    )

    report = await verify_clinics(engine)
    mine, theirs = report.clinics[clinic.api.tenant.slug], report.clinics[twin.api.tenant.slug]
    assert theirs.ok and theirs.entries == 2
    assert not mine.ok
    assert {p.seq for p in mine.problems} == {1, 2}

    only_twin = await verify(env, "--tenant", twin.api.tenant.slug)
    assert only_twin.exit_code == 0, only_twin.output
    assert clinic.api.tenant.slug not in only_twin.output


async def test_an_unknown_clinic_is_a_clear_error(env: dict[str, str]) -> None:
    result = await verify(env, "--tenant", "nobody-here")
    assert result.exit_code != 0
    assert "No clinic has the subdomain 'nobody-here'" in result.output


async def test_an_entry_slipped_in_after_the_head_is_found(
    clinic: Clinic, engine: AsyncEngine, env: dict[str, str]
) -> None:
    await reads(clinic, 2)
    await tamper(
        engine,
        clinic,
        "INSERT INTO {s}.audit_entries (id, seq, occurred_at, action, resource, emergency, "
        "prev_hash, hash) SELECT gen_random_uuid(), 3, now(), 'read', 'patient', false, hash, "
        "repeat('f', 64) FROM {s}.audit_entries WHERE seq = 2",
    )
    result = await verify(env, "--tenant", clinic.api.tenant.slug)
    assert result.exit_code == 1
    assert "entry #3" in result.output and "beyond the chain head" in result.output
