"""Account mail (email verification, password reset, staff invitations) through one small
interface.

Routes hand a message to the `MailQueue` after their commit and return; sending happens after,
so nothing in an auth route waits on (or fails because of) a mail server. The app's `Mailer`
sends through the clinic's email provider (`polyclinic.messaging.account_mail`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from polyclinic.db.context import TenantInfo

logger = logging.getLogger("polyclinic.mail")


@dataclass(frozen=True)
class MailMessage:
    """One account mail to one address: the clinic's template of `kind`, rendered with
    `values`. `token` is the one-time code its link carries; it is never logged or stored.
    `recipient_id` is the user's id, or the invitation's."""

    clinic: TenantInfo
    kind: str
    to: str
    recipient_id: uuid.UUID
    values: Mapping[str, str] = field(default_factory=dict)
    token: str | None = field(default=None, repr=False)


class Mailer(Protocol):
    async def send(self, message: MailMessage) -> None: ...


class MailQueue:
    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer
        self._pending: set[asyncio.Task[None]] = set()

    def enqueue(self, message: MailMessage) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, message: MailMessage) -> None:
        try:
            await self.mailer.send(message)
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
