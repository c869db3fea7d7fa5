"""SMS and WhatsApp through Twilio's Messages API, with the clinic's own account."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import msgspec

from polyclinic.messaging.channels.providers.base import (
    E164,
    OutgoingMessage,
    PhoneNumber,
    json_or_none,
    refused,
    unanswered,
    unreachable,
)
from polyclinic.messaging.channels.providers.http import AFTER_SENDING, http_client

NAME = "twilio"
AccountSid = Annotated[
    str, msgspec.Meta(pattern=r"^AC[0-9a-fA-F]{32}$", description="AC followed by 32 hex digits")
]
AuthToken = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-fA-F]{32}$", description="32 hex digits")]
WhatsAppNumber = Annotated[
    str,
    msgspec.Meta(
        pattern=f"^whatsapp:{E164}$",
        description="whatsapp: and an E.164 number, e.g. whatsapp:+14155238886",
    ),
]


class TwilioSmsSettings(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    account_sid: AccountSid
    from_number: PhoneNumber


class TwilioWhatsAppSettings(
    msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True
):
    account_sid: AccountSid
    from_number: WhatsAppNumber


class TwilioSecrets(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    auth_token: AuthToken


class TwilioProvider:
    name = NAME

    def __init__(
        self,
        channel: str,
        settings: TwilioSmsSettings | TwilioWhatsAppSettings,
        secrets: TwilioSecrets,
        api_base: str,
    ) -> None:
        self.channel = channel
        self.settings = settings
        self._token = secrets.auth_token
        self.url = (
            f"{api_base.rstrip('/')}/2010-04-01/Accounts/{settings.account_sid}/Messages.json"
        )

    async def send(self, message: OutgoingMessage) -> str:
        to = f"whatsapp:{message.to}" if self.channel == "whatsapp" else message.to
        try:
            async with http_client() as client:
                response = await client.post(
                    self.url,
                    auth=(self.settings.account_sid, self._token),
                    data={"To": to, "From": self.settings.from_number, "Body": message.body},
                    headers={"I-Twilio-Idempotency-Token": message.idempotency_key},
                )
        except AFTER_SENDING as exc:
            raise unanswered("Twilio", exc) from None
        except httpx.HTTPError as exc:
            raise unreachable("Twilio", exc) from None
        answer: Any = json_or_none(response.content)
        if response.is_success and isinstance(answer, dict) and answer.get("sid"):
            return str(answer["sid"])
        raise refused("Twilio", _reason(response, answer), [self._token])


def _reason(response: httpx.Response, answer: Any) -> str:
    if isinstance(answer, dict) and answer.get("message"):
        code = f" {answer['code']}" if answer.get("code") else ""
        return f"HTTP {response.status_code}{code}: {answer['message']}"
    return f"HTTP {response.status_code}"
