"""What the channel settings API takes and gives (camelCase JSON). Secrets go in, and only
their names and masks come out."""

import datetime
from typing import Annotated, Any

import msgspec

from polyclinic.messaging.channels.services import ConfiguredChannel
from polyclinic.web.openapi import published_as


class ChannelIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    provider: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=40,
            description="email: smtp or ses; sms: twilio or sns; whatsapp: twilio or meta",
        ),
    ]
    settings: Annotated[
        dict[str, Any], msgspec.Meta(description="The provider's settings (nothing secret)")
    ] = msgspec.field(default_factory=dict)
    secrets: (
        Annotated[
            dict[str, Any],
            msgspec.Meta(
                description="The provider's secrets, write-only; leave out to keep the stored "
                "ones of the same provider"
            ),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET


class SecretOut(msgspec.Struct, rename="camel"):
    name: str
    masked: Annotated[str, msgspec.Meta(description="At most the last 4 characters")]


@published_as("polyclinic.messaging.channel_schemas")
class ChannelOut(msgspec.Struct, rename="camel"):
    channel: str
    provider: str
    settings: dict[str, Any]
    secrets: list[SecretOut]
    updated_at: datetime.datetime


@published_as("polyclinic.messaging.channel_schemas")
class TestMessageOut(msgspec.Struct, rename="camel"):
    channel: str
    provider: str
    to: str
    provider_message_id: str


def channel_out(configured: ConfiguredChannel) -> ChannelOut:
    row = configured.row
    return ChannelOut(
        channel=row.channel,
        provider=row.provider,
        settings=dict(row.settings),
        secrets=[SecretOut(name, masked) for name, masked in configured.masked_secrets],
        updated_at=row.updated_at,
    )
