"""Settings: one place, one clear line when something is missing or malformed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from polyclinic.config import SettingsError, load_settings

VALID = {
    "DATABASE_URL": "postgresql://app@db.internal:5432/polyclinic",
    "BASE_DOMAIN": "Clinics.Example.com.",
    "JWT_SIGNING_KEY": "k" * 40,
}


def test_valid_settings_are_read_and_normalised() -> None:
    settings = load_settings(
        {**VALID, "TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1", "DB_POOL_SIZE": "7"}
    )
    assert settings.base_domain == "clinics.example.com"
    assert settings.trusted_proxies == ("10.0.0.0/8", "192.168.1.1")
    assert settings.db_pool_size == 7
    assert settings.sqlalchemy_url.startswith("postgresql+psycopg://")
    assert settings.platform_hosts == {"clinics.example.com", "admin.clinics.example.com"}


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({k: v for k, v in VALID.items() if k != "DATABASE_URL"}, "DATABASE_URL is required"),
        ({k: v for k, v in VALID.items() if k != "BASE_DOMAIN"}, "BASE_DOMAIN is required"),
        ({**VALID, "JWT_SIGNING_KEY": "short"}, "JWT_SIGNING_KEY is malformed"),
        ({**VALID, "DB_POOL_SIZE": "many"}, "DB_POOL_SIZE is malformed"),
        ({**VALID, "TENANT_CACHE_TTL": "0"}, "TENANT_CACHE_TTL is malformed"),
        ({**VALID, "DATABASE_URL": "mysql://x"}, "DATABASE_URL must start with postgresql://"),
        (
            {**VALID, "BASE_DOMAIN": "https://clinics.example.com"},
            "BASE_DOMAIN must be a bare domain",
        ),
        ({**VALID, "BASE_DOMAIN": "clinics.example.com:8000"}, "BASE_DOMAIN must be a bare"),
        ({**VALID, "TRUSTED_PROXIES": "10.0.0.1,bogus"}, "TRUSTED_PROXIES is malformed: 'bogus'"),
        ({**VALID, "PLATFORM_SUBDOMAINS": "admin,a b"}, "PLATFORM_SUBDOMAINS is malformed"),
        ({**VALID, "REDIS_URL": "notaurl"}, "REDIS_URL must start with redis://"),
    ],
)
def test_bad_settings_name_the_setting(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(environ)


def test_start_up_stops_with_one_line_naming_the_setting() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "BASE_DOMAIN", "JWT_SIGNING_KEY")
    }
    env.update(BASE_DOMAIN="clinics.example.com", JWT_SIGNING_KEY="k" * 40)
    result = subprocess.run(
        [sys.executable, "-m", "polyclinic.cli", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["Error: DATABASE_URL is required but not set (see .env.example)"]


def test_retired_keys_are_read_as_pairs() -> None:
    settings = load_settings({**VALID, "JWT_RETIRED_KEYS": "k0:" + "a" * 32 + ", k00:" + "b" * 40})
    assert settings.jwt_retired_keys == (("k0", "a" * 32), ("k00", "b" * 40))
    with pytest.raises(SettingsError, match="JWT_RETIRED_KEYS is malformed"):
        load_settings({**VALID, "JWT_RETIRED_KEYS": "no-separator"})
