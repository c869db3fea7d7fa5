"""WhatsApp through the Meta Cloud API, with the clinic's own business phone number."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import msgspec

from polyclinic.messaging.channels.providers.base import (
    OutgoingMessage,
    json_or_none,
    refused,
    unanswered,
    unreachable,
)
from polyclinic.messaging.channels.providers.http import AFTER_SENDING, http_client

NAME = "meta"
GRAPH_API_VERSION = "v20.0"


class MetaSettings(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    phone_number_id: Annotated[
        str, msgspec.Meta(pattern=r"^\d{5,30}$", description="the numeric phone number id")
    ]


class MetaSecrets(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    access_token: Annotated[
        str,
        msgspec.Meta(
            min_length=20,
            max_length=1000,
            pattern=r"^[A-Za-z0-9_.|-]+$",
            description="a Graph API access token",
        ),
    ]


class MetaProvider:
    name = NAME
    channel = "whatsapp"

    def __init__(self, settings: MetaSettings, secrets: MetaSecrets, api_base: str) -> None:
        self.settings = settings
        self._token = secrets.access_token
        self.url = f"{api_base.rstrip('/')}/{GRAPH_API_VERSION}/{settings.phone_number_id}/messages"

    async def send(self, message: OutgoingMessage) -> str:
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.to.removeprefix("+"),
            "type": "text",
            "text": {"body": message.body},
            # The Cloud API takes no idempotency key; this comes back in its status webhooks.
            "biz_opaque_callback_data": message.idempotency_key,
        }
        try:
            async with http_client() as client:
                response = await client.post(
                    self.url, json=payload, headers={"Authorization": f"Bearer {self._token}"}
                )
        except AFTER_SENDING as exc:
            raise unanswered("Meta", exc) from None
        except httpx.HTTPError as exc:
            raise unreachable("Meta", exc) from None
        answer: Any = json_or_none(response.content)
        if response.is_success and isinstance(answer, dict):
            messages = answer.get("messages")
            if isinstance(messages, list) and messages and isinstance(messages[0], dict):
                return str(messages[0]["id"])
        raise refused("Meta", _reason(response, answer), [self._token])


def _reason(response: httpx.Response, answer: Any) -> str:
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, dict) and error.get("message"):
        code = f" {error['code']}" if error.get("code") else ""
        return f"HTTP {response.status_code}{code}: {error['message']}"
    return f"HTTP {response.status_code}"
