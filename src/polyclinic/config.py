"""Settings, read from the environment in one place.

Each field's name upper-cased is its environment variable. Everything is documented in
`.env.example`. A missing or malformed setting raises `SettingsError` with one line naming it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import os
import re
from collections.abc import Mapping
from email.utils import parseaddr
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

import msgspec

Seconds = Annotated[int, msgspec.Meta(ge=1)]


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str
    base_domain: str
    jwt_signing_key: Annotated[str, msgspec.Meta(min_length=32)]
    jwt_key_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "k1"
    jwt_retired_keys: tuple[tuple[str, str], ...] = ()
    # Two-factor secrets: the first key seals, every one opens (rotation).
    mfa_sealing_keys: tuple[str, ...] = ()
    redis_url: str | None = None
    redis_namespace: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,40}$")] = "polyclinic"
    in_process_workers: bool = False
    dev_mail_to_log: bool = False
    platform_subdomains: tuple[str, ...] = ("admin",)
    trusted_proxies: tuple[str, ...] = ()
    tenant_cache_ttl: Seconds = 30
    access_token_ttl: Seconds = 900
    session_idle_timeout: Seconds = 12 * 3600
    session_max_age: Seconds = 14 * 24 * 3600
    login_max_failures: Annotated[int, msgspec.Meta(ge=1)] = 5
    login_max_failures_per_address: Annotated[int, msgspec.Meta(ge=1)] = 50
    login_lockout_seconds: Seconds = 900
    auth_rate_limit_per_minute: Annotated[int, msgspec.Meta(ge=1)] = 60
    mfa_required_for_admins: bool = False
    mfa_required_for_super_admins: bool = False
    past_due_grace_days: Annotated[int, msgspec.Meta(ge=0)] = 7
    stripe_webhook_secret: str | None = None
    stripe_api_key: str | None = None
    stripe_api_base: str | None = None
    billing_suspend_after_days: Annotated[int, msgspec.Meta(ge=0)] = 14
    payment_hold_minutes: Annotated[int, msgspec.Meta(ge=5, le=1440)] = 15
    platform_fee_basis_points: Annotated[int, msgspec.Meta(ge=0, le=5000)] = 300
    check_in_opens_minutes: Annotated[int, msgspec.Meta(ge=5, le=720)] = 60
    emergency_access_minutes: Annotated[int, msgspec.Meta(ge=5, le=1440)] = 60
    delivery_claim_seconds: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 120
    outbox_relay_again_seconds: Annotated[int, msgspec.Meta(ge=1, le=86400)] = 600
    hsts_max_age: Annotated[int, msgspec.Meta(ge=0)] = 31_536_000
    public_url_scheme: Annotated[str, msgspec.Meta(pattern="^https?$")] = "https"
    # Fair shares between clinics (web/fairness.py); a rate of 0 or a timeout of 0 is none.
    clinic_rate_limit_per_minute: Annotated[int, msgspec.Meta(ge=0)] = 600
    clinic_rate_burst: Annotated[int, msgspec.Meta(ge=1)] = 60
    clinic_refusal_delay_ms: Annotated[int, msgspec.Meta(ge=0, le=60000)] = 1000
    clinic_max_concurrent_requests: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 4
    clinic_queue_wait_ms: Annotated[int, msgspec.Meta(ge=0, le=60000)] = 1000
    clinic_statement_timeout_ms: Annotated[int, msgspec.Meta(ge=0)] = 5000
    db_pool_size: Annotated[int, msgspec.Meta(ge=1, le=200)] = 10
    db_max_overflow: Annotated[int, msgspec.Meta(ge=0, le=200)] = 10
    db_connection_max_uses: Annotated[int, msgspec.Meta(ge=0)] = 1000
    db_pool_recycle: Seconds = 1800
    archive_dir: str = "var/archive"
    messaging_master_key_source: Literal["env", "kms"] = "env"
    messaging_master_key: str | None = None
    messaging_previous_master_key: str | None = None
    messaging_kms_key_id: str | None = None
    twilio_api_base: str = "https://api.twilio.com"
    meta_graph_api_base: str = "https://graph.facebook.com"
    # The platform's default providers, for clinics without one of their own (plan permitting).
    platform_smtp_url: str | None = None
    platform_smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    platform_email_from: str | None = None
    platform_twilio_account_sid: (
        Annotated[str, msgspec.Meta(pattern=r"^AC[0-9a-fA-F]{32}$")] | None
    ) = None
    platform_twilio_auth_token: (
        Annotated[str, msgspec.Meta(pattern=r"^[0-9a-fA-F]{32}$")] | None
    ) = None
    platform_sms_from: Annotated[str, msgspec.Meta(pattern=r"^\+[1-9]\d{6,14}$")] | None = None
    max_request_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1024 * 1024
    log_level: Annotated[str, msgspec.Meta(pattern="^(DEBUG|INFO|WARNING|ERROR)$")] = "INFO"

    @property
    def platform_hosts(self) -> frozenset[str]:
        hosts = {self.base_domain}
        hosts.update(f"{sub}.{self.base_domain}" for sub in self.platform_subdomains)
        return frozenset(hosts)

    @property
    def sqlalchemy_url(self) -> str:
        return to_sqlalchemy_url(self.database_url)


_LIST_FIELDS = {"platform_subdomains", "trusted_proxies", "mfa_sealing_keys"}
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_EMAIL = re.compile(r"^[^@\s<>\"(),;:]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")


def to_sqlalchemy_url(url: str) -> str:
    """Accept the libpq form (`postgresql://`) and select the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise SettingsError(f"DATABASE_URL must start with postgresql://, got {url.split(':')[0]!r}")


def to_libpq_url(url: str) -> str:
    return "postgresql://" + to_sqlalchemy_url(url).removeprefix("postgresql+psycopg://")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    for field in msgspec.structs.fields(Settings):
        value = environ.get(field.name.upper())
        if value is None or value == "":
            continue
        if field.name in _LIST_FIELDS:
            raw[field.name] = [item.strip() for item in value.split(",") if item.strip()]
        elif field.name == "jwt_retired_keys":
            raw[field.name] = _key_pairs(value)
        else:
            raw[field.name] = value
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    settings = msgspec.structs.replace(
        settings, base_domain=settings.base_domain.lower().rstrip(".")
    )
    _check(settings)
    return settings


def _key_pairs(value: str) -> list[tuple[str, str]]:
    pairs = []
    for item in (part.strip() for part in value.split(",") if part.strip()):
        kid, sep, secret = item.partition(":")
        if not sep or not kid or len(secret) < 32:
            raise SettingsError(
                "JWT_RETIRED_KEYS is malformed: use kid:key pairs, keys of 32+ characters"
            )
        pairs.append((kid, secret))
    return pairs


def _check(settings: Settings) -> None:
    """What msgspec's types cannot say about a setting."""
    to_sqlalchemy_url(settings.database_url)
    if not all(_LABEL.match(label) for label in settings.base_domain.split(".")):
        raise SettingsError(
            "BASE_DOMAIN must be a bare domain such as clinics.example.com, with no port or path"
        )
    for label in settings.platform_subdomains:
        if not _LABEL.match(label):
            raise SettingsError(f"PLATFORM_SUBDOMAINS is malformed: {label!r} is not a DNS label")
    for entry in settings.trusted_proxies:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise SettingsError(
                f"TRUSTED_PROXIES is malformed: {entry!r} is not an address or network"
            ) from None
    if any(len(key) < 32 for key in settings.mfa_sealing_keys):
        raise SettingsError(
            "MFA_SEALING_KEYS is malformed: comma-separated keys of 32+ characters each "
            "(e.g. `openssl rand -base64 48`)"
        )
    if settings.stripe_api_base and not settings.stripe_api_base.startswith(
        ("https://", "http://")
    ):
        raise SettingsError("STRIPE_API_BASE must be an http(s) address")
    for name in ("twilio_api_base", "meta_graph_api_base"):
        if not getattr(settings, name).startswith(("https://", "http://")):
            raise SettingsError(f"{name.upper()} must be an http(s) address")
    if settings.redis_url and not settings.redis_url.startswith(
        ("redis://", "rediss://", "unix://")
    ):
        raise SettingsError("REDIS_URL must start with redis://, rediss:// or unix://")
    for name in ("messaging_master_key", "messaging_previous_master_key"):
        value = getattr(settings, name)
        if value is not None and master_key_bytes(value) is None:
            raise SettingsError(
                f"{name.upper()} is malformed: use the base64 of exactly 32 random bytes "
                "(e.g. `openssl rand -base64 32`)"
            )
    if settings.messaging_master_key_source == "kms" and not settings.messaging_kms_key_id:
        raise SettingsError("MESSAGING_KMS_KEY_ID is required when MESSAGING_MASTER_KEY_SOURCE=kms")
    _check_platform_providers(settings)


def _check_platform_providers(settings: Settings) -> None:
    if settings.platform_smtp_url is not None:
        smtp_url_parts(settings.platform_smtp_url, settings.platform_smtp_security)
        if settings.platform_email_from is None:
            raise SettingsError("PLATFORM_EMAIL_FROM is required with PLATFORM_SMTP_URL")
    if settings.platform_email_from is not None:
        email_from_parts(settings.platform_email_from)
    twilio = ("platform_twilio_account_sid", "platform_twilio_auth_token", "platform_sms_from")
    given = [name for name in twilio if getattr(settings, name) is not None]
    if given and len(given) < len(twilio):
        missing = next(name for name in twilio if name not in given)
        raise SettingsError(
            f"{missing.upper()} is required with {given[0].upper()}: the platform's Twilio "
            "account needs its SID, auth token and sending number"
        )


@dataclasses.dataclass(frozen=True)
class SmtpUrl:
    host: str
    port: int
    username: str | None
    password: str | None = dataclasses.field(repr=False)


def smtp_url_parts(url: str, security: str) -> SmtpUrl:
    """`smtp://user:password@host:port` taken apart (user and password percent-encoded; the
    port defaults to 465 for `ssl`, else 587). A malformed one is named, never echoed: it may
    hold a password."""
    malformed = SettingsError(
        "PLATFORM_SMTP_URL is malformed: use smtp://user:password@host:port "
        "(user and password percent-encoded), or smtp://host:port for a relay without login"
    )
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        raise malformed from None
    host = parts.hostname or ""
    if (
        parts.scheme != "smtp"
        or not _HOST.match(host)
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or port == 0
    ):
        raise malformed
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if (username is None) != (password is None):
        raise malformed
    if security == "none" and username is not None and not _on_private_network(host):
        raise SettingsError(
            "PLATFORM_SMTP_SECURITY=none would send the PLATFORM_SMTP_URL password unencrypted: "
            "use starttls or ssl (none is only for a relay on a private network)"
        )
    return SmtpUrl(host, port or (465 if security == "ssl" else 587), username, password)


def _on_private_network(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_loopback


def email_from_parts(value: str) -> tuple[str | None, str]:
    """(display name or None, address) of `no-reply@example.com` or `Name <no-reply@...>`."""
    name, address = parseaddr(value)
    if not _EMAIL.match(address) or "<" in name or ">" in name:
        raise SettingsError(
            "PLATFORM_EMAIL_FROM is malformed: use an address, or a name and an address such "
            "as Polyclinic <no-reply@clinics.example.com>"
        )
    return name.strip() or None, address


def master_key_bytes(value: str) -> bytes | None:
    """The 32 bytes of a base64 master key, or None when it is not one."""
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == 32 else None


def _describe(exc: msgspec.ValidationError) -> str:
    message = str(exc)
    if message.startswith("Object missing required field `"):
        name = message.split("`")[1].upper()
        return f"{name} is required but not set (see .env.example)"
    if " - at `$." in message:
        reason, _, where = message.rpartition(" - at `$.")
        name = where.rstrip("`").split("[")[0].upper()
        return f"{name} is malformed: {reason}"
    return message


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
