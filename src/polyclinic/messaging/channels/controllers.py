"""The clinic's messaging channels: provider, settings and write-only secrets per channel."""

from __future__ import annotations

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.identity.accounts.models import User
from polyclinic.messaging.channels.schemas import ChannelIn, ChannelOut, TestMessageOut, channel_out
from polyclinic.messaging.channels.services import Channels
from polyclinic.web.envelope import Envelope, ok
from polyclinic.web.openapi import error_responses
from polyclinic.web.state import Runtime

READ = error_responses(400, 401, 403, 404, 502, 503)
WRITE = error_responses(400, 401, 402, 403, 404, 422, 503)
SEND = error_responses(400, 401, 403, 404, 422, 502, 503)
CHANNEL_PATH = "/{channel:str}"


class MessagingChannelsController(Controller):
    path = "/messaging/channels"
    tags = ["clinic: messaging"]

    @get(
        "/",
        summary="The configured channels, with masked secrets",
        responses=READ,
        opt={"permission": ("messaging", "read")},
    )
    async def list_channels(
        self, clinic_db: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime]
    ) -> Envelope[list[ChannelOut]]:
        channels = await Channels(clinic_db, runtime.settings).list()
        return ok([channel_out(c) for c in channels])

    @get(
        CHANNEL_PATH,
        summary="One channel (email, sms or whatsapp), with masked secrets",
        responses=READ,
        opt={"permission": ("messaging", "read")},
    )
    async def get_channel(
        self,
        channel: FromPath[str],
        clinic_db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[ChannelOut]:
        return ok(channel_out(await Channels(clinic_db, runtime.settings).get(channel)))

    @put(
        CHANNEL_PATH,
        summary="Set a channel's provider, settings and secrets (secrets are write-only)",
        responses=WRITE,
        opt={"permission": ("messaging", "manage")},
    )
    async def save_channel(
        self,
        channel: FromPath[str],
        data: JSONBody[ChannelIn],
        clinic_db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[ChannelOut]:
        secrets = None if isinstance(data.secrets, msgspec.UnsetType) else data.secrets
        saved = await Channels(clinic_db, runtime.settings).save(
            channel, data.provider, data.settings, secrets
        )
        return ok(channel_out(saved), "Channel saved")

    @delete(
        CHANNEL_PATH,
        status_code=HTTP_200_OK,
        summary="Remove a channel's provider, settings and secrets",
        responses=WRITE,
        opt={"permission": ("messaging", "manage")},
    )
    async def delete_channel(
        self,
        channel: FromPath[str],
        clinic_db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[None]:
        await Channels(clinic_db, runtime.settings).delete(channel)
        return ok(None, "Channel removed")

    @post(
        f"{CHANNEL_PATH}/test",
        status_code=HTTP_200_OK,
        summary="Send a test message to yourself through the channel's provider",
        responses=SEND,
        opt={"permission": ("messaging", "manage")},
    )
    async def send_test_message(
        self,
        channel: FromPath[str],
        me: NamedDependency[User],
        clinic_db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[TestMessageOut]:
        sent = await Channels(clinic_db, runtime.settings).send_test(channel, me)
        out = TestMessageOut(
            channel=sent.channel,
            provider=sent.provider,
            to=sent.to,
            provider_message_id=sent.provider_message_id,
        )
        return ok(out, f"Test message sent through {sent.provider}")
