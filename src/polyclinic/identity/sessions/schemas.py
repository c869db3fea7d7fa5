"""Request and response bodies of sign-in and sessions (camelCase on the wire)."""

import datetime
import uuid
from typing import Annotated

import msgspec

from polyclinic.identity.accounts.schemas import Password, Token, UserOut
from polyclinic.identity.sessions.models import AuthSession
from polyclinic.web.openapi import published_as


@published_as("polyclinic.identity.schemas")
class LoginRequest(msgspec.Struct, rename="camel"):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=320)]
    password: Password
    totp: Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z-]{6,20}$")] | None = None
    use_cookies: bool = False


class RefreshRequest(msgspec.Struct, rename="camel"):
    refresh_token: Token | None = None


@published_as("polyclinic.identity.schemas")
class TokenPair(msgspec.Struct, rename="camel"):
    """With `useCookies`, the tokens travel only in HTTP-only cookies and are null here."""

    access_token: str | None
    refresh_token: str | None
    expires_in: int
    user: UserOut
    mfa_enrolment_required: bool = False
    token_type: str = "Bearer"


@published_as("polyclinic.identity.schemas")
class SessionOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    created_at: datetime.datetime
    last_seen_at: datetime.datetime
    expires_at: datetime.datetime
    ip: str | None
    user_agent: str | None
    current: bool


def session_out(auth_session: AuthSession, current: uuid.UUID) -> SessionOut:
    return SessionOut(
        id=auth_session.id,
        created_at=auth_session.created_at,
        last_seen_at=auth_session.last_seen_at,
        expires_at=auth_session.expires_at,
        ip=auth_session.ip,
        user_agent=auth_session.user_agent,
        current=auth_session.id == current,
    )
