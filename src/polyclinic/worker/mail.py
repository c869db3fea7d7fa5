"""Account mail (email verification, password reset, staff invitations) through the outbox.

A route adds its mail to the clinic's outbox in its own transaction (`MailQueue.add`): an
`account.<kind>` event carrying the address, the template's values and the one-time code,
sealed under the clinic's key by the injected `TokenSealer` (messaging owns the keys). Once
that transaction commits the mail is sent at once, in this process, after the response; if
the process stops first, the outbox relay sends it, as every other message. The code is
erased from the event once the mail is sent. Without a key to seal under (no master key) the
code stays in this process only: should it stop before sending, the mail is lost and the
person asks for a new one.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from polyclinic.db.base import utcnow
from polyclinic.db.context import TenantInfo
from polyclinic.db.session import clinic_session
from polyclinic.worker.outbox import OutboxEvent

logger = logging.getLogger("polyclinic.mail")

# The outbox event of an account mail is `account.<kind>`.
EVENT_PREFIX = "account."
# Mail added to a session's transaction, sent once it commits.
_AFTER_COMMIT = "account_mail_after_commit"


@dataclass(frozen=True)
class MailMessage:
    """One account mail to one address: the clinic's template of `kind`, rendered with
    `values`. `token` is the one-time code its link carries; it is never logged, and stored
    only sealed. `recipient_id` is the user's id, or the invitation's."""

    clinic: TenantInfo
    kind: str
    to: str
    recipient_id: uuid.UUID
    values: Mapping[str, str] = field(default_factory=dict)
    token: str | None = field(default=None, repr=False)


class TokenSealer(Protocol):
    """Seals a one-time code under the session's clinic's key, bound to its outbox event.
    None when the clinic's key cannot seal (no master key): the code is then not kept."""

    async def seal(self, session: AsyncSession, event_id: uuid.UUID, token: str) -> str | None: ...


class Mailer(Protocol):
    """Sends the mail of an outbox event now (the code given, in case it was not kept)."""

    async def send(self, message: MailMessage, event_id: uuid.UUID) -> None: ...


class MailQueue:
    def __init__(
        self,
        mailer: Mailer,
        *,
        sealer: TokenSealer | None = None,
        engine: AsyncEngine | None = None,
    ) -> None:
        self.mailer = mailer
        self.sealer = sealer
        self.engine = engine
        self._pending: set[asyncio.Task[None]] = set()

    async def add(self, session: AsyncSession, message: MailMessage) -> uuid.UUID:
        """The mail's outbox event, in the session's transaction; sent once it commits."""
        event_id = uuid.uuid4()
        payload: dict[str, Any] = {
            "recipientId": str(message.recipient_id),
            "to": message.to,
            "values": dict(message.values),
        }
        sealed = None
        if message.token is not None and self.sealer is not None:
            sealed = await self.sealer.seal(session, event_id, message.token)
        if sealed is not None:
            payload["token"] = sealed
        now = utcnow()
        session.add(
            OutboxEvent(
                id=event_id,
                kind=EVENT_PREFIX + message.kind,
                subject_id=message.recipient_id,
                payload=payload,
                created_at=now,
                # A code only this process has: the relay leaves the event to it, unless it
                # is unfinished long after (the process stopped), and then says so.
                relayed_at=now if message.token is not None and sealed is None else None,
            )
        )
        after_commit = session.info.setdefault(_AFTER_COMMIT, [])
        after_commit.append((self, message, event_id))
        return event_id

    async def add_now(self, clinic: TenantInfo, message: MailMessage) -> None:
        """`add` in a transaction of its own (after a clinic is created)."""
        if self.engine is None:
            raise RuntimeError("this mail queue has no engine")
        async with clinic_session(self.engine, clinic) as session:
            await self.add(session, message)
            await session.commit()

    def send_soon(self, message: MailMessage, event_id: uuid.UUID) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(message, event_id))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, message: MailMessage, event_id: uuid.UUID) -> None:
        try:
            await self.mailer.send(message, event_id)
        except Exception as exc:
            # No traceback: nothing of the message beyond its kind and clinic reaches the log.
            logger.error(
                "%s mail for clinic %s could not be delivered (%s)",
                message.kind,
                message.clinic.id,
                type(exc).__name__,
            )

    async def drain(self) -> None:
        """Wait for everything queued so far (shutdown, tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)


@event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    for queue, message, event_id in session.info.pop(_AFTER_COMMIT, ()):
        queue.send_soon(message, event_id)


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)
