"""Subdomain rules, and the schema and role names that derive from a clinic's id."""

from __future__ import annotations

import re
import uuid
import zoneinfo

from polyclinic.config import Settings
from polyclinic.errors import FieldError, InvalidInput

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
MIN_LENGTH = 3
MAX_LENGTH = 40
RESERVED_SUBDOMAINS = frozenset(
    {
        "www",
        "api",
        "admin",
        "platform",
        "app",
        "apps",
        "mail",
        "email",
        "smtp",
        "imap",
        "pop",
        "static",
        "assets",
        "cdn",
        "media",
        "files",
        "docs",
        "help",
        "support",
        "status",
        "billing",
        "webhooks",
        "auth",
        "login",
        "account",
        "accounts",
        "dashboard",
        "console",
        "ns1",
        "ns2",
        "dns",
        "ftp",
        "vpn",
        "internal",
        "localhost",
        "root",
        "system",
        "staging",
        "stage",
        "dev",
        "test",
    }
)


def subdomain_problem(subdomain: str, extra_reserved: tuple[str, ...] = ()) -> str | None:
    """Why `subdomain` cannot name a clinic, or None when it can."""
    if not MIN_LENGTH <= len(subdomain) <= MAX_LENGTH:
        return f"must be {MIN_LENGTH} to {MAX_LENGTH} characters long"
    if not _LABEL.match(subdomain):
        return (
            "may hold only lowercase letters, digits and hyphens, "
            "and may not start or end with a hyphen"
        )
    if subdomain.startswith("xn--"):
        return "may not be an internationalised (xn--) label"
    if subdomain in RESERVED_SUBDOMAINS or subdomain in extra_reserved:
        return "is reserved by the platform"
    return None


def check_subdomain(subdomain: str, extra_reserved: tuple[str, ...] = ()) -> None:
    problem = subdomain_problem(subdomain, extra_reserved)
    if problem:
        raise InvalidInput(
            f"The subdomain {subdomain!r} {problem}", [FieldError("subdomain", problem)]
        )


def check_timezone(name: str) -> None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"Unknown time zone {name!r}",
            [FieldError("timezone", "must be an IANA time zone such as Europe/Berlin")],
        ) from None


def schema_name_for(tenant_id: uuid.UUID) -> str:
    """`clinic_<12 hex>`: fixed for life, whatever the clinic's subdomain becomes."""
    return f"clinic_{tenant_id.hex[:12]}"


def clinic_host(settings: Settings, subdomain: str) -> str:
    return f"{subdomain}.{settings.base_domain}"


def clinic_url(settings: Settings, subdomain: str, path: str = "") -> str:
    """A public address on the clinic's own host, as people and Stripe reach it."""
    return f"{settings.public_url_scheme}://{clinic_host(settings, subdomain)}{path}"
