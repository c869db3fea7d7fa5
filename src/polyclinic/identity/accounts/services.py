"""Clinic accounts: registration, sign-in, email verification, password reset and change."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.db.base import utcnow
from polyclinic.db.context import TenantInfo
from polyclinic.errors import Conflict, FieldError, InvalidInput, Unauthorized
from polyclinic.identity.accounts.models import User, UserToken
from polyclinic.identity.accounts.opaque import hash_token, new_token
from polyclinic.identity.accounts.passwords import (
    hash_password,
    password_problem,
    verify_and_update,
    verify_password,
)
from polyclinic.identity.mfa.services import Mfa
from polyclinic.identity.permissions.roles import Role
from polyclinic.identity.sessions.services import IssuedTokens, Sessions
from polyclinic.identity.sessions.throttle import LoginThrottle
from polyclinic.identity.trail import services as trail
from polyclinic.web.caller import Caller
from polyclinic.worker.mail import MailMessage, MailQueue

VERIFY_EMAIL = "verify_email"


RESET_PASSWORD = "reset_password"


# A patient record made by the clinic's staff becomes the patient's own account.
CLAIM_ACCOUNT = "claim_account"


TOKEN_LIFETIMES = {
    VERIFY_EMAIL: datetime.timedelta(days=2),
    RESET_PASSWORD: datetime.timedelta(hours=1),
    CLAIM_ACCOUNT: datetime.timedelta(days=7),
}


WRONG_CREDENTIALS = "The email or password is wrong"


@dataclass(frozen=True)
class Registration:
    email: str
    password: str
    first_name: str
    last_name: str
    phone: str | None = None
    date_of_birth: datetime.date | None = None


def claimable(user: User) -> bool:
    """A patient record with an email and no password yet: its holder can claim it."""
    return (
        user.role == Role.PATIENT
        and user.password_hash is None
        and user.email is not None
        and user.is_active
    )


def check_new_password(password: str, field: str = "password") -> None:
    if problem := password_problem(password):
        raise InvalidInput(f"The password {problem}", [FieldError(field, problem)])


class Accounts:
    def __init__(
        self,
        session: AsyncSession,
        tenant: TenantInfo,
        sessions: Sessions,
        mail: MailQueue,
        throttle: LoginThrottle,
        mfa: Mfa,
    ) -> None:
        self.db = session
        self.tenant = tenant
        self.sessions = sessions
        self.mail = mail
        self.throttle = throttle
        self.mfa = mfa

    async def by_email(self, email: str) -> User | None:
        # Emails are stored lower-case, so equality uses the unique index.
        query = select(User).where(User.email == email.strip().lower())
        return (await self.db.execute(query)).scalar_one_or_none()

    async def register(self, data: Registration, caller: Caller) -> None:
        """A patient signs up; usable at once, email verification follows.

        An address that already has an account gets the same answer (nothing is revealed);
        its holder is told by email instead. When the address belongs to a patient record the
        clinic made and nobody has claimed, the holder is sent the link to claim that record
        instead (no second record is made, and the record is theirs only once they prove the
        address).
        """
        check_new_password(data.password)
        user = User(
            email=data.email.strip().lower(),
            password_hash=await asyncio.to_thread(hash_password, data.password),
            first_name=data.first_name.strip(),
            last_name=data.last_name.strip(),
            phone=data.phone,
            date_of_birth=data.date_of_birth,
            role=Role.PATIENT,
            is_active=True,
        )
        self.db.add(user)
        try:
            await self.db.flush()
        except IntegrityError:
            await self.db.rollback()
            await self._send_already_registered(data.email.strip().lower(), caller)
            await self.db.commit()
            return
        trail.record(self.db, caller, "registered", user_id=user.id, email=user.email)
        token = await self._one_time_token(user, VERIFY_EMAIL)
        await self._send_verification(user, token)
        await self.db.commit()

    async def login(
        self, email: str, password: str, caller: Caller, totp: str | None = None
    ) -> tuple[User, IssuedTokens]:
        email = email.strip().lower()[:320]
        await self.throttle.begin(email, caller.ip)
        user = await self.by_email(email)
        stored = user.password_hash if user is not None else None
        valid, rehashed = await asyncio.to_thread(verify_and_update, password, stored)
        if not valid or user is None:
            user_id = user.id if user else None
            trail.record(self.db, caller, "login_failed", user_id=user_id, email=email)
            if await self.throttle.failed(email, caller.ip):
                trail.record(self.db, caller, "account_locked", user_id=user_id, email=email)
            await self.db.commit()
            raise Unauthorized(WRONG_CREDENTIALS)
        if not user.is_active:
            trail.record(self.db, caller, "login_refused_inactive", user_id=user.id)
            await self.db.commit()
            raise Unauthorized("This account has been deactivated by the clinic")
        if not await self.mfa.passes(user, totp, caller):
            trail.record(self.db, caller, "login_failed", user_id=user.id, email=email, mfa=True)
            if await self.throttle.failed(email, caller.ip):
                trail.record(self.db, caller, "account_locked", user_id=user.id, email=email)
            await self.db.commit()
            raise Unauthorized("The code is wrong", [FieldError("totp", "does not match")])
        await self.throttle.succeeded(email)
        if rehashed is not None:  # made with older parameters: stored again with today's
            user.password_hash = rehashed
        tokens = await self.sessions.start(user, caller)
        trail.record(self.db, caller, "login_succeeded", user_id=user.id)
        await self.db.commit()
        return user, tokens

    async def verify_email(self, token: str, caller: Caller) -> User:
        user = await self._spend(token, VERIFY_EMAIL)
        user.email_verified_at = user.email_verified_at or utcnow()
        trail.record(self.db, caller, "email_verified", user_id=user.id)
        await self.db.commit()
        return user

    async def resend_verification(self, user: User) -> None:
        if user.email_verified_at is not None:
            raise Conflict("This email address is already verified")
        token = await self._one_time_token(user, VERIFY_EMAIL)
        await self._send_verification(user, token)
        await self.db.commit()

    async def forgot_password(self, email: str, caller: Caller) -> None:
        """The caller learns nothing: the same answer whether or not the account exists."""
        user = await self.by_email(email)
        if user is None or not user.is_active:
            return
        token = await self._one_time_token(user, RESET_PASSWORD)
        trail.record(self.db, caller, "password_reset_requested", user_id=user.id)
        # In the token's own transaction, its code sealed: sent once this commits.
        await self.mail.add(
            self.db,
            MailMessage(
                clinic=self.tenant,
                kind="password_reset",
                to=user.email,
                recipient_id=user.id,
                values={"name": full_name(user)},
                token=token,
            ),
        )
        await self.db.commit()

    async def reset_password(self, token: str, new_password: str, caller: Caller) -> None:
        check_new_password(new_password)
        user = await self._spend(token, RESET_PASSWORD)
        user.password_hash = await asyncio.to_thread(hash_password, new_password)
        await self.sessions.end_all(user.id, "password_reset")
        trail.record(self.db, caller, "password_reset", user_id=user.id)
        await self.db.commit()

    async def confirm_password(
        self, user: User, password: str, caller: Caller, field: str = "password"
    ) -> None:
        """For changes a signed-in user makes: guesses count towards the lockout too."""
        await self.throttle.begin(user.email, caller.ip)
        if not await asyncio.to_thread(verify_password, password, user.password_hash):
            await self.throttle.failed(user.email, caller.ip)
            raise InvalidInput("The password is wrong", [FieldError(field, "is wrong")])
        await self.throttle.succeeded(user.email)

    async def change_password(
        self, user: User, current: str, new_password: str, session_id: uuid.UUID, caller: Caller
    ) -> None:
        check_new_password(new_password, "newPassword")
        await self.confirm_password(user, current, caller, "currentPassword")
        user.password_hash = await asyncio.to_thread(hash_password, new_password)
        ended = await self.sessions.end_all(user.id, "password_changed", keep=session_id)
        trail.record(self.db, caller, "password_changed", user_id=user.id, ended_sessions=ended)
        await self.db.commit()

    async def _one_time_token(self, user: User, purpose: str) -> str:
        # A new token replaces any unused one of the same purpose.
        await self.db.execute(
            update(UserToken)
            .where(UserToken.user_id == user.id, UserToken.purpose == purpose)
            .where(UserToken.used_at.is_(None))
            .values(used_at=utcnow())
        )
        token, token_hash = new_token()
        self.db.add(
            UserToken(
                user_id=user.id,
                purpose=purpose,
                token_hash=token_hash,
                expires_at=utcnow() + TOKEN_LIFETIMES[purpose],
            )
        )
        return token

    async def _spend(self, token: str, purpose: str) -> User:
        row = (
            await self.db.execute(
                select(UserToken, User)
                .join(User, User.id == UserToken.user_id)
                .where(UserToken.token_hash == hash_token(token), UserToken.purpose == purpose)
                .with_for_update(of=UserToken)
            )
        ).first()
        if row is None or row[0].used_at is not None or row[0].expires_at <= utcnow():
            raise InvalidInput(
                "This link is invalid or has expired; ask for a new one",
                [FieldError("token", "is invalid or expired")],
            )
        user_token, user = row
        user_token.used_at = utcnow()
        return user

    async def offer_claim(
        self, user: User, caller: Caller, actor_id: uuid.UUID | None = None
    ) -> None:
        """Mail the holder of a patient record a link to claim it by choosing a password;
        commits. A new link replaces an unused one."""
        if not claimable(user) or user.email is None:
            raise Conflict("This record cannot be claimed: it has an account or no email")
        token = await self._one_time_token(user, CLAIM_ACCOUNT)
        trail.record(self.db, caller, "account_claim_offered", user_id=user.id, actor_id=actor_id)
        # In the token's own transaction, its code sealed: sent once this commits.
        await self.mail.add(
            self.db,
            MailMessage(
                clinic=self.tenant,
                kind="account_claim",
                to=user.email,
                recipient_id=user.id,
                values={"name": full_name(user)},
                token=token,
            ),
        )
        await self.db.commit()

    async def claim_account(self, token: str, password: str, caller: Caller) -> User:
        """The patient sets their password with the emailed token: the record the clinic
        made is their account from now on, its address confirmed by the mail."""
        check_new_password(password)
        user = await self._spend(token, CLAIM_ACCOUNT)
        if not claimable(user):
            raise InvalidInput(
                "This link is invalid or has expired; ask for a new one",
                [FieldError("token", "is invalid or expired")],
            )
        user.password_hash = await asyncio.to_thread(hash_password, password)
        user.email_verified_at = user.email_verified_at or utcnow()
        trail.record(self.db, caller, "account_claimed", user_id=user.id, email=user.email)
        await self.db.commit()
        return user

    async def _send_already_registered(self, email: str, caller: Caller) -> None:
        holder = await self.by_email(email)
        if holder is None:  # deleted meanwhile
            return
        if claimable(holder):
            await self.offer_claim(holder, caller)
            return
        await self.mail.add(
            self.db,
            MailMessage(
                clinic=self.tenant,
                kind="already_registered",
                to=email,
                recipient_id=holder.id,
            ),
        )

    async def _send_verification(self, user: User, token: str) -> None:
        await self.mail.add(
            self.db,
            MailMessage(
                clinic=self.tenant,
                kind="email_verification",
                to=user.email,
                recipient_id=user.id,
                values={"name": full_name(user)},
                token=token,
            ),
        )


def full_name(user: User) -> str:
    return f"{user.first_name} {user.last_name}".strip()
