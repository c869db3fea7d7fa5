"""Outgoing mail through one small interface.

Routes hand a message to the `MailQueue` and return; delivery happens after, so nothing in
an auth route waits on (or fails because of) a mail server. Until a clinic has its own
providers, the development sender writes each message to the log.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger("polyclinic.mail")


@dataclass(frozen=True)
class MailMessage:
    clinic_id: str
    to: str
    subject: str
    body: str
    kind: str


class Mailer(Protocol):
    async def send(self, message: MailMessage) -> None: ...


class LogMailer:
    """Writes each message to the log instead of sending it."""

    async def send(self, message: MailMessage) -> None:
        logger.info(
            "mail for clinic %s to %s (%s): %s\n%s",
            message.clinic_id,
            message.to,
            message.kind,
            message.subject,
            message.body,
        )


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
        except Exception:
            logger.exception(
                "mail %s for clinic %s to %s could not be delivered",
                message.kind,
                message.clinic_id,
                message.to,
            )

    async def drain(self) -> None:
        """Wait for everything queued so far (shutdown, tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
