"""Email through the clinic's own SMTP server (aiosmtplib)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Annotated, Literal

import aiosmtplib
import msgspec

from polyclinic.errors import FieldError
from polyclinic.messaging.channels.providers.base import (
    DisplayName,
    EmailAddress,
    OutgoingMessage,
    refused,
    unanswered,
    unreachable,
)

NAME = "smtp"
TIMEOUT_SECONDS = 30
Host = Annotated[
    str,
    msgspec.Meta(
        max_length=253,
        pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$",
        description="a host name or IPv4 address, e.g. smtp.example.com",
    ),
]


class SmtpSettings(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    host: Host
    from_address: EmailAddress
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 587
    # `starttls` upgrades a plain connection (port 587), `ssl` is TLS from the start (465);
    # `none` is only for a relay on a private network.
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=320)] | None = None
    from_name: DisplayName | None = None


class SmtpSecrets(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)] | None = None


def check(settings: SmtpSettings, secret_names: set[str]) -> list[FieldError]:
    if settings.username is not None and "password" not in secret_names:
        return [FieldError("secrets.password", "is required with settings.username")]
    if settings.username is None and "password" in secret_names:
        return [FieldError("settings.username", "is required with secrets.password")]
    return []


class SmtpProvider:
    name = NAME
    channel = "email"

    def __init__(self, settings: SmtpSettings, secrets: SmtpSecrets) -> None:
        self.settings = settings
        self._password = secrets.password

    def _message(self, message: OutgoingMessage) -> EmailMessage:
        settings = self.settings
        email = EmailMessage()
        email["From"] = formataddr((settings.from_name or "", settings.from_address))
        email["To"] = message.to
        email["Subject"] = message.subject or ""
        email["Date"] = formatdate(usegmt=True)
        # The same on every attempt of a delivery, so a receiving system can spot a repeat.
        domain = settings.from_address.rpartition("@")[2]
        email["Message-ID"] = f"<{message.idempotency_key}@{domain}>"
        email.set_content(message.body)
        return email

    async def send(self, message: OutgoingMessage) -> str:
        email = self._message(message)
        settings = self.settings
        secrets = [self._password or ""]
        try:
            await aiosmtplib.send(
                email,
                hostname=settings.host,
                port=settings.port,
                username=settings.username,
                password=self._password,
                use_tls=settings.security == "ssl",
                start_tls=settings.security == "starttls",
                timeout=TIMEOUT_SECONDS,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            reasons = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise refused("The SMTP server", reasons, secrets) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise refused("The SMTP server", f"{exc.code} {exc.message}", secrets) from None
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPConnectTimeoutError) as exc:
            raise unreachable("The SMTP server", exc) from None
        except (aiosmtplib.SMTPReadTimeoutError, aiosmtplib.SMTPServerDisconnected) as exc:
            raise unanswered("The SMTP server", exc) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise unreachable("The SMTP server", exc) from None
        return str(email["Message-ID"])
