"""The platform's own providers, lent to a clinic that has none for a channel when its plan
includes them: email through the platform's SMTP server (`PLATFORM_SMTP_URL`), SMS through the
platform's Twilio account (`PLATFORM_TWILIO_*`, and only while the clinic is in good standing
with its subscription). Built from the settings; their secrets are never logged or returned.
"""

from __future__ import annotations

import logging

from polyclinic.config import Settings, email_from_parts, smtp_url_parts
from polyclinic.messaging.channels.providers import OutgoingMessage, Provider
from polyclinic.messaging.channels.providers.smtp import SmtpProvider, SmtpSecrets, SmtpSettings
from polyclinic.messaging.channels.providers.twilio import (
    TwilioProvider,
    TwilioSecrets,
    TwilioSmsSettings,
)

# The plan feature that lends each channel's platform provider to a clinic.
PLATFORM_FEATURES = {"email": "platformEmail", "sms": "platformSms"}
# Channels the platform lends only to clinics in good standing with their subscription (it
# pays per text message). Email stays: a lapsed clinic's admin still gets a password reset.
STANDING_REQUIRED = frozenset({"sms"})

dev_logger = logging.getLogger("polyclinic.messaging.dev_mail")


class LogEmailProvider:
    """Development only (`polyclinic dev` without PLATFORM_SMTP_URL): each email is written to
    the log, links and codes included, so a developer can follow them."""

    name = "log"
    channel = "email"

    async def send(self, message: OutgoingMessage) -> str:
        dev_logger.info(
            "email to %s (not sent: development log)\nSubject: %s\n\n%s",
            message.to,
            message.subject or "",
            message.body,
        )
        return f"<{message.idempotency_key}@log>"


def platform_provider(settings: Settings, channel: str, clinic_name: str) -> Provider | None:
    """The platform's provider for `channel`, or None when it has none. Email shows the
    sender's name of PLATFORM_EMAIL_FROM, else the clinic's name."""
    if channel == "email":
        if settings.platform_smtp_url is not None and settings.platform_email_from is not None:
            server = smtp_url_parts(settings.platform_smtp_url, settings.platform_smtp_security)
            from_name, from_address = email_from_parts(settings.platform_email_from)
            return SmtpProvider(
                SmtpSettings(
                    host=server.host,
                    from_address=from_address,
                    port=server.port,
                    security=settings.platform_smtp_security,
                    username=server.username,
                    from_name=from_name or clinic_name,
                ),
                SmtpSecrets(password=server.password),
            )
        if settings.dev_mail_to_log:
            return LogEmailProvider()
        return None
    if channel == "sms":
        sid, token = settings.platform_twilio_account_sid, settings.platform_twilio_auth_token
        if sid is None or token is None or settings.platform_sms_from is None:
            return None
        return TwilioProvider(
            "sms",
            TwilioSmsSettings(account_sid=sid, from_number=settings.platform_sms_from),
            TwilioSecrets(auth_token=token),
            settings.twilio_api_base,
        )
    return None
