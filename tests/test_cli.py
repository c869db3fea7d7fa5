"""The `polyclinic` command against the test database."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from polyclinic.cli import main
from polyclinic.config import Settings
from polyclinic.tenancy.migrations import tenant_head


@pytest.fixture
def env(settings: Settings, database_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "BASE_DOMAIN": settings.base_domain,
        "JWT_SIGNING_KEY": settings.jwt_signing_key,
    }


async def test_tenants_list_shows_clinics_with_status_and_version(
    two_clinics: tuple[object, object], env: dict[str, str]
) -> None:
    a, _ = two_clinics
    result = CliRunner().invoke(main, ["tenants", "list", "--status", "active"], env=env)
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith(a.slug))  # type: ignore[attr-defined]
    assert "active" in line and a.schema_name in line  # type: ignore[attr-defined]


def test_db_upgrade_and_tenants_migrate_report_and_succeed(env: dict[str, str]) -> None:
    upgrade = CliRunner().invoke(main, ["db", "upgrade", "--jobs", "1"], env=env)
    migrate = CliRunner().invoke(main, ["tenants", "migrate", "--jobs", "2"], env=env)
    assert upgrade.exit_code == 0, upgrade.output
    assert "shared schemas at head" in upgrade.output
    assert migrate.exit_code == 0, migrate.output
    assert f"clinics at {tenant_head()}" in migrate.output


def test_purge_with_nothing_deleted_says_so(env: dict[str, str], tmp_path: object) -> None:
    result = CliRunner().invoke(
        main,
        ["tenants", "purge", "--tenant", "no-such-clinic", "--archive-dir", str(tmp_path)],
        env=env,
    )
    assert result.exit_code == 0
    assert "no deleted clinics to purge" in result.output


def test_migrating_an_unknown_clinic_fails_clearly(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["tenants", "migrate", "--tenant", "nobody-here"], env=env)
    assert result.exit_code != 0
    assert "No clinic has the subdomain 'nobody-here'" in result.output


def test_listing_by_an_unknown_status_is_a_usage_error(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["tenants", "list", "--status", "sleeping"], env=env)
    assert result.exit_code == 2
    assert "sleeping" in result.output
