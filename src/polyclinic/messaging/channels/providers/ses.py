"""Email through AWS SES (v2 API), with the clinic's own AWS account."""

from __future__ import annotations

from email.utils import formataddr

import msgspec

from polyclinic.messaging.channels.providers.aws import AwsClient, AwsSecrets
from polyclinic.messaging.channels.providers.base import (
    AwsRegion,
    DisplayName,
    EmailAddress,
    OutgoingMessage,
)

NAME = "ses"


class SesSettings(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    region: AwsRegion
    from_address: EmailAddress
    from_name: DisplayName | None = None


class SesProvider:
    name = NAME
    channel = "email"

    def __init__(self, settings: SesSettings, secrets: AwsSecrets) -> None:
        self.settings = settings
        self.client = AwsClient("sesv2", "AWS SES", settings.region, secrets)

    async def send(self, message: OutgoingMessage) -> str:
        settings = self.settings
        answer = await self.client.call(
            "send_email",
            FromEmailAddress=formataddr((settings.from_name or "", settings.from_address)),
            Destination={"ToAddresses": [message.to]},
            Content={
                "Simple": {
                    "Subject": {"Data": message.subject or "", "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": message.body, "Charset": "UTF-8"}},
                }
            },
            # SES takes no idempotency key; the tag comes back in its delivery events.
            EmailTags=[{"Name": "polyclinic-delivery", "Value": message.idempotency_key}],
        )
        return str(answer["MessageId"])
