"""Platform operators: creating super-admins and checking their credentials."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.config import Settings
from polyclinic.errors import Conflict, FieldError, InvalidInput, Unauthorized
from polyclinic.identity.accounts.passwords import (
    hash_password,
    password_problem,
    verify_and_update,
    verify_password,
)
from polyclinic.identity.sessions.throttle import LoginThrottle
from polyclinic.platform.mfa import PlatformMfa
from polyclinic.platform.models import PlatformUser

MIN_PASSWORD_LENGTH = 12


class PlatformUsers:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create_admin(self, email: str, password: str) -> PlatformUser:
        email = email.strip().lower()
        problem = (
            f"must be at least {MIN_PASSWORD_LENGTH} characters"
            if len(password) < MIN_PASSWORD_LENGTH
            else password_problem(password)
        )
        if problem:
            raise InvalidInput(f"The password {problem}", [FieldError("password", problem)])
        if await self.by_email(email) is not None:
            raise Conflict(f"A platform user {email} already exists")
        user = PlatformUser(
            email=email,
            password_hash=await asyncio.to_thread(hash_password, password),
            is_active=True,
        )
        self.session.add(user)
        await self.session.commit()
        return user

    async def authenticate(self, email: str, password: str) -> PlatformUser:
        user = await self.by_email(email.strip().lower())
        # The same hash work is done when there is no such user.
        valid, rehashed = await asyncio.to_thread(
            verify_and_update, password, user.password_hash if user else None
        )
        if user is None or not valid or not user.is_active:
            raise Unauthorized("The email or password is wrong")
        if rehashed is not None:  # made with older parameters: stored again with today's
            user.password_hash = rehashed
            await self.session.commit()
        return user

    async def sign_in(
        self,
        email: str,
        password: str,
        totp: str | None,
        throttle: LoginThrottle,
        ip: str | None,
        settings: Settings,
    ) -> PlatformUser:
        """Password, then the second factor when on; failures count towards a lockout."""
        email = email.strip().lower()
        await throttle.begin(email, ip)
        try:
            user = await self.authenticate(email, password)
        except Unauthorized:
            await throttle.failed(email, ip)
            raise
        if not await PlatformMfa(self.session, settings).passes(user, totp):
            await throttle.failed(email, ip)
            raise Unauthorized("The code is wrong", [FieldError("totp", "does not match")])
        await throttle.succeeded(email)
        return user

    async def confirm_password(
        self, user: PlatformUser, password: str, throttle: LoginThrottle, ip: str | None
    ) -> None:
        await throttle.begin(user.email, ip)
        if not await asyncio.to_thread(verify_password, password, user.password_hash):
            await throttle.failed(user.email, ip)
            raise InvalidInput("The password is wrong", [FieldError("password", "is wrong")])
        await throttle.succeeded(user.email)

    async def get_active(self, user_id: object) -> PlatformUser | None:
        user = await self.session.get(PlatformUser, user_id)
        return user if user is not None and user.is_active else None

    async def by_email(self, email: str) -> PlatformUser | None:
        query = select(PlatformUser).where(func.lower(PlatformUser.email) == email)
        return (await self.session.execute(query)).scalar_one_or_none()
