"""Settings: one place, one clear line when something is missing or malformed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from polyclinic.config import SettingsError, email_from_parts, load_settings, smtp_url_parts

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


def test_the_platforms_smtp_server_is_read_from_one_url() -> None:
    settings = load_settings(
        {
            **VALID,
            "PLATFORM_SMTP_URL": "smtp://mailer%40clinics:p%40ss%2Fword@smtp.example.com",
            "PLATFORM_EMAIL_FROM": "Polyclinic <no-reply@clinics.example.com>",
        }
    )
    assert settings.platform_smtp_url is not None
    server = smtp_url_parts(settings.platform_smtp_url, settings.platform_smtp_security)
    assert (server.host, server.port, server.username, server.password) == (
        "smtp.example.com",
        587,
        "mailer@clinics",
        "p@ss/word",
    )
    assert "p@ss" not in repr(server)
    assert smtp_url_parts("smtp://relay.internal", "ssl").port == 465
    assert smtp_url_parts("smtp://relay.internal:2525", "none").username is None
    assert email_from_parts("no-reply@clinics.example.com") == (
        None,
        "no-reply@clinics.example.com",
    )


PLATFORM_SMTP = {
    "PLATFORM_SMTP_URL": "smtp://u:pw@smtp.example.com",
    "PLATFORM_EMAIL_FROM": "a@b.cd",
}
TWILIO = {
    "PLATFORM_TWILIO_ACCOUNT_SID": "AC" + "a" * 32,
    "PLATFORM_TWILIO_AUTH_TOKEN": "b" * 32,
    "PLATFORM_SMS_FROM": "+4930123456",
}


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({**PLATFORM_SMTP, "PLATFORM_SMTP_URL": "https://smtp.example.com"}, "PLATFORM_SMTP_URL"),
        (
            {**PLATFORM_SMTP, "PLATFORM_SMTP_URL": "smtp://u:pw@smtp.example.com:99999"},
            "PLATFORM_SMTP_URL",
        ),
        (
            {**PLATFORM_SMTP, "PLATFORM_SMTP_URL": "smtp://only-user@smtp.example.com"},
            "PLATFORM_SMTP_URL",
        ),
        (
            {**PLATFORM_SMTP, "PLATFORM_SMTP_URL": "smtp://u:pw@smtp.example.com/x"},
            "PLATFORM_SMTP_URL",
        ),
        ({**PLATFORM_SMTP, "PLATFORM_SMTP_SECURITY": "tls"}, "PLATFORM_SMTP_SECURITY is malformed"),
        ({"PLATFORM_SMTP_URL": "smtp://u:pw@smtp.example.com"}, "PLATFORM_EMAIL_FROM is required"),
        (
            {**PLATFORM_SMTP, "PLATFORM_EMAIL_FROM": "Polyclinic"},
            "PLATFORM_EMAIL_FROM is malformed",
        ),
        ({**TWILIO, "PLATFORM_SMS_FROM": ""}, "PLATFORM_SMS_FROM is required with PLATFORM_TWILIO"),
        (
            {**TWILIO, "PLATFORM_TWILIO_AUTH_TOKEN": "secret"},
            "PLATFORM_TWILIO_AUTH_TOKEN is malformed",
        ),
        ({**TWILIO, "PLATFORM_SMS_FROM": "030 123456"}, "PLATFORM_SMS_FROM is malformed"),
    ],
)
def test_bad_platform_providers_are_named_without_their_secrets(
    environ: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError, match=named) as raised:
        load_settings({**VALID, **environ})
    assert "pw" not in str(raised.value) and "secret" not in str(raised.value)


def test_the_platforms_twilio_account_is_all_three_settings_or_none() -> None:
    settings = load_settings({**VALID, **TWILIO})
    assert settings.platform_twilio_account_sid == "AC" + "a" * 32
    assert load_settings(VALID).platform_twilio_auth_token is None
