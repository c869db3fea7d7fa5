"""Sign-in sessions: short-lived access tokens plus refresh tokens rotated on every use.

A session is one signed-in device. Each refresh spends its token and hands out the next;
presenting a spent token again means it was stolen or replayed, so the whole session ends
(reuse detection). A session ends after `SESSION_IDLE_TIMEOUT` without a refresh and after
`SESSION_MAX_AGE` in any case.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.context import TenantInfo
from polyclinic.errors import NotFound, Unauthorized
from polyclinic.identity.accounts.models import User
from polyclinic.identity.accounts.opaque import hash_token, new_token
from polyclinic.identity.sessions.models import AuthSession, RefreshToken
from polyclinic.identity.trail import services as trail
from polyclinic.web.caller import Caller
from polyclinic.web.tokens import TokenSigner, clinic_audience

SESSION_ENDED = "Your session has ended; sign in again"


REUSE_GRACE = datetime.timedelta(seconds=10)


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: uuid.UUID


class Sessions:
    def __init__(
        self, session: AsyncSession, tenant: TenantInfo, settings: Settings, signer: TokenSigner
    ) -> None:
        self.db = session
        self.tenant = tenant
        self.settings = settings
        self.signer = signer

    async def start(self, user: User, caller: Caller) -> IssuedTokens:
        now = utcnow()
        auth_session = AuthSession(
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + datetime.timedelta(seconds=self.settings.session_max_age),
            ip=caller.ip,
            user_agent=(caller.user_agent or "")[:300] or None,
        )
        self.db.add(auth_session)
        await self.db.flush()
        return self._issue(user, auth_session)

    async def refresh(self, refresh_token: str, caller: Caller) -> tuple[User, IssuedTokens]:
        row = (
            await self.db.execute(
                select(RefreshToken, AuthSession, User)
                .join(AuthSession, AuthSession.id == RefreshToken.session_id)
                .join(User, User.id == AuthSession.user_id)
                .where(RefreshToken.token_hash == hash_token(refresh_token))
                .with_for_update(of=RefreshToken)
            )
        ).first()
        if row is None:
            raise Unauthorized(SESSION_ENDED)
        token, auth_session, user = row
        now = utcnow()
        if token.used_at is not None and now - token.used_at < REUSE_GRACE:
            # Two tabs (or a retry) refreshing at once: not theft, so nothing is revoked.
            raise Unauthorized("This refresh token was just used; use the newest one")
        if token.used_at is not None:
            await self._end(auth_session, "refresh_token_reused")
            trail.record(
                self.db,
                caller,
                "refresh_token_reused",
                user_id=user.id,
                session_id=str(auth_session.id),
            )
            await self.db.commit()
            raise Unauthorized("This sign-in was ended because an old token was used again")
        if not self._alive(auth_session, now) or not user.is_active:
            raise Unauthorized(SESSION_ENDED)
        token.used_at = now
        auth_session.last_seen_at = now
        issued = self._issue(user, auth_session)
        return user, issued

    async def check(self, user_id: uuid.UUID, session_id: uuid.UUID) -> User:
        """The user behind a valid access token, if their session and account still stand."""
        row = (
            await self.db.execute(
                select(User, AuthSession)
                .join(AuthSession, AuthSession.user_id == User.id)
                .where(User.id == user_id, AuthSession.id == session_id)
            )
        ).first()
        if row is None:
            raise Unauthorized(SESSION_ENDED)
        user, auth_session = row
        if not user.is_active or not self._alive(auth_session, utcnow()):
            raise Unauthorized(SESSION_ENDED)
        return user

    async def list_active(self, user_id: uuid.UUID) -> list[AuthSession]:
        now = utcnow()
        rows = await self.db.execute(
            select(AuthSession)
            .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
            .order_by(AuthSession.last_seen_at.desc())
        )
        return [s for s in rows.scalars() if self._alive(s, now)]

    async def end(self, user_id: uuid.UUID, session_id: uuid.UUID, reason: str) -> None:
        auth_session = await self.db.get(AuthSession, session_id)
        if auth_session is None or auth_session.user_id != user_id:
            raise NotFound("You have no such session")
        await self._end(auth_session, reason)

    async def end_all(
        self, user_id: uuid.UUID, reason: str, *, keep: uuid.UUID | None = None
    ) -> int:
        query = update(AuthSession).where(
            AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
        )
        if keep is not None:
            query = query.where(AuthSession.id != keep)
        result = await self.db.execute(query.values(revoked_at=utcnow(), revoked_reason=reason))
        return result.rowcount or 0

    async def _end(self, auth_session: AuthSession, reason: str) -> None:
        if auth_session.revoked_at is None:
            auth_session.revoked_at = utcnow()
            auth_session.revoked_reason = reason
            await self.db.flush()

    def _alive(self, auth_session: AuthSession, now: datetime.datetime) -> bool:
        idle_limit = auth_session.last_seen_at + datetime.timedelta(
            seconds=self.settings.session_idle_timeout
        )
        return (
            auth_session.revoked_at is None and now < auth_session.expires_at and now < idle_limit
        )

    def _issue(self, user: User, auth_session: AuthSession) -> IssuedTokens:
        refresh_token, token_hash = new_token()
        self.db.add(RefreshToken(session_id=auth_session.id, token_hash=token_hash))
        access = self.signer.issue(
            user.id,
            clinic_audience(self.tenant.id),
            role=user.role,
            sid=str(auth_session.id),
            cid=str(self.tenant.id),
        )
        return IssuedTokens(access, refresh_token, self.signer.ttl, auth_session.id)
