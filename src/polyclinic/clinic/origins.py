"""The origins whose pages may call the clinic's API from a browser (CORS), kept on the
clinic's profile: `https://host[:port]` each, no wildcard, no path; none by default.

`ProfileOrigins` is the app's `ClinicOrigins`: each clinic's list read from its own schema,
cached per process for the tenant cache's time and forgotten at once when the clinic's admin
changes it (other processes see the change within that time).
"""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from polyclinic.clinic.models import ClinicProfile
from polyclinic.clinic.services import ClinicProfiles
from polyclinic.db.context import TenantInfo
from polyclinic.db.session import clinic_session
from polyclinic.errors import FieldError, InvalidInput
from polyclinic.tenancy.resolver import is_domain_name

MAX_ORIGINS = 20
_MAX_CACHED = 10_000


def normalized_origin(value: str) -> str:
    """`https://Book.Example.com:443` -> `https://book.example.com`; ValueError saying what is
    wrong otherwise."""
    text = value.strip()
    if "*" in text:
        raise ValueError("wildcards are not allowed: name each origin")
    parts = urlsplit(text)
    if parts.scheme.lower() != "https":
        raise ValueError("must start with https://")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry a user name or password")
    if parts.path not in ("", "/") or parts.query or parts.fragment or text.endswith("/"):
        raise ValueError("must be scheme://host[:port], with no path, query or trailing slash")
    host = (parts.hostname or "").rstrip(".")
    if not is_domain_name(host):
        raise ValueError("must name a domain, such as https://www.riverside-clinic.com")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has a port that is not a number from 1 to 65535") from None
    if port == 0:
        raise ValueError("has a port that is not a number from 1 to 65535")
    return f"https://{host}" if port in (None, 443) else f"https://{host}:{port}"


def normalized_origins(values: list[str]) -> list[str]:
    """Each origin checked and normalized, duplicates dropped; 422 naming `origins[i]`."""
    if len(values) > MAX_ORIGINS:
        raise InvalidInput(
            f"A clinic may allow at most {MAX_ORIGINS} origins",
            [FieldError("origins", f"has more than {MAX_ORIGINS} entries")],
        )
    origins: list[str] = []
    for index, value in enumerate(values):
        try:
            origin = normalized_origin(value)
        except ValueError as exc:
            field = f"origins[{index}]"
            raise InvalidInput(f"{field} {exc}", [FieldError(field, str(exc))]) from None
        if origin not in origins:
            origins.append(origin)
    return origins


async def set_allowed_origins(session: AsyncSession, values: list[str]) -> list[str]:
    origins = normalized_origins(values)
    profile = await ClinicProfiles(session).update({"allowed_origins": origins})
    return list(profile.allowed_origins)


class ProfileOrigins:
    """Each clinic's allowed origins from its profile, with a per-process cache."""

    def __init__(self, engine: AsyncEngine, ttl_seconds: float) -> None:
        self.engine = engine
        self.ttl = ttl_seconds
        self._cache: dict[uuid.UUID, tuple[float, frozenset[str]]] = {}

    async def allowed(self, clinic: TenantInfo) -> frozenset[str]:
        now = time.monotonic()
        cached = self._cache.get(clinic.id)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with clinic_session(self.engine, clinic) as session:
            stored = await session.scalar(
                select(ClinicProfile.allowed_origins).order_by(ClinicProfile.created_at).limit(1)
            )
        origins = frozenset(stored or ())
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
        self._cache[clinic.id] = (now + self.ttl, origins)
        return origins

    def forget(self, clinic_id: uuid.UUID) -> None:
        self._cache.pop(clinic_id, None)
