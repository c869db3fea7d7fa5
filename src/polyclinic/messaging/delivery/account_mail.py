"""Account mail (email verification, password reset, staff invitations, a patient's
invitation to claim the record the clinic made): what delivery needs to send it as any other
outbox event, through the clinic's email provider, else the platform's default where the
clinic's plan allows, in the clinic's own wording.

The event (`account.<kind>`, written by identity through `polyclinic.worker.mail`) carries
the address, the template's values and the one-time code, sealed under the clinic's data key
(`AccountMailTokens`) and bound to that event, so a copy in another row or clinic does not
open. The code is erased from the event once its mail is sent (or can no longer be), and
from any event older than the longest-lived code.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.config import Settings
from polyclinic.db.context import TenantInfo
from polyclinic.errors import DomainError
from polyclinic.identity.accounts.services import TOKEN_LIFETIMES
from polyclinic.identity.staff.invitations import INVITATION_LIFETIME
from polyclinic.messaging.keys.services import Sealed, secret_box_for
from polyclinic.tenancy.naming import clinic_url
from polyclinic.worker.mail import EVENT_PREFIX
from polyclinic.worker.outbox import OutboxEvent

logger = logging.getLogger("polyclinic.messaging")

# The template kinds of account mail (also the deliveries' `kind`), and the page of the
# clinic's site each one's link opens; the token goes in its query.
ACCOUNT_MAIL_LINKS = {
    "email_verification": "/verify-email",
    "password_reset": "/reset-password",
    "staff_invitation": "/accept-invitation",
    "already_registered": "/forgot-password",
    "account_claim": "/claim-account",
}
ACCOUNT_MAIL_KINDS = frozenset(ACCOUNT_MAIL_LINKS)
# Those whose link carries a one-time code.
NEEDS_TOKEN = frozenset(ACCOUNT_MAIL_KINDS - {"already_registered"})
# A sealed code is never kept longer than any code lives.
TOKEN_KEPT_AT_MOST = max(INVITATION_LIFETIME, *TOKEN_LIFETIMES.values())
TOKEN_KEY = "token"

__all__ = ["ACCOUNT_MAIL_KINDS", "EVENT_PREFIX", "AccountMailTokens", "account_mail_kind"]

# Sealed under the clinic's data key as a secret of this (channel, provider, name=event id).
_CHANNEL, _PROVIDER = "email", "account_mail"


def account_mail_kind(event: OutboxEvent) -> str | None:
    """The template kind of an account mail's event, else None."""
    kind = event.kind.removeprefix(EVENT_PREFIX)
    return kind if event.kind.startswith(EVENT_PREFIX) and kind in ACCOUNT_MAIL_KINDS else None


class AccountMailTokens:
    """The `TokenSealer` identity's mail is given: one-time codes under the clinic's key."""

    def __init__(self, settings: Settings) -> None:
        self.box = secret_box_for(settings)

    async def seal(self, session: AsyncSession, event_id: uuid.UUID, token: str) -> str | None:
        if not self.box.keyring.configured:
            return None
        try:
            sealed = await self.box.seal(
                session, _CHANNEL, _PROVIDER, token.encode(), name=str(event_id)
            )
        except DomainError as exc:  # a key that does not unwrap, KMS out of reach
            logger.warning("an account mail's code is not kept (%s)", exc.message)
            return None
        return f"{sealed.key_version}:{base64.b64encode(sealed.blob).decode()}"

    async def open(self, session: AsyncSession, event: OutboxEvent) -> str | None:
        """The event's code, if it still has one; raises `SecretUnreadable` for a code
        that does not open here."""
        kept = event.payload.get(TOKEN_KEY)
        if not isinstance(kept, str):
            return None
        version, _, blob = kept.partition(":")
        try:
            sealed = Sealed(int(version), base64.b64decode(blob, validate=True))
        except (ValueError, binascii.Error):
            sealed = Sealed(0, b"")
        opened = await self.box.open(session, _CHANNEL, _PROVIDER, sealed, name=str(event.id))
        return opened.decode()


def account_mail_values(
    settings: Settings, clinic: TenantInfo, kind: str, event: OutboxEvent, token: str | None
) -> dict[str, Any]:
    """The template's values: those the event carries, the clinic's name, and the link."""
    path = ACCOUNT_MAIL_LINKS[kind]
    if token is not None:
        path = f"{path}?token={token}"
    return {
        **event.payload.get("values", {}),
        "clinic_name": clinic.name,
        "link": clinic_url(settings, clinic.slug, path),
    }
