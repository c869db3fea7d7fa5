"""SMS through AWS SNS, with the clinic's own AWS account."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from polyclinic.messaging.channels.providers.aws import AwsClient, AwsSecrets
from polyclinic.messaging.channels.providers.base import AwsRegion, OutgoingMessage

NAME = "sns"


class SnsSettings(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    region: AwsRegion
    sender_id: (
        Annotated[
            str,
            msgspec.Meta(
                pattern=r"^(?=.*[A-Za-z])[A-Za-z0-9]{1,11}$",
                description="1 to 11 letters and digits, at least one letter",
            ),
        ]
        | None
    ) = None


class SnsProvider:
    name = NAME
    channel = "sms"

    def __init__(self, settings: SnsSettings, secrets: AwsSecrets) -> None:
        self.settings = settings
        self.client = AwsClient("sns", "AWS SNS", settings.region, secrets)

    async def send(self, message: OutgoingMessage) -> str:
        # SNS takes no idempotency key for SMS.
        attributes: dict[str, Any] = {
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}
        }
        if self.settings.sender_id:
            attributes["AWS.SNS.SMS.SenderID"] = {
                "DataType": "String",
                "StringValue": self.settings.sender_id,
            }
        answer = await self.client.call(
            "publish", PhoneNumber=message.to, Message=message.body, MessageAttributes=attributes
        )
        return str(answer["MessageId"])
